import Foundation

/// What HeadObject (and a GetObject's answer) tells about an object.
public struct S3ObjectInfo: Sendable, Equatable {
    /// The object's size in bytes (for a ranged GET: the whole object's, not the range's).
    public var size: UInt64
    /// The ETag without quotes: the MD5 in hex for an object stored in one PUT, `HASH-PARTS` after a multipart upload.
    public var etag: String
    /// `Last-Modified`, as the store sent it.
    public var lastModified: String?
}

/// One entry of a ListObjectsV2 page.
public struct S3ObjectSummary: Sendable, Equatable {
    public var key: String
    public var size: UInt64
    public var etag: String
    /// `LastModified` (ISO 8601), as the store sent it.
    public var lastModified: String?
}

/// One page of ListObjectsV2.
public struct S3ListPage: Sendable, Equatable {
    public var objects: [S3ObjectSummary]
    /// Pass it as `continuationToken` for the next page; nil on the last page.
    public var nextContinuationToken: String?
    /// With a delimiter: the rolled-up prefixes of this page (each ends with the delimiter).
    public var commonPrefixes: [String] = []
}

/// A byte range of an object, both ends included (HTTP `Range: bytes=FIRST-LAST`).
public struct S3ByteRange: Sendable, Equatable {
    public var first: UInt64
    /// The last byte included; nil reads to the end of the object.
    public var last: UInt64?

    public init(first: UInt64, last: UInt64? = nil) {
        self.first = first
        self.last = last
    }

    /// `range` of byte offsets, e.g. `S3ByteRange(10..<20)`.
    public init(_ range: Range<UInt64>) {
        precondition(!range.isEmpty, "an S3 byte range must not be empty")
        self.init(first: range.lowerBound, last: range.upperBound - 1)
    }

    var headerValue: String { "bytes=\(first)-\(last.map(String.init) ?? "")" }
}

/// A key DeleteObjects could not delete, with S3's code and message.
public struct S3DeleteFailure: Sendable, Equatable {
    public var key: String
    public var code: String
    public var message: String
}

/// An unfinished multipart upload (ListMultipartUploads).
public struct S3MultipartUploadInfo: Sendable, Equatable {
    public var key: String
    public var uploadID: String
    /// `Initiated` (ISO 8601), as the store sent it.
    public var initiated: String?
}

/// A part uploaded to a multipart upload: its number (1…10000) and the ETag the store returned for it.
public struct S3CompletedPart: Sendable, Equatable {
    public var partNumber: Int
    public var etag: String

    public init(partNumber: Int, etag: String) {
        self.partNumber = partNumber
        self.etag = etag
    }
}

/// The result of a finished upload (PutObject or CompleteMultipartUpload).
public struct S3UploadResult: Sendable, Equatable {
    public var etag: String
    /// Bytes uploaded.
    public var size: UInt64
    /// Parts uploaded; 0 when the object went up in a single PutObject.
    public var parts: Int
}

extension HTTPResponseHead {
    /// The ETag header without its quotes.
    var etag: String? { self["etag"].map(unquote) }
}

/// Removes the double quotes S3 puts around ETags.
func unquote(_ text: String) -> String {
    text.count >= 2 && text.hasPrefix("\"") && text.hasSuffix("\"") ? String(text.dropFirst().dropLast()) : text
}
