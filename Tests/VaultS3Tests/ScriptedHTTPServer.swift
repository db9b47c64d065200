import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A loopback HTTP server that answers each request with the next step of a script: a full answer, an answer cut
/// off after part of its body, a stall, or a closed connection. It records every request it read. For testing
/// what the client does when a store fails (retries, backoff, resumed downloads), which a healthy store never shows.
final class ScriptedHTTPServer: @unchecked Sendable {
    enum Step {
        /// A complete answer (`Content-Length` is added).
        case respond(status: Int, headers: [(String, String)] = [], body: [UInt8] = [])
        /// An answer announcing `Content-Length: announced`, of which only `body` is sent before the connection closes.
        case cutOff(status: Int, headers: [(String, String)] = [], announced: Int, body: [UInt8])
        /// An answer announcing `Content-Length: announced` that sends `body` and then nothing for `seconds`.
        case stall(headers: [(String, String)] = [], announced: Int, body: [UInt8], seconds: Double)
        /// Reads the request and closes the connection without a byte of answer.
        case close

        static func xml(_ status: Int, _ text: String) -> Step {
            .respond(status: status, headers: [("Content-Type", "application/xml")], body: Array(text.utf8))
        }

        static func error(_ status: Int, _ code: String, _ message: String = "scripted") -> Step {
            xml(status, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>\(code)</Code><Message>\(message)</Message></Error>")
        }
    }

    struct Recorded {
        var method: String
        var target: String
        /// Header values by lower-case name.
        var headers: [String: String]
        var body: [UInt8]
    }

    let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var script: [Step]
    private var recorded: [Recorded] = []
    /// Connections being served, each on its own thread (so a stalled answer does not hold up the next request).
    private var open: Set<Int32> = []
    private let acceptLoopEnded = DispatchSemaphore(value: 0)

    var endpoint: String { "http://127.0.0.1:\(port)" }

    var requests: [Recorded] { lock.withLock { recorded } }

    init(_ script: [Step]) throws {
        self.script = script
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let fd = listener
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                guard bind(fd, $0, length) == 0, listen(fd, 8) == 0, getsockname(fd, $0, &length) == 0 else {
                    throw POSIXError(.EADDRINUSE)
                }
            }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    /// Stops accepting and cuts the connections still open. The listening descriptor is closed only once the accept
    /// loop has ended, so its number cannot be reused by another server while this one still accepts on it.
    func shutdown() {
        Glibc.shutdown(listener, Int32(SHUT_RDWR))
        lock.withLock { for connection in open { Glibc.shutdown(connection, Int32(SHUT_RDWR)) } }
        acceptLoopEnded.wait()
        close(listener)
    }

    private func serve() {
        defer { acceptLoopEnded.signal() }
        while true {
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { return }
            lock.withLock { _ = open.insert(connection) }
            Thread { [self] in handle(connection) }.start()
        }
    }

    private func handle(_ connection: Int32) {
        defer {
            lock.withLock { _ = open.remove(connection) }
            close(connection)
        }
        while let request = readRequest(connection) {
            let step: Step = lock.withLock {
                recorded.append(request)
                return script.isEmpty ? .error(500, "InternalError", "script exhausted") : script.removeFirst()
            }
            switch step {
            case let .respond(status, headers, body):
                send(connection, head(status, headers, length: body.count) + body)
            case let .cutOff(status, headers, announced, body):
                send(connection, head(status, headers, length: announced) + body)
                return
            case let .stall(headers, announced, body, seconds):
                send(connection, head(200, headers, length: announced) + body)
                Thread.sleep(forTimeInterval: seconds)
                return
            case .close:
                return
            }
        }
    }

    private func head(_ status: Int, _ headers: [(String, String)], length: Int) -> [UInt8] {
        var text = "HTTP/1.1 \(status) Scripted\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "Content-Length: \(length)\r\n\r\n"
        return Array(text.utf8)
    }

    private func send(_ connection: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { return }
            offset += sent
        }
    }

    /// Reads one request (head, then a `Content-Length` body); nil when the client closed the connection.
    private func readRequest(_ connection: Int32) -> Recorded? {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        func fill() -> Bool {
            let count = chunk.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return false }
            buffer += chunk[0..<count]
            return true
        }
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        var headEnd: Int?
        while headEnd == nil {
            guard fill() else { return nil }
            headEnd = buffer.firstRange(of: separator)?.lowerBound
        }
        let lines = String(decoding: buffer[..<headEnd!], as: UTF8.self).components(separatedBy: "\r\n")
        let requestLine = lines[0].split(separator: " ")
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        let bodyStart = headEnd! + separator.count
        while buffer.count < bodyStart + length {
            guard fill() else { return nil }
        }
        return Recorded(
            method: String(requestLine[0]), target: String(requestLine[1]), headers: headers,
            body: Array(buffer[bodyStart..<bodyStart + length]))
    }
}
