import Foundation

/// Idle libcurl connections of one client, reused so consecutive requests keep their TCP connection. A request
/// borrows one (or makes a new one) and gives it back; at most `capacity` idle ones are kept.
final class ConnectionPool: @unchecked Sendable {
    private let lock = NSLock()
    private var idle: [CurlConnection] = []
    private let capacity: Int

    init(capacity: Int = 16) { self.capacity = capacity }

    /// Runs `body` with a connection nobody else uses meanwhile.
    func withConnection<R>(_ body: (CurlConnection) throws -> R) throws -> R {
        let connection = try lock.withLock { idle.popLast() } ?? CurlConnection()
        defer {
            lock.withLock {
                if idle.count < capacity { idle.append(connection) }
            }
        }
        return try body(connection)
    }
}
