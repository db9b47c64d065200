import Foundation

extension S3Client {
    /// Reads a whole object as ranges of `partSize` bytes, up to `maxInFlight` GETs at once, and hands each range's
    /// bytes to `sink` with their offset in the object, as they arrive (ranges may interleave: `sink` must be safe to
    /// call from several threads, e.g. `pwrite` to distinct offsets). One request is in flight for an object of at
    /// most `partSize` bytes. The first range's answer gives the object's size and ETag; every later range is pinned
    /// to that ETag with `If-Match` (a version changed in between is an integrity error, never a splice), must
    /// answer with the `Content-Range` asked for, and must deliver exactly its length (each range resumes after a
    /// dropped connection as `getObject` does). The first error stops the ranges not yet started and is rethrown.
    /// - Returns: the object's size, ETag and `Last-Modified`.
    @discardableResult
    public func getObjectConcurrently(
        bucket: String, key: String, partSize: Int = 8 * 1024 * 1024, maxInFlight: Int = 4,
        into sink: @escaping @Sendable (UInt64, UnsafeRawBufferPointer) throws -> Void
    ) throws -> S3ObjectInfo {
        precondition(partSize > 0 && maxInFlight > 0)
        let part = UInt64(partSize)
        var offset: UInt64 = 0
        let info = try getObject(bucket: bucket, key: key, range: S3ByteRange(first: 0, last: part - 1)) { bytes in
            try sink(offset, bytes)
            offset += UInt64(bytes.count)
        }
        if offset == info.size { return info }  // all of it (a store may answer a range from 0 with the whole object)
        guard offset == part else {
            throw S3Error.integrity(operation: "GetObject", detail: "\(key): the first range held \(offset) bytes")
        }
        let ranges = stride(from: part, to: info.size, by: Int(part)).map { S3ByteRange(first: $0, last: min($0 + part, info.size) - 1) }
        let state = ConcurrentGetState()
        let group = DispatchGroup()
        let slots = DispatchSemaphore(value: maxInFlight)
        for range in ranges {
            slots.wait()
            if state.failed { slots.signal(); break }
            BlockingWorkers.start(group: group) {
                defer { slots.signal() }
                guard !state.failed else { return }
                do {
                    var at = range.first
                    let got = try self.getObject(bucket: bucket, key: key, range: range, ifMatch: info.etag) { bytes in
                        try sink(at, bytes)
                        at += UInt64(bytes.count)
                    }
                    guard got.size == info.size, at == range.last! + 1 else {
                        throw S3Error.integrity(operation: "GetObject", detail: "\(key): range \(range.headerValue) came back short or from another object")
                    }
                } catch {
                    state.fail(error)
                }
            }
        }
        group.wait()
        if let error = state.error { throw error }
        return info
    }

    /// Like `getObjectConcurrently`, but `sink` sees the object's bytes in order, once each, on the calling thread
    /// (for hashing): ranges arriving ahead are held until their turn, so at most `maxInFlight` × `partSize` bytes
    /// are buffered, whatever the object's size.
    @discardableResult
    public func getObjectInOrder(
        bucket: String, key: String, partSize: Int = 8 * 1024 * 1024, maxInFlight: Int = 4,
        into sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> S3ObjectInfo {
        precondition(partSize > 0 && maxInFlight > 0)
        let part = UInt64(partSize)
        var offset: UInt64 = 0
        let info = try getObject(bucket: bucket, key: key, range: S3ByteRange(first: 0, last: part - 1)) { bytes in
            try sink(bytes)
            offset += UInt64(bytes.count)
        }
        if offset == info.size { return info }  // all of it (a store may answer a range from 0 with the whole object)
        guard offset == part else {
            throw S3Error.integrity(operation: "GetObject", detail: "\(key): the first range held \(offset) bytes")
        }
        let ranges = stride(from: part, to: info.size, by: Int(part)).map { S3ByteRange(first: $0, last: min($0 + part, info.size) - 1) }
        let buffers = InOrderBuffers(count: ranges.count)
        let group = DispatchGroup()
        func start(_ index: Int) {
            let range = ranges[index]
            BlockingWorkers.start(group: group) {
                guard !buffers.failed else { return }
                do {
                    var bytes: [UInt8] = []
                    bytes.reserveCapacity(Int(range.last! - range.first + 1))
                    let got = try self.getObject(bucket: bucket, key: key, range: range, ifMatch: info.etag) {
                        bytes.append(contentsOf: $0)
                    }
                    guard got.size == info.size, UInt64(bytes.count) == range.last! - range.first + 1 else {
                        throw S3Error.integrity(operation: "GetObject", detail: "\(key): range \(range.headerValue) came back short or from another object")
                    }
                    buffers.put(index, bytes)
                } catch {
                    buffers.fail(error)
                }
            }
        }
        var next = 0
        defer {
            buffers.fail(CancellationError())  // stops ranges not yet started when the sink threw
            group.wait()
        }
        while next < min(maxInFlight, ranges.count) { start(next); next += 1 }
        for index in ranges.indices {
            try buffers.take(index).withUnsafeBytes { try sink($0) }  // freed before the next range starts
            if next < ranges.count { start(next); next += 1 }
        }
        return info
    }
}

/// The first failure of a concurrent read, shared by its ranges.
private final class ConcurrentGetState: @unchecked Sendable {
    private let lock = NSLock()
    private var firstError: (any Error)?

    var failed: Bool { lock.withLock { firstError != nil } }
    var error: (any Error)? { lock.withLock { firstError } }

    func fail(_ error: any Error) { lock.withLock { if firstError == nil { firstError = error } } }
}

/// Ranges that arrived, waiting for their turn, and the first failure.
private final class InOrderBuffers: @unchecked Sendable {
    private let condition = NSCondition()
    private var ready: [Int: [UInt8]] = [:]
    private var firstError: (any Error)?

    init(count: Int) {}

    var failed: Bool {
        condition.lock()
        defer { condition.unlock() }
        return firstError != nil
    }

    func put(_ index: Int, _ bytes: [UInt8]) {
        condition.lock()
        ready[index] = bytes
        condition.broadcast()
        condition.unlock()
    }

    func fail(_ error: any Error) {
        condition.lock()
        if firstError == nil { firstError = error }
        condition.broadcast()
        condition.unlock()
    }

    /// Waits for range `index` (or the first failure, rethrown).
    func take(_ index: Int) throws -> [UInt8] {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let bytes = ready.removeValue(forKey: index) { return bytes }
            if let firstError { throw firstError }
            condition.wait()
        }
    }
}
