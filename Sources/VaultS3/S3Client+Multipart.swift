import Foundation
import VaultCrypto

extension S3Client {
    /// CreateMultipartUpload: starts an upload of `key` and returns its upload ID.
    public func createMultipartUpload(bucket: String, key: String, contentType: String? = nil) throws -> String {
        var request = Request(
            operation: "CreateMultipartUpload", method: "POST", bucket: bucket, key: key, query: [("uploads", "")])
        if let contentType { request.headers.append(("Content-Type", contentType)) }
        let result = try Self.parse(
            try send(request).body, root: "InitiateMultipartUploadResult", operation: "CreateMultipartUpload")
        guard let uploadID = result.value("UploadId"), !uploadID.isEmpty else {
            throw S3Error.invalidResponse(operation: "CreateMultipartUpload", detail: "no UploadId")
        }
        return uploadID
    }

    /// UploadPart: part `partNumber` (1…10000) of the upload, with `Content-MD5` and the signed SHA-256 of the
    /// part (the store checks both). Every part but the last must be at least 5 MiB.
    /// - Returns: the part's number and the ETag to list in `completeMultipartUpload`.
    public func uploadPart(
        bucket: String, key: String, uploadID: String, partNumber: Int, body: [UInt8]
    ) throws -> S3CompletedPart {
        guard (1...10_000).contains(partNumber) else {
            throw S3Error.client("part number \(partNumber) is outside 1...10000")
        }
        var request = Request(
            operation: "UploadPart", method: "PUT", bucket: bucket, key: key,
            query: [("partNumber", String(partNumber)), ("uploadId", uploadID)], body: body)
        let md5 = try MD5.hash(body)
        request.headers.append(("Content-MD5", Data(md5).base64EncodedString()))
        let response = try send(request)
        guard let etag = response.head.etag, !etag.isEmpty else {
            throw S3Error.invalidResponse(operation: "UploadPart", detail: "no ETag for part \(partNumber)")
        }
        return S3CompletedPart(partNumber: partNumber, etag: etag)
    }

    /// CompleteMultipartUpload with `parts` (sorted here by part number). Retrying is safe: when an earlier
    /// attempt completed the upload but its answer was lost, the retry sees NoSuchUpload, and the object is then
    /// accepted if its ETag is the one this upload must produce (the MD5 of the parts' MD5s, `-` part count).
    /// - Returns: the object's ETag.
    public func completeMultipartUpload(
        bucket: String, key: String, uploadID: String, parts: [S3CompletedPart]
    ) throws -> String {
        let sorted = parts.sorted { $0.partNumber < $1.partNumber }
        var xml = XMLWriter()
        xml.open("CompleteMultipartUpload")
        for part in sorted {
            xml.open("Part")
            xml.element("PartNumber", String(part.partNumber))
            xml.element("ETag", "\"\(part.etag)\"")
            xml.close("Part")
        }
        xml.close("CompleteMultipartUpload")
        var request = Request(
            operation: "CompleteMultipartUpload", method: "POST", bucket: bucket, key: key,
            query: [("uploadId", uploadID)], body: xml.bytes)
        request.headers.append(("Content-MD5", try Self.contentMD5(request.body)))
        request.headers.append(("Content-Type", "application/xml"))
        let expected = Self.multipartETag(sorted)
        var attempts = 0
        do {
            let body = try withRetries("CompleteMultipartUpload") { _ in
                attempts += 1
                var body: [UInt8] = []
                _ = try sendOnce(request, onHead: { _ in }, onBody: { body.append(contentsOf: $0) })
                // S3 may answer 200 and then report an error in the body (it sends the status before the work
                // is done): such an answer is retried like a 500.
                if let document = XMLElementNode.parse(body), document.name == "Error" {
                    let code = document.value("Code")
                    throw AttemptFailure(
                        retryable: code.map { AttemptFailure.isRetryable(status: 500, code: $0) } ?? true,
                        base: .service(
                            operation: "CompleteMultipartUpload", status: 200, code: code,
                            message: document.value("Message").map(S3Error.oneLine), attempts: 1))
                }
                return body
            }
            let result = try Self.parse(
                body, root: "CompleteMultipartUploadResult", operation: "CompleteMultipartUpload")
            let etag = unquote(result.value("ETag") ?? "")
            if let expected, !etag.isEmpty, etag != expected {
                throw S3Error.integrity(
                    operation: "CompleteMultipartUpload", detail: "\(key) has ETag \(etag), expected \(expected)")
            }
            return etag
        } catch S3Error.noSuchUpload where attempts > 1 {
            let info = try headObject(bucket: bucket, key: key)
            guard let expected, info.etag == expected else { throw S3Error.noSuchUpload(bucket: bucket, key: key, uploadID: uploadID) }
            return info.etag
        }
    }

