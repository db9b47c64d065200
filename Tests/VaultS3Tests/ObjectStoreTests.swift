import Foundation
import VaultCrypto
import XCTest

@testable import VaultS3

/// The client against a real object store (OpenStack Swift with s3api, `tools/object-store`), started once for this
/// class and stopped (by PID) in its tearDown. Each test uses a bucket of its own.
final class ObjectStoreTests: XCTestCase {
    private static let shared = SharedStore()

    override class func setUp() {
        super.setUp()
        shared.start()
    }

    override class func tearDown() {
        if let problem = shared.stop() { XCTFail(problem) }
        super.tearDown()
    }

    private var store: LocalObjectStore!
    private var client: S3Client!
    private var bucket = ""

    /// Each test starts here: the shared store, a client for it and a fresh bucket. Called from the test body, not
    /// from setUpWithError, so a store that could not start fails the test (corelibs XCTest counts an error thrown
    /// by setUpWithError as a failure *and* a skip, and no test here may skip).
    private func prepare() throws {
        store = try Self.shared.get()
        client = try S3Client(environment: store.environment)
        bucket = "vaults3-" + UUID().uuidString.lowercased().prefix(13).replacingOccurrences(of: "-", with: "")
        try client.createBucket(bucket)
    }

    /// The store started from a clean state and answered a signed ListBuckets. The bound is loose on purpose (5–6 s
    /// idle, 19–21 s seen on a loaded shared machine): it catches a start that hangs until a timeout, not a slow machine.
    func testStoreStartsQuickly() throws {
        try prepare()
        XCTAssertLessThan(store.startSeconds, 60, "tools/object-store start took \(store.startSeconds) s")
        XCTAssertEqual(store.environment["AWS_REGION"], "us-east-1")
        XCTAssertTrue(store.environment["AWS_ENDPOINT_URL"]!.hasPrefix("http://127.0.0.1:"))
    }

    func testPutGetHeadDelete() throws {
        try prepare()
        let key = "2026/11/29/bundle one+two&<ü>?#%.bin"
        let body = Array("hello, object store\n".utf8)
        let put = try client.putObject(bucket: bucket, key: key, body: body)
        XCTAssertEqual(put.etag, LowerHex.encode(try MD5.hash(body)))
        XCTAssertEqual(try client.getObjectBytes(bucket: bucket, key: key), body)
        let info = try client.headObject(bucket: bucket, key: key)
        XCTAssertEqual(info.size, UInt64(body.count))
        XCTAssertEqual(info.etag, put.etag)
        try client.headBucket(bucket)

        try client.putObject(bucket: bucket, key: "empty", body: [])
        XCTAssertEqual(try client.getObjectBytes(bucket: bucket, key: "empty"), [])
        XCTAssertEqual(try client.headObject(bucket: bucket, key: "empty").size, 0)

        try client.deleteObject(bucket: bucket, key: key)
        XCTAssertThrowsError(try client.headObject(bucket: bucket, key: key)) {
            XCTAssertEqual($0 as? S3Error, .noSuchKey(bucket: bucket, key: key))
        }
        XCTAssertThrowsError(try client.getObjectBytes(bucket: bucket, key: key)) {
            XCTAssertEqual($0 as? S3Error, .noSuchKey(bucket: bucket, key: key))
        }
        try client.deleteObject(bucket: bucket, key: key)  // deleting a missing key succeeds, as in S3
    }

