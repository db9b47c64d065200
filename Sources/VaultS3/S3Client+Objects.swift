import Foundation
import VaultCrypto

extension S3Client {
    // MARK: - Buckets

    /// HeadBucket: succeeds when the bucket exists and the credentials may use it.
    /// - Throws: `S3Error.noSuchBucket`, `.accessDenied` (a HEAD answer carries no error code, so wrong credentials
    ///   also show as access denied here: `listObjectsV2` names them precisely), `.unreachable`, …
    public func headBucket(_ bucket: String) throws {
        _ = try send(Request(operation: "HeadBucket", method: "HEAD", bucket: bucket, key: nil))
    }

    /// CreateBucket (tests and set-up). Outside us-east-1 the region goes in a `CreateBucketConfiguration`.
    public func createBucket(_ bucket: String) throws {
        var body: [UInt8] = []
        if configuration.region != "us-east-1" {
            var xml = XMLWriter()
            xml.open("CreateBucketConfiguration")
            xml.element("LocationConstraint", configuration.region)
            xml.close("CreateBucketConfiguration")
            body = xml.bytes
        }
        var request = Request(operation: "CreateBucket", method: "PUT", bucket: bucket, key: nil, body: body)
        if !body.isEmpty { request.headers.append(("Content-MD5", try Self.contentMD5(body))) }
        _ = try send(request)
    }

    /// DeleteBucket (tests and set-up): the bucket must be empty.
    public func deleteBucket(_ bucket: String) throws {
        _ = try send(Request(operation: "DeleteBucket", method: "DELETE", bucket: bucket, key: nil))
    }

    // MARK: - Objects

    /// PutObject of `body` in one request, with `Content-MD5` and the signed SHA-256 of the body (the store checks
    /// both). For large or streamed objects use `S3MultipartUploader`.
    @discardableResult
    public func putObject(bucket: String, key: String, body: [UInt8], contentType: String? = nil) throws -> S3UploadResult {
        var request = Request(operation: "PutObject", method: "PUT", bucket: bucket, key: key, body: body)
        request.headers.append(("Content-MD5", try Self.contentMD5(body)))
        if let contentType { request.headers.append(("Content-Type", contentType)) }
        let response = try send(request)
        return S3UploadResult(etag: response.head.etag ?? "", size: UInt64(body.count), parts: 0)
    }