    /// AbortMultipartUpload: discards the upload and its parts.
    /// - Throws: `S3Error.noSuchUpload` when it was completed or aborted already.
    public func abortMultipartUpload(bucket: String, key: String, uploadID: String) throws {
        _ = try send(Request(
            operation: "AbortMultipartUpload", method: "DELETE", bucket: bucket, key: key,
            query: [("uploadId", uploadID)]))
    }

    /// ListMultipartUploads: every unfinished upload under `prefix`, page after page.
    public func listMultipartUploads(bucket: String, prefix: String = "") throws -> [S3MultipartUploadInfo] {
        var uploads: [S3MultipartUploadInfo] = []
        var keyMarker: String?
        var uploadIDMarker: String?
        while true {
            var query: [(name: String, value: String)] = [("uploads", ""), ("encoding-type", "url")]
            if !prefix.isEmpty { query.append(("prefix", prefix)) }
            if let keyMarker { query.append(("key-marker", keyMarker)) }
            if let uploadIDMarker { query.append(("upload-id-marker", uploadIDMarker)) }
            let response = try send(Request(
                operation: "ListMultipartUploads", method: "GET", bucket: bucket, key: nil, query: query))
            let result = try Self.parse(
                response.body, root: "ListMultipartUploadsResult", operation: "ListMultipartUploads")
            let urlEncoded = result.value("EncodingType") == "url"
            for upload in result.children("Upload") {
                guard let rawKey = upload.value("Key"), let uploadID = upload.value("UploadId"),
                      let key = urlEncoded ? PercentEncoding.decodeFormComponent(rawKey) : rawKey
                else {
                    throw S3Error.invalidResponse(operation: "ListMultipartUploads", detail: "an upload without Key or UploadId")
                }
                uploads.append(S3MultipartUploadInfo(key: key, uploadID: uploadID, initiated: upload.value("Initiated")))
            }
            guard result.value("IsTruncated") == "true" else { return uploads }
            let nextKey = result.value("NextKeyMarker").flatMap { urlEncoded ? PercentEncoding.decodeFormComponent($0) : $0 }
            let nextUpload = result.value("NextUploadIdMarker")
            guard let nextKey, nextKey != keyMarker || nextUpload != uploadIDMarker else {
                throw S3Error.invalidResponse(operation: "ListMultipartUploads", detail: "a truncated page without next markers")
            }
            keyMarker = nextKey
            uploadIDMarker = nextUpload
        }
    }

    /// The ETag S3 gives an object completed from `parts`: hex MD5 of the concatenated binary part MD5s, `-`, the
    /// part count. Nil when a part's ETag is not an MD5 (a store that does not follow this convention).
    static func multipartETag(_ parts: [S3CompletedPart]) -> String? {
        var digests: [UInt8] = []
        for part in parts {
            guard let md5 = hexBytes(part.etag), md5.count == 16 else { return nil }
            digests += md5
        }
        guard let combined = try? MD5.hash(digests) else { return nil }
        return LowerHex.encode(combined) + "-\(parts.count)"
    }

    private static func hexBytes(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.lowercased().utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: utf8.count, by: 2) {
            guard let value = UInt8(String(decoding: utf8[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(value)
        }
        return bytes
    }
}

extension AttemptFailure {
    init(retryable: Bool, base: S3Error) {
        self.retryable = retryable
        self.base = base
    }
}