    func testRangedGet() throws {
        try prepare()
        let body = TestBytes.generate(seed: 7, offset: 0, count: 300_000)
        try client.putObject(bucket: bucket, key: "ranged", body: body)
        XCTAssertEqual(try client.getObjectBytes(bucket: bucket, key: "ranged", range: S3ByteRange(0..<10)), Array(body[0..<10]))
        XCTAssertEqual(
            try client.getObjectBytes(bucket: bucket, key: "ranged", range: S3ByteRange(123_456..<200_001)),
            Array(body[123_456..<200_001]))
        XCTAssertEqual(
            try client.getObjectBytes(bucket: bucket, key: "ranged", range: S3ByteRange(first: 299_990)),
            Array(body[299_990...]))
        var chunks = 0
        var streamed: [UInt8] = []
        let info = try client.getObject(bucket: bucket, key: "ranged", range: S3ByteRange(first: 1000, last: 1999)) {
            chunks += 1
            streamed += $0
        }
        XCTAssertEqual(streamed, Array(body[1000...1999]))
        XCTAssertEqual(info.size, 300_000, "a ranged answer reports the whole object's size")
        XCTAssertGreaterThan(chunks, 0)
    }

    /// More than one page (max-keys 3), keys that need URL encoding in the listing, a prefix, and start-after.
    func testListObjectsWithContinuation() throws {
        try prepare()
        let keys = ["u/a", "u/b c", "u/b+c", "u/d&e<f>", "u/ü", "u/x/1", "u/x/2"].sorted()
        for key in keys + ["v/outside", "t"] {
            try client.putObject(bucket: bucket, key: key, body: Array(key.utf8))
        }
        var pages: [S3ListPage] = []
        var token: String?
        repeat {
            let page = try client.listObjectsV2(bucket: bucket, prefix: "u/", continuationToken: token, maxKeys: 3)
            XCTAssertLessThanOrEqual(page.objects.count, 3)
            pages.append(page)
            token = page.nextContinuationToken
        } while token != nil && pages.count < 10
        XCTAssertEqual(pages.count, 3, "7 keys at 3 per page")
        let listed = pages.flatMap(\.objects)
        XCTAssertEqual(listed.map(\.key), keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
        for object in listed {
            XCTAssertEqual(object.size, UInt64(object.key.utf8.count), object.key)
            XCTAssertEqual(object.etag, LowerHex.encode(try MD5.hash(Array(object.key.utf8))), object.key)
        }
        XCTAssertEqual(try client.listObjects(bucket: bucket, pageSize: 2).count, 9)
        // Keys sort by their UTF-8 bytes: "ü" (C3 BC) after "x".
        XCTAssertEqual(
            try client.listObjectsV2(bucket: bucket, prefix: "u/", startAfter: "u/x/1").objects.map(\.key), ["u/x/2", "u/ü"])
        XCTAssertEqual(try client.listObjectsV2(bucket: bucket, prefix: "nothing/").objects, [])
    }

    func testDeleteObjects() throws {
        try prepare()
        let keys = (0..<25).map { "batch/\($0)" }
        for key in keys { try client.putObject(bucket: bucket, key: key, body: [1, 2, 3]) }
        try client.putObject(bucket: bucket, key: "keep", body: [4])
        let failures = try client.deleteObjects(bucket: bucket, keys: keys + ["batch/never-existed"])
        XCTAssertEqual(failures, [])
        XCTAssertEqual(try client.listObjects(bucket: bucket).map(\.key), ["keep"])
        XCTAssertEqual(try client.deleteObjects(bucket: bucket, keys: []), [])
    }

    /// A 43 MiB object streamed in 64 KiB writes through 5 MiB parts, at most 2 in flight: the uploader never holds
    /// more than 3 parts (its own count, and the process's peak resident memory, which grows by far less than the
    /// object), the object reads back identical (streamed and ranged across a part boundary), and its ETag is the
    /// multipart one the client computed.
    func testMultipartUploadStreamsWithBoundedMemory() throws {
        try prepare()
        let partSize = S3MultipartUploader.minimumPartSize
        let total = 43 * 1024 * 1024 + 12_345
        let residentBefore = try ResidentMemory.resetPeak()
        let uploader = try S3MultipartUploader(
            client: client, bucket: bucket, key: "big/object", partSize: partSize, maxPartsInFlight: 2)
        let written = try SHA256()
        var offset = 0
        while offset < total {
            let chunk = TestBytes.generate(seed: 42, offset: offset, count: min(64 * 1024, total - offset))
            try written.update(chunk)
            try uploader.write(chunk)
            offset += chunk.count
        }
        XCTAssertNotNil(uploader.uploadID)
        let result = try uploader.finish()
        let uploadGrowth = try ResidentMemory.peak() - residentBefore
        print("multipart upload of \(total) bytes: peak resident memory grew by \(uploadGrowth / 1024) KiB")
        XCTAssertLessThan(uploadGrowth, 3 * partSize + 8 * 1024 * 1024, "the upload held more than its parts in flight")
        XCTAssertEqual(result.parts, 9)
        XCTAssertEqual(result.size, UInt64(total))
        XCTAssertTrue(result.etag.hasSuffix("-9"), result.etag)
        XCTAssertLessThanOrEqual(uploader.peakBufferedBytes, 3 * partSize, "at most 2 parts in flight + 1 filling")
        XCTAssertGreaterThanOrEqual(uploader.peakBufferedBytes, partSize)

        let info = try client.headObject(bucket: bucket, key: "big/object")
        XCTAssertEqual(info.size, UInt64(total))
        XCTAssertEqual(info.etag, result.etag)
        let read = try SHA256()
        var received = 0
        let residentBeforeDownload = try ResidentMemory.resetPeak()
        try client.getObject(bucket: bucket, key: "big/object") {
            received += $0.count
            try read.update($0)
        }
        let downloadGrowth = try ResidentMemory.peak() - residentBeforeDownload
        print("streamed download of \(total) bytes: peak resident memory grew by \(downloadGrowth / 1024) KiB")
        XCTAssertLessThan(downloadGrowth, 8 * 1024 * 1024, "the download was buffered")
        XCTAssertEqual(received, total)
        XCTAssertEqual(try read.finalize(), try written.finalize())
        let boundary = partSize * 2 - 100
        XCTAssertEqual(
            try client.getObjectBytes(bucket: bucket, key: "big/object", range: S3ByteRange(UInt64(boundary)..<UInt64(boundary + 300))),
            TestBytes.generate(seed: 42, offset: boundary, count: 300))
        XCTAssertEqual(try client.listMultipartUploads(bucket: bucket), [], "a completed upload leaves none behind")
    }

    /// Concurrent ranged reads give back exactly the object: in order for a hash, at their offsets for a file, for an
    /// object of one range and of many (the last one short).
    func testConcurrentRangedReadsReturnTheObject() throws {
        try prepare()
        let total = 3 * 1024 * 1024 + 1234
        let body = TestBytes.generate(seed: 7, offset: 0, count: total)
        try client.putObject(bucket: bucket, key: "ranged", body: body)
        try client.putObject(bucket: bucket, key: "small", body: Array(body[0..<1000]))
        for (key, expected) in [("ranged", body), ("small", Array(body[0..<1000]))] {
            var inOrder: [UInt8] = []
            let info = try client.getObjectInOrder(bucket: bucket, key: key, partSize: 1024 * 1024, maxInFlight: 3) {
                inOrder.append(contentsOf: $0)
            }
            XCTAssertEqual(info.size, UInt64(expected.count), key)
            XCTAssertEqual(inOrder, expected, key)
            let placed = PlacedBytes(count: expected.count)
            let info2 = try client.getObjectConcurrently(bucket: bucket, key: key, partSize: 1024 * 1024, maxInFlight: 3) {
                placed.write($1, at: Int($0))
            }
            XCTAssertEqual(info2.size, UInt64(expected.count), key)
            XCTAssertEqual(placed.bytes, expected, key)
            XCTAssertEqual(placed.written, expected.count, "every byte written exactly once (\(key))")
        }
    }

    /// An object replaced while its ranges are read fails the read (every range after the first carries `If-Match`
    /// on the first answer's ETag): the two versions are never spliced.
    func testConcurrentRangedReadsNeverSpliceTwoVersions() throws {
        try prepare()
        let total = 3 * 1024 * 1024
        let first = TestBytes.generate(seed: 8, offset: 0, count: total)
        let second = TestBytes.generate(seed: 9, offset: 0, count: total)
        for concurrent in [false, true] {
            try client.putObject(bucket: bucket, key: "changing", body: first)
            let replace = ReplaceOnce { try self.client.putObject(bucket: self.bucket, key: "changing", body: second) }
            XCTAssertThrowsError(try {
                if concurrent {
                    try client.getObjectConcurrently(bucket: bucket, key: "changing", partSize: 1024 * 1024, maxInFlight: 2) { _, _ in
                        try replace.run()
                    }
                } else {
                    try client.getObjectInOrder(bucket: bucket, key: "changing", partSize: 1024 * 1024, maxInFlight: 2) { _ in
                        try replace.run()
                    }
                }
            }(), "concurrent: \(concurrent)") {
                XCTAssertEqual($0 as? S3Error, .integrity(operation: "GetObject", detail: "changing changed while it was being read"))
            }
        }
    }

    /// A resumed download asks for the rest of the object with `If-Match` on the first answer's ETag: the store must
    /// honour it for single-part and multipart objects alike (answer 206 on a match, 412 once the object changed: an integrity error).
    func testTheStoreHonoursIfMatchOnRangedReads() throws {
        try prepare()
        let single = TestBytes.generate(seed: 3, offset: 0, count: 1000)
        let singleETag = try client.putObject(bucket: bucket, key: "single", body: single).etag
        let uploader = try S3MultipartUploader(
            client: client, bucket: bucket, key: "multi", partSize: S3MultipartUploader.minimumPartSize, maxPartsInFlight: 1)
        let multi = TestBytes.generate(seed: 4, offset: 0, count: S3MultipartUploader.minimumPartSize + 1000)
        try uploader.write(multi)
        let multiETag = try uploader.finish().etag
        XCTAssertTrue(multiETag.hasSuffix("-2"), multiETag)
        for (key, etag, body) in [("single", singleETag, single), ("multi", multiETag, multi)] {
            var request = S3Client.Request(operation: "GetObject", method: "GET", bucket: bucket, key: key)
            request.headers = [("Range", "bytes=900-"), ("If-Match", "\"\(etag)\"")]
            let response = try client.send(request)
            XCTAssertEqual(response.head.status, 206, key)
            XCTAssertEqual(response.body, Array(body[900...]), key)
            request.headers = [("Range", "bytes=900-"), ("If-Match", "\"0123456789abcdef0123456789abcdef\"")]
            XCTAssertThrowsError(try client.send(request), key) {
                XCTAssertEqual($0 as? S3Error, .integrity(operation: "GetObject", detail: "\(key) changed while it was being read"))
            }
        }
    }

    func testSmallObjectThroughTheUploaderIsOnePut() throws {
        try prepare()
        let uploader = try S3MultipartUploader(client: client, bucket: bucket, key: "small")
        try uploader.write(Array("tiny".utf8))
        let result = try uploader.finish()
        XCTAssertEqual(result.parts, 0)
        XCTAssertNil(uploader.uploadID)
        XCTAssertEqual(try client.getObjectBytes(bucket: bucket, key: "small"), Array("tiny".utf8))
        XCTAssertThrowsError(try uploader.write([1])) { XCTAssertNotNil($0 as? S3Error) }
    }

    func testAbortAndListMultipartUploads() throws {
        try prepare()
        let first = try client.createMultipartUpload(bucket: bucket, key: "pending/one")
        let second = try client.createMultipartUpload(bucket: bucket, key: "pending/two")
        let part = try client.uploadPart(
            bucket: bucket, key: "pending/one", uploadID: first, partNumber: 1, body: [UInt8](repeating: 9, count: 1000))
        XCTAssertEqual(part.etag, LowerHex.encode(try MD5.hash([UInt8](repeating: 9, count: 1000))))
        _ = try client.createMultipartUpload(bucket: bucket, key: "elsewhere")
        let listed = try client.listMultipartUploads(bucket: bucket, prefix: "pending/")
        XCTAssertEqual(listed.map(\.key), ["pending/one", "pending/two"])
        XCTAssertEqual(Set(listed.map(\.uploadID)), [first, second])

        for upload in listed { try client.abortMultipartUpload(bucket: bucket, key: upload.key, uploadID: upload.uploadID) }
        XCTAssertEqual(try client.listMultipartUploads(bucket: bucket, prefix: "pending/"), [])
        XCTAssertEqual(try client.listMultipartUploads(bucket: bucket).map(\.key), ["elsewhere"])
        XCTAssertThrowsError(try client.abortMultipartUpload(bucket: bucket, key: "pending/one", uploadID: first)) {
            XCTAssertEqual($0 as? S3Error, .noSuchUpload(bucket: bucket, key: "pending/one", uploadID: first))
        }
        XCTAssertThrowsError(
            try client.completeMultipartUpload(bucket: bucket, key: "pending/one", uploadID: first, parts: [part])
        ) { XCTAssertEqual($0 as? S3Error, .noSuchUpload(bucket: bucket, key: "pending/one", uploadID: first)) }
        XCTAssertThrowsError(try client.headObject(bucket: bucket, key: "pending/one"))

        // An uploader aborted after its first part leaves no upload and no object.
        let uploader = try S3MultipartUploader(client: client, bucket: bucket, key: "aborted", partSize: S3MultipartUploader.minimumPartSize)
        try uploader.write(TestBytes.generate(seed: 1, offset: 0, count: S3MultipartUploader.minimumPartSize + 10))
        XCTAssertNotNil(uploader.uploadID)
        uploader.abort()
        XCTAssertEqual(try client.listMultipartUploads(bucket: bucket, prefix: "aborted"), [])
        XCTAssertThrowsError(try client.headObject(bucket: bucket, key: "aborted"))
    }

    /// A wrong secret: one clear error naming the store's code and the variables to check, never the secret.
    func testWrongSecretIsOneClearError() throws {
        try prepare()
        var environment = store.environment
        environment["AWS_SECRET_ACCESS_KEY"] = "not-the-secret-0123456789"
        let wrong = try S3Client(environment: environment)
        XCTAssertThrowsError(try wrong.listObjectsV2(bucket: bucket)) { error in
            guard case .invalidCredentials(_, let code)? = error as? S3Error else { return XCTFail("\(error)") }
            XCTAssertEqual(code, "SignatureDoesNotMatch")
            let text = "\(error)"
            XCTAssertFalse(text.contains("\n"), text)
            XCTAssertFalse(text.contains("not-the-secret"), text)
            XCTAssertFalse(text.contains(store.environment["AWS_SECRET_ACCESS_KEY"]!), text)
            XCTAssertTrue(text.contains("AWS_SECRET_ACCESS_KEY"), text)
        }
        XCTAssertThrowsError(try wrong.putObject(bucket: bucket, key: "x", body: [1])) {
            guard case .invalidCredentials? = $0 as? S3Error else { return XCTFail("\($0)") }
        }
        environment = store.environment
        environment["AWS_ACCESS_KEY_ID"] = "nobody:nobody"
        XCTAssertThrowsError(try S3Client(environment: environment).listObjectsV2(bucket: bucket)) { error in
            guard case .invalidCredentials(_, let code)? = error as? S3Error else { return XCTFail("\(error)") }
            XCTAssertTrue(["InvalidAccessKeyId", "SignatureDoesNotMatch"].contains(code), code)
            print("an unknown access key: \(error)")
        }
        XCTAssertEqual(try client.listObjects(bucket: bucket), [], "nothing was written with the wrong credentials")
    }

    func testMissingBucketIsOneClearError() throws {
        try prepare()
        let missing = "vaults3-missing-" + bucket.suffix(8)
        for call in [
            { _ = try self.client.listObjectsV2(bucket: missing) },
            { try self.client.headBucket(missing) },
            { try self.client.putObject(bucket: missing, key: "k", body: [1]) },
            { _ = try self.client.createMultipartUpload(bucket: missing, key: "k") },
        ] {
            XCTAssertThrowsError(try call()) { error in
                XCTAssertEqual(error as? S3Error, .noSuchBucket(bucket: missing))
                XCTAssertEqual("\(error)", "Bucket \(missing) does not exist in the object store; create it or check the bucket name.")
            }
        }
    }

    func testUnreachableEndpointIsOneClearError() throws {
        try prepare()
        var environment = store.environment
        let port = try TestPorts.closedLoopbackPort()
        environment["AWS_ENDPOINT_URL"] = "http://127.0.0.1:\(port)"
        var configuration = try S3Configuration.fromEnvironment(environment)
        configuration.retry = S3RetryPolicy(maxAttempts: 3, baseDelay: 0.05, maxDelay: 0.1)
        let began = Date()
        XCTAssertThrowsError(try S3Client(configuration: configuration).listObjectsV2(bucket: bucket)) { error in
            guard case .unreachable(let endpoint, _, let attempts)? = error as? S3Error else { return XCTFail("\(error)") }
            XCTAssertEqual(endpoint, "http://127.0.0.1:\(port)")
            XCTAssertEqual(attempts, 3)
            let text = "\(error)"
            XCTAssertFalse(text.contains("\n"), text)
            XCTAssertTrue(text.hasPrefix("Cannot reach the object store at http://127.0.0.1:\(port): "), text)
        }
        XCTAssertLessThan(Date().timeIntervalSince(began), 5)
    }
}

/// The process's resident memory (Linux /proc/self/status), and its peak since the last reset.
enum ResidentMemory {
    /// Returns freed memory to the system (glibc `malloc_trim`, so memory an earlier test freed cannot hide growth),
    /// resets the peak (VmHWM) to the current resident size (`5` to /proc/self/clear_refs, Linux 4.0+) and returns it.
    static func resetPeak() throws -> Int {
        _ = glibcMallocTrim(0)
        try "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
        return try value("VmRSS")
    }

