import Foundation
import VaultCrypto
import XCTest

@testable import VaultS3

/// What the client does when the store fails: retries with backoff on throttling, 5xx and dropped connections,
/// never on a refusal; resumed downloads; integrity checks on what comes back. Against `ScriptedHTTPServer`, which
/// fails on cue (the real store of `ObjectStoreTests` does not).
final class RetryTests: XCTestCase {
    private var server: ScriptedHTTPServer?

    override func tearDown() {
        server?.shutdown()
        super.tearDown()
    }

    private func client(_ script: [ScriptedHTTPServer.Step], attempts: Int = 4, stalled: Int = 30) throws -> S3Client {
        let server = try ScriptedHTTPServer(script)
        self.server = server
        var configuration = try S3Configuration.fromEnvironment([
            "AWS_ENDPOINT_URL": server.endpoint, "AWS_ACCESS_KEY_ID": "AKIDTEST",
            "AWS_SECRET_ACCESS_KEY": "secret-for-tests", "AWS_REGION": "us-east-1",
        ])
        configuration.retry = S3RetryPolicy(maxAttempts: attempts, baseDelay: 0.04, maxDelay: 0.2)
        configuration.timeouts = S3Timeouts(connect: 2, stalledTransfer: stalled)
        return S3Client(configuration: configuration)
    }

    private static let emptyListing = """
        <?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name><KeyCount>1</KeyCount>\
        <IsTruncated>false</IsTruncated><EncodingType>url</EncodingType><Contents><Key>a%20b</Key><Size>3</Size>\
        <ETag>&quot;x&quot;</ETag></Contents></ListBucketResult>
        """

