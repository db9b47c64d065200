import Foundation
import VaultCrypto

/// Streams one object of any size to the store with bounded memory: bytes written are cut into parts of
/// `partSize`, and up to `maxPartsInFlight` parts upload concurrently (each with its `Content-MD5`, retried as
/// the client's policy allows) while the next part fills. `write` blocks while that many parts are in flight,
/// so at most (`maxPartsInFlight` + 1) × `partSize` bytes are ever held, whatever the object's size.
///
/// An object smaller than one part goes up in a single PutObject when `finish()` is called. Call `finish()` to
/// complete the object or `abort()` to discard it; after a failure, `write` and `finish` throw the first error
/// and the multipart upload is aborted (best effort: an upload left behind is listed by `listMultipartUploads`).
/// Not thread-safe: one writer thread at a time.
public final class S3MultipartUploader {
    /// S3's smallest part (except the last).
    public static let minimumPartSize = 5 * 1024 * 1024
    /// S3's largest part count.
    public static let maximumPartCount = 10_000

    public let bucket: String
    public let key: String
    public let partSize: Int
    public let maxPartsInFlight: Int
    private let client: S3Client
    private let contentType: String?

    /// The multipart upload's ID once the first part was sent (nil while everything fits in one part).
    public private(set) var uploadID: String?
    private var current: [UInt8] = []
    private var nextPartNumber = 1
    private var totalBytes: UInt64 = 0
    private var finished = false
    private var completed = false
    private let shared = Shared()
    private let slots: DispatchSemaphore
    private let group = DispatchGroup()

    /// The most bytes this uploader held at once (the part being filled plus the parts in flight).
    public var peakBufferedBytes: Int { shared.withLock { $0.peakBuffered } }

    /// - Throws: `S3Error.client` when `partSize` is below 5 MiB or `maxPartsInFlight` below 1.
    public init(
        client: S3Client, bucket: String, key: String, partSize: Int = 8 * 1024 * 1024, maxPartsInFlight: Int = 4,
        contentType: String? = nil
    ) throws {
        guard partSize >= Self.minimumPartSize else {
            throw S3Error.client("a multipart part must be at least \(Self.minimumPartSize) bytes, not \(partSize)")
        }
        guard maxPartsInFlight >= 1 else { throw S3Error.client("maxPartsInFlight must be at least 1") }
        self.client = client
        self.bucket = bucket
        self.key = key
        self.partSize = partSize
        self.maxPartsInFlight = maxPartsInFlight
        self.contentType = contentType
        self.slots = DispatchSemaphore(value: maxPartsInFlight)
    }

    /// Appends `bytes` to the object; may block until a part slot is free.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard !finished else { throw S3Error.client("write after finish or abort") }
        try throwIfFailed()
        var offset = 0
        while offset < bytes.count {
            if current.capacity < partSize { current.reserveCapacity(partSize) }
            let take = min(partSize - current.count, bytes.count - offset)
            current.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + take]))
            offset += take
            totalBytes += UInt64(take)
            shared.withLock { $0.noteBuffered(current.count) }
            if current.count == partSize { try dispatchCurrentPart() }
        }
    }

    /// Appends `bytes` to the object.
    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Uploads what is left and completes the object.
    /// - Returns: the object's ETag, size and part count (0 when it went up in one PutObject).
    public func finish() throws -> S3UploadResult {
        guard !finished else { throw S3Error.client("finish after finish or abort") }
        finished = true
        do {
            if uploadID == nil {
                let result = try client.putObject(bucket: bucket, key: key, body: current, contentType: contentType)
                current = []
                completed = true
                return result
            }
            if !current.isEmpty { try dispatchCurrentPart() }
            group.wait()
            try throwIfFailed()
            let parts = shared.withLock { $0.parts }
            let etag = try client.completeMultipartUpload(bucket: bucket, key: key, uploadID: uploadID!, parts: parts)
            completed = true
            return S3UploadResult(etag: etag, size: totalBytes, parts: parts.count)
        } catch {
            abortUpload()
            throw error
        }
    }

    /// Discards the object: waits for parts in flight, then aborts the multipart upload (if one was started and
    /// not completed). After a successful `finish()` it does nothing: the object stays.
    public func abort() {
        finished = true
        guard !completed else { return }
        abortUpload()
    }

    // MARK: - Internals

    private func dispatchCurrentPart() throws {
        if uploadID == nil {
            uploadID = try client.createMultipartUpload(bucket: bucket, key: key, contentType: contentType)
        }
        guard nextPartNumber <= Self.maximumPartCount else {
            throw S3Error.client("the object needs more than \(Self.maximumPartCount) parts of \(partSize) bytes")
        }
        slots.wait()  // at most maxPartsInFlight parts in flight: the writer blocks here
        try throwIfFailed(releasingSlot: true)
        let part = current
        current = []
        let number = nextPartNumber
        nextPartNumber += 1
        let (client, bucket, key, uploadID, shared, slots) = (client, bucket, key, uploadID!, shared, slots)
        shared.withLock { $0.inFlightBytes += part.count }
        BlockingWorkers.start(group: group) {
            defer { slots.signal() }
            do {
                let completed = try client.uploadPart(
                    bucket: bucket, key: key, uploadID: uploadID, partNumber: number, body: part)
                shared.withLock {
                    $0.parts.append(completed)
                    $0.inFlightBytes -= part.count
                }
            } catch {
                shared.withLock {
                    if $0.failure == nil { $0.failure = error }
                    $0.inFlightBytes -= part.count
                }
            }
        }
    }

    private func throwIfFailed(releasingSlot: Bool = false) throws {
        if let failure = shared.withLock({ $0.failure }) {
            if releasingSlot { slots.signal() }
            finished = true
            abortUpload()
            throw failure
        }
    }

    private func abortUpload() {
        group.wait()
        current = []
        guard let uploadID else { return }
        self.uploadID = nil
        try? client.abortMultipartUpload(bucket: bucket, key: key, uploadID: uploadID)
    }

    /// State the part uploads share with the writer.
    private final class Shared: @unchecked Sendable {
        struct State {
            var parts: [S3CompletedPart] = []
            var failure: (any Error)?
            var inFlightBytes = 0
            var peakBuffered = 0

            mutating func noteBuffered(_ filling: Int) { peakBuffered = max(peakBuffered, filling + inFlightBytes) }
        }

        private let lock = NSLock()
        private var state = State()

        func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
            lock.lock()
            defer { lock.unlock() }
            return try body(&state)
        }
    }
}