    /// The peak resident size since the last reset, in bytes.
    static func peak() throws -> Int { try value("VmHWM") }

    private static func value(_ field: String) throws -> Int {
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }),
              let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        else { throw LocalObjectStore.StoreError("/proc/self/status has no \(field)") }
        return kilobytes * 1024
    }
}

/// glibc's `malloc_trim`, which Swift's Glibc module does not export.
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32

/// A buffer that ranges fill at their offsets from several threads.
private final class PlacedBytes: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var bytes: [UInt8]
    private(set) var written = 0

    init(count: Int) { bytes = [UInt8](repeating: 0, count: count) }

    func write(_ chunk: UnsafeRawBufferPointer, at offset: Int) {
        lock.withLock {
            bytes.replaceSubrange(offset..<offset + chunk.count, with: chunk)
            written += chunk.count
        }
    }
}

/// Runs an action the first time it is called (from a sink), never again.
private final class ReplaceOnce: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    private let action: () throws -> Void

    init(_ action: @escaping () throws -> Void) { self.action = action }

    func run() throws {
        let first = lock.withLock { () -> Bool in
            defer { done = true }
            return !done
        }
        if first { try action() }
    }
}

/// Deterministic test data: byte `offset + i` of stream `seed`, computable for any slice without the rest.
enum TestBytes {
    static func generate(seed: UInt64, offset: Int, count: Int) -> [UInt8] {
        (0..<count).map { i in
            var x = (UInt64(offset + i) &+ seed &* 0x9E37_79B9_7F4A_7C15) &* 0xBF58_476D_1CE4_E5B9
            x ^= x >> 31
            return UInt8(truncatingIfNeeded: x >> 24)
        }
    }
}

enum TestPorts {
    /// A loopback port nothing listens on (bound, then closed).
    static func closedLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                guard bind(fd, $0, length) == 0, getsockname(fd, $0, &length) == 0 else { throw POSIXError(.EADDRINUSE) }
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