    func testThrottlingAndServerErrorsAreRetriedWithBackoff() throws {
        let client = try client([.error(503, "SlowDown"), .error(429, "TooManyRequests"), .error(500, "InternalError"),
                                 .xml(200, Self.emptyListing)])
        let began = Date()
        let page = try client.listObjectsV2(bucket: "b")
        XCTAssertEqual(page.objects.map(\.key), ["a b"])
        XCTAssertEqual(server!.requests.count, 4)
        // Three pauses of at least half of 0.04, 0.08 and 0.16 s.
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(began), 0.14)
        // Every attempt is signed afresh, with the same request.
        XCTAssertEqual(Set(server!.requests.map(\.target)).count, 1)
        XCTAssertTrue(server!.requests.allSatisfy { $0.headers["authorization"]?.hasPrefix("AWS4-HMAC-SHA256 ") == true })
    }

    func testAttemptsRunOutWithOneClearError() throws {
        let client = try client(Array(repeating: .error(503, "ServiceUnavailable", "Please\nreduce your rate"), count: 3), attempts: 3)
        XCTAssertThrowsError(try client.headBucket("b")) { error in
            // A HEAD answer has no body: status only.
            XCTAssertEqual(error as? S3Error, .service(operation: "HeadBucket", status: 503, code: nil, message: nil, attempts: 3))
        }
        XCTAssertEqual(server!.requests.count, 3)
        let second = try self.client(Array(repeating: .error(500, "InternalError", "We\nare sorry"), count: 2), attempts: 2)
        XCTAssertThrowsError(try second.listObjectsV2(bucket: "b")) { error in
            XCTAssertEqual("\(error)", "ListObjectsV2 failed: HTTP 500 InternalError: We are sorry (2 attempts).")
        }
    }

    func testRefusalsAreNotRetried() throws {
        let client = try client([.error(403, "SignatureDoesNotMatch"), .error(404, "NoSuchBucket"), .error(501, "NotImplemented")])
        XCTAssertThrowsError(try client.listObjectsV2(bucket: "b")) {
            XCTAssertEqual($0 as? S3Error, .invalidCredentials(endpoint: server!.endpoint, code: "SignatureDoesNotMatch"))
        }
        XCTAssertThrowsError(try client.listObjectsV2(bucket: "b")) { XCTAssertEqual($0 as? S3Error, .noSuchBucket(bucket: "b")) }
        XCTAssertThrowsError(try client.putObject(bucket: "b", key: "k", body: [1])) {
            XCTAssertEqual($0 as? S3Error, .notImplemented(operation: "PutObject"))
        }
        XCTAssertEqual(server!.requests.count, 3)
    }

    /// A connection closed before any answer is retried; the retry sends the same body with the same Content-MD5
    /// and the signed SHA-256 of the body.
    func testDroppedConnectionIsRetriedWithTheSameBody() throws {
        let body = Array("payload".utf8)
        let client = try client([.close, .respond(status: 200, headers: [("ETag", "\"e\"")])])
        XCTAssertEqual(try client.putObject(bucket: "b", key: "dir/k", body: body).etag, "e")
        let requests = server!.requests
        XCTAssertEqual(requests.count, 2)
        for request in requests {
            XCTAssertEqual(request.method, "PUT")
            XCTAssertEqual(request.target, "/b/dir/k")
            XCTAssertEqual(request.body, body)
            XCTAssertEqual(request.headers["content-md5"], Data(try MD5.hash(body)).base64EncodedString())
            XCTAssertEqual(request.headers["x-amz-content-sha256"], LowerHex.encode(try SHA256.hash(body)))
            XCTAssertNil(request.headers["expect"])
        }
    }

    /// An upload on a kept-alive connection that the server closes without answering: libcurl re-sends it by itself
    /// on a fresh connection, which needs the body rewound (CURLOPT_SEEKFUNCTION; without it the request failed
    /// at once with CURLE_SEND_FAIL_REWIND, "1 attempt", as the S3 fault tests saw through tools/fault-proxy).
    func testUploadOnAReusedConnectionThatDiesIsSentAgain() throws {
        let body = Array(repeating: UInt8(7), count: 100_000)
        let client = try client([
            .respond(status: 200, headers: [("ETag", "\"a\"")]), .close, .respond(status: 200, headers: [("ETag", "\"b\"")]),
        ], attempts: 1)
        XCTAssertEqual(try client.putObject(bucket: "b", key: "k1", body: body).etag, "a")
        XCTAssertEqual(try client.putObject(bucket: "b", key: "k2", body: body).etag, "b")
        let requests = server!.requests
        XCTAssertEqual(requests.map(\.target), ["/b/k1", "/b/k2", "/b/k2"])
        XCTAssertTrue(requests.allSatisfy { $0.body == body }, "the re-sent request carries the whole body")
    }

    /// A download cut off after 400 of 1000 bytes resumes at byte 400, on the same ETag, and the sink sees every
    /// byte once, in order.
    func testDownloadResumesWhereTheConnectionDropped() throws {
        let object = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 31) }
        let client = try client([
            .cutOff(status: 200, headers: [("ETag", "\"v1\"")], announced: 1000, body: Array(object[..<400])),
            .respond(status: 206, headers: [("ETag", "\"v1\""), ("Content-Range", "bytes 400-999/1000")],
                     body: Array(object[400...])),
        ])
        var received: [UInt8] = []
        let info = try client.getObject(bucket: "b", key: "k") { received += $0 }
        XCTAssertEqual(received, object)
        XCTAssertEqual(info, S3ObjectInfo(size: 1000, etag: "v1", lastModified: nil))
        let retry = server!.requests[1]
        XCTAssertEqual(retry.headers["range"], "bytes=400-")
        XCTAssertEqual(retry.headers["if-match"], "\"v1\"")
        XCTAssertNil(server!.requests[0].headers["range"])
    }

    /// A ranged download resumes inside its range; an object that changed between attempts is refused.
    func testResumedRangeAndAChangedObject() throws {
        let object = (0..<100).map { UInt8($0) }
        var client = try client([
            .cutOff(status: 206, headers: [("ETag", "\"v1\""), ("Content-Range", "bytes 10-59/100")], announced: 50,
                    body: Array(object[10..<30])),
            .respond(status: 206, headers: [("ETag", "\"v1\""), ("Content-Range", "bytes 30-59/100")], body: Array(object[30..<60])),
        ])
        XCTAssertEqual(try client.getObjectBytes(bucket: "b", key: "k", range: S3ByteRange(10..<60)), Array(object[10..<60]))
        XCTAssertEqual(server!.requests.map { $0.headers["range"] }, ["bytes=10-59", "bytes=30-59"])
        server!.shutdown()

        client = try self.client([
            .cutOff(status: 200, headers: [("ETag", "\"v1\"")], announced: 100, body: Array(object[..<10])),
            .respond(status: 206, headers: [("ETag", "\"v2\""), ("Content-Range", "bytes 10-99/100")], body: Array(object[10...])),
        ])
        XCTAssertThrowsError(try client.getObjectBytes(bucket: "b", key: "k")) {
            XCTAssertEqual($0 as? S3Error, .integrity(operation: "GetObject", detail: "k changed while it was being read"))
        }
    }

    func testAWrongContentRangeIsAnIntegrityError() throws {
        let client = try client([
            .respond(status: 206, headers: [("ETag", "\"v\""), ("Content-Range", "bytes 0-9/100")], body: Array(repeating: 1, count: 10)),
        ])
        var delivered = 0
        XCTAssertThrowsError(try client.getObject(bucket: "b", key: "k", range: S3ByteRange(10..<20)) { delivered += $0.count }) {
            guard case .integrity? = $0 as? S3Error else { return XCTFail("\($0)") }
        }
        XCTAssertEqual(delivered, 0, "nothing of a wrong range reaches the sink")
    }

    /// A transfer that stops making progress (no body byte for the stall timeout, 1 s here) is cut and retried,
    /// long before the stalled answer would end (6 s).
    func testStalledTransferIsCutAndRetried() throws {
        let client = try client([
            .stall(headers: [("ETag", "\"v\"")], announced: 20, body: [], seconds: 6),
            .respond(status: 200, headers: [("ETag", "\"v\"")], body: Array(repeating: 7, count: 20)),
        ], stalled: 1)
        let began = Date()
        XCTAssertEqual(try client.getObjectBytes(bucket: "b", key: "k"), Array(repeating: 7, count: 20))
        XCTAssertLessThan(Date().timeIntervalSince(began), 4)
        XCTAssertEqual(server!.requests.count, 2)
    }

    func testErrorsFromTheSinkAreNotRetried() throws {
        struct Full: Error {}
        let client = try client([.respond(status: 200, headers: [("ETag", "\"v\"")], body: [1, 2, 3])])
        XCTAssertThrowsError(try client.getObject(bucket: "b", key: "k") { _ in throw Full() }) { XCTAssertTrue($0 is Full) }
        XCTAssertEqual(server!.requests.count, 1)
    }

    /// CompleteMultipartUpload: an error inside a 200 answer is retried; when the answer of a completion that
    /// worked was lost, the retry's NoSuchUpload is resolved by the object's ETag, which must be the multipart ETag
    /// of exactly these parts.
    func testCompleteMultipartUploadRetries() throws {
        let parts = [S3CompletedPart(partNumber: 2, etag: LowerHex.encode(try MD5.hash([2]))),
                     S3CompletedPart(partNumber: 1, etag: LowerHex.encode(try MD5.hash([1])))]
        let expected = S3Client.multipartETag(parts.sorted { $0.partNumber < $1.partNumber })!
        XCTAssertTrue(expected.hasSuffix("-2"))
        let result = "<CompleteMultipartUploadResult><Key>k</Key><ETag>&quot;\(expected)&quot;</ETag></CompleteMultipartUploadResult>"
        var client = try client([.xml(200, "<Error><Code>InternalError</Code><Message>later</Message></Error>"), .xml(200, result)])
        XCTAssertEqual(try client.completeMultipartUpload(bucket: "b", key: "k", uploadID: "u1", parts: parts), expected)
        let body = String(decoding: server!.requests[1].body, as: UTF8.self)
        XCTAssertTrue(body.contains("<Part><PartNumber>1</PartNumber><ETag>&quot;\(parts[1].etag)&quot;</ETag></Part><Part><PartNumber>2</PartNumber>"), body)
        XCTAssertEqual(server!.requests[1].target, "/b/k?uploadId=u1")
        server!.shutdown()

        client = try self.client([.close, .error(404, "NoSuchUpload"), .respond(status: 200, headers: [("ETag", "\"\(expected)\"")])])
        XCTAssertEqual(try client.completeMultipartUpload(bucket: "b", key: "k", uploadID: "u1", parts: parts), expected)
        XCTAssertEqual(server!.requests.map(\.method), ["POST", "POST", "HEAD"])
        server!.shutdown()

        client = try self.client([.close, .error(404, "NoSuchUpload"), .respond(status: 200, headers: [("ETag", "\"other-2\"")])])
        XCTAssertThrowsError(try client.completeMultipartUpload(bucket: "b", key: "k", uploadID: "u1", parts: parts)) {
            XCTAssertEqual($0 as? S3Error, .noSuchUpload(bucket: "b", key: "k", uploadID: "u1"))
        }
    }

    /// An uploader whose part upload fails for good aborts its multipart upload and reports the failure.
    func testUploaderAbortsAfterAFailedPart() throws {
        let initiate = "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>up-1</UploadId></InitiateMultipartUploadResult>"
        let client = try client([.xml(200, initiate), .error(400, "InvalidPart", "rejected"), .respond(status: 204)], attempts: 1)
        let uploader = try S3MultipartUploader(client: client, bucket: "b", key: "k", maxPartsInFlight: 1)
        try uploader.write([UInt8](repeating: 0, count: uploader.partSize))
        XCTAssertThrowsError(try uploader.finish()) {
            XCTAssertEqual($0 as? S3Error, .service(operation: "UploadPart", status: 400, code: "InvalidPart", message: "rejected", attempts: 1))
        }
        XCTAssertEqual(server!.requests.map(\.method), ["POST", "PUT", "DELETE"])
        XCTAssertEqual(server!.requests.last?.target, "/b/k?uploadId=up-1")
    }
}