    /// GetObject: streams the object (or `range` of it) to `sink`, in order, each byte once.
    ///
    /// A connection that drops mid-body is retried from the first byte not yet delivered, with `If-Match` on the
    /// ETag of the first answer, so a resumed download never splices two versions of an object. Every answer's
    /// `Content-Range` must start where asked, and the bytes delivered must add up to the object's (or range's)
    /// length. An error `sink` throws stops the download and is rethrown as is. With `ifMatch` (an ETag without
    /// quotes, e.g. from `headObject`), every request carries `If-Match` on it: the answer is that version of the
    /// object or an integrity error (an object replaced since fails instead of being read; ranges of one object
    /// can be read concurrently).
    /// - Returns: the object's size, ETag and `Last-Modified`.
    @discardableResult
    public func getObject(
        bucket: String, key: String, range: S3ByteRange? = nil, ifMatch: String? = nil,
        into sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> S3ObjectInfo {
        var delivered: UInt64 = 0
        var info: S3ObjectInfo?
        var expectedLength: UInt64?
        try withRetries("GetObject") { _ in
            let start = (range?.first ?? 0) + delivered
            var request = Request(operation: "GetObject", method: "GET", bucket: bucket, key: key)
            if range != nil || delivered > 0 {
                request.headers.append(("Range", S3ByteRange(first: start, last: range?.last).headerValue))
            }
            if let etag = info?.etag ?? ifMatch, !etag.isEmpty { request.headers.append(("If-Match", "\"\(etag)\"")) }
            _ = try sendOnce(request, onHead: { head in
                let answer = try Self.objectInfo(head, operation: "GetObject", rangeStart: request.headers.contains { $0.name == "Range" } ? start : nil)
                if let ifMatch, !ifMatch.isEmpty, answer.info.etag != ifMatch {
                    throw S3Error.integrity(operation: "GetObject", detail: "\(key) changed while it was being read")
                }
                if info == nil {
                    info = answer.info
                    expectedLength = answer.length
                } else if answer.info.etag != info!.etag {
                    throw S3Error.integrity(operation: "GetObject", detail: "\(key) changed while it was being read")
                }
            }, onBody: { bytes in
                delivered += UInt64(bytes.count)
                try sink(bytes)
            })
        }
        guard let info, let expectedLength else {
            throw S3Error.invalidResponse(operation: "GetObject", detail: "no answer headers")
        }
        guard delivered == expectedLength else {
            throw S3Error.integrity(
                operation: "GetObject", detail: "\(key): received \(delivered) bytes, expected \(expectedLength)")
        }
        return info
    }

    /// GetObject into memory (small objects).
    public func getObjectBytes(bucket: String, key: String, range: S3ByteRange? = nil) throws -> [UInt8] {
        var bytes: [UInt8] = []
        try getObject(bucket: bucket, key: key, range: range) { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// HeadObject: size, ETag and `Last-Modified`.
    /// - Throws: `S3Error.noSuchKey` when the object (or its bucket) does not exist.
    public func headObject(bucket: String, key: String) throws -> S3ObjectInfo {
        let response = try send(Request(operation: "HeadObject", method: "HEAD", bucket: bucket, key: key))
        return try Self.objectInfo(response.head, operation: "HeadObject", rangeStart: nil).info
    }

    /// DeleteObject. Deleting a key that does not exist succeeds, as in S3.
    public func deleteObject(bucket: String, key: String) throws {
        _ = try send(Request(operation: "DeleteObject", method: "DELETE", bucket: bucket, key: key))
    }

    /// DeleteObjects in batches of at most 1000 keys (S3's limit), each request with its `Content-MD5` (which S3
    /// requires for this call). Keys that do not exist count as deleted.
    /// - Returns: the keys the store could not delete, with its reasons (empty when all were deleted).
    @discardableResult
    public func deleteObjects(bucket: String, keys: [String]) throws -> [S3DeleteFailure] {
        var failures: [S3DeleteFailure] = []
        for start in stride(from: 0, to: keys.count, by: 1000) {
            var xml = XMLWriter()
            xml.open("Delete")
            xml.element("Quiet", "true")
            for key in keys[start..<min(start + 1000, keys.count)] {
                xml.open("Object")
                xml.element("Key", key)
                xml.close("Object")
            }
            xml.close("Delete")
            var request = Request(
                operation: "DeleteObjects", method: "POST", bucket: bucket, key: nil, query: [("delete", "")],
                body: xml.bytes)
            request.headers.append(("Content-MD5", try Self.contentMD5(request.body)))
            request.headers.append(("Content-Type", "application/xml"))
            let result = try Self.parse(try send(request).body, root: "DeleteResult", operation: "DeleteObjects")
            for error in result.children("Error") {
                failures.append(S3DeleteFailure(
                    key: error.value("Key") ?? "", code: error.value("Code") ?? "",
                    message: S3Error.oneLine(error.value("Message") ?? "")))
            }
        }
        return failures
    }

    // MARK: - Listing

    /// One page of ListObjectsV2 (at most `maxKeys` objects and common prefixes, S3 caps it at 1000), keys requested
    /// URL-encoded so that any key survives the XML answer. With `delimiter`, keys that contain it after `prefix` are
    /// rolled up into `commonPrefixes` (each up to and including the first delimiter) instead of being listed.
    public func listObjectsV2(
        bucket: String, prefix: String = "", delimiter: String? = nil, continuationToken: String? = nil,
        startAfter: String? = nil, maxKeys: Int = 1000
    ) throws -> S3ListPage {
        var query: [(name: String, value: String)] = [
            ("list-type", "2"), ("encoding-type", "url"), ("max-keys", String(maxKeys)),
        ]
        if !prefix.isEmpty { query.append(("prefix", prefix)) }
        if let delimiter { query.append(("delimiter", delimiter)) }
        if let continuationToken { query.append(("continuation-token", continuationToken)) }
        if let startAfter { query.append(("start-after", startAfter)) }
        let response = try send(
            Request(operation: "ListObjectsV2", method: "GET", bucket: bucket, key: nil, query: query))
        let result = try Self.parse(response.body, root: "ListBucketResult", operation: "ListObjectsV2")
        let urlEncoded = result.value("EncodingType") == "url"
        var objects: [S3ObjectSummary] = []
        for entry in result.children("Contents") {
            guard let rawKey = entry.value("Key"), let size = entry.value("Size").flatMap({ UInt64($0) }) else {
                throw S3Error.invalidResponse(operation: "ListObjectsV2", detail: "an entry without Key or Size")
            }
            guard let key = urlEncoded ? PercentEncoding.decodeFormComponent(rawKey) : rawKey else {
                throw S3Error.invalidResponse(operation: "ListObjectsV2", detail: "a malformed URL-encoded key")
            }
            objects.append(S3ObjectSummary(
                key: key, size: size, etag: unquote(entry.value("ETag") ?? ""), lastModified: entry.value("LastModified")))
        }
        var commonPrefixes: [String] = []
        for entry in result.children("CommonPrefixes") {
            guard let raw = entry.value("Prefix"), let decoded = urlEncoded ? PercentEncoding.decodeFormComponent(raw) : raw else {
                throw S3Error.invalidResponse(operation: "ListObjectsV2", detail: "a common prefix without a valid Prefix")
            }
            commonPrefixes.append(decoded)
        }
        let truncated = result.value("IsTruncated") == "true"
        let next = result.value("NextContinuationToken").flatMap { $0.isEmpty ? nil : $0 }
        if truncated && next == nil {
            throw S3Error.invalidResponse(operation: "ListObjectsV2", detail: "a truncated page without NextContinuationToken")
        }
        return S3ListPage(objects: objects, nextContinuationToken: truncated ? next : nil, commonPrefixes: commonPrefixes)
    }

    /// Calls `body` for every object under `prefix`, page after page (`pageSize` per request).
    public func forEachObject(
        bucket: String, prefix: String = "", pageSize: Int = 1000, _ body: (S3ObjectSummary) throws -> Void
    ) throws {
        var token: String?
        repeat {
            let page = try listObjectsV2(bucket: bucket, prefix: prefix, continuationToken: token, maxKeys: pageSize)
            for object in page.objects { try body(object) }
            token = page.nextContinuationToken
        } while token != nil
    }

    /// Every object under `prefix`.
    public func listObjects(bucket: String, prefix: String = "", pageSize: Int = 1000) throws -> [S3ObjectSummary] {
        var all: [S3ObjectSummary] = []
        try forEachObject(bucket: bucket, prefix: prefix, pageSize: pageSize) { all.append($0) }
        return all
    }

    // MARK: - Helpers

    /// `Content-MD5`: the base64 of the body's MD5.
    static func contentMD5(_ body: [UInt8]) throws -> String {
        Data(try MD5.hash(body)).base64EncodedString()
    }

    /// Parses an XML answer whose root must be `root`. A 200 answer may still carry an `<Error>` (S3 does that for
    /// CompleteMultipartUpload): it becomes the matching error.
    static func parse(_ body: [UInt8], root: String, operation: String) throws -> XMLElementNode {
        guard let document = XMLElementNode.parse(body) else {
            throw S3Error.invalidResponse(operation: operation, detail: "malformed XML (\(body.count) bytes)")
        }
        if document.name == "Error" {
            let code = document.value("Code")
            throw S3Error.service(
                operation: operation, status: 200, code: code, message: document.value("Message").map(S3Error.oneLine),
                attempts: 1)
        }
        guard document.name == root else {
            throw S3Error.invalidResponse(operation: operation, detail: "expected <\(root)>, got <\(document.name)>")
        }
        return document
    }

    /// The object's size, ETag and date from a GET or HEAD answer, and the number of body bytes the answer carries.
    /// With `rangeStart`, the answer must be a 206 whose `Content-Range` starts there.
    static func objectInfo(
        _ head: HTTPResponseHead, operation: String, rangeStart: UInt64?
    ) throws -> (info: S3ObjectInfo, length: UInt64) {
        guard let length = head["content-length"].flatMap({ UInt64($0) }) else {
            throw S3Error.invalidResponse(operation: operation, detail: "no Content-Length")
        }
        var size = length
        if rangeStart == 0, head.status == 200 {
            // A store may answer a range from the first byte with the whole object (HTTP lets it ignore Range).
        } else if let rangeStart {
            // "bytes FIRST-LAST/TOTAL"
            guard head.status == 206, let value = head["content-range"], value.hasPrefix("bytes "),
                  let dash = value.firstIndex(of: "-"), let slash = value.firstIndex(of: "/"),
                  let first = UInt64(value[value.index(value.startIndex, offsetBy: 6)..<dash]),
                  let last = UInt64(value[value.index(after: dash)..<slash])
            else {
                throw S3Error.integrity(operation: operation, detail: "a ranged answer without a valid Content-Range")
            }
            guard first == rangeStart, last - first + 1 == length else {
                throw S3Error.integrity(
                    operation: operation, detail: "asked for bytes from \(rangeStart), got \(first)-\(last)")
            }
            size = UInt64(value[value.index(after: slash)...]) ?? size
        }
        return (S3ObjectInfo(size: size, etag: head.etag ?? "", lastModified: head["last-modified"]), length)
    }
}
