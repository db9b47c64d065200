import Foundation
import VaultCrypto

/// A client for one S3-compatible object store: SigV4-signed requests over libcurl, retried with exponential
/// backoff on errors a new attempt may not see (HTTP 5xx and 429, S3's throttling and timeout codes, connections
/// that failed or dropped), every upload checked by the store against its `Content-MD5` and signed SHA-256.
///
/// Thread-safe: calls may run concurrently from many threads (each borrows its own connection). Every call blocks
/// its thread until the store has answered. Operations are in `S3Client+Objects.swift` and
/// `S3Client+Multipart.swift`.
public final class S3Client: Sendable {
    public let configuration: S3Configuration
    let signer: SigV4Signer
    private let pool = ConnectionPool()

    public init(configuration: S3Configuration) {
        self.configuration = configuration
        self.signer = SigV4Signer(credentials: configuration.credentials, region: configuration.region)
    }

    /// A client configured from the standard AWS environment variables (`S3Configuration.fromEnvironment`).
    public convenience init(environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.init(configuration: try S3Configuration.fromEnvironment(environment))
    }

    // MARK: - Requests

    /// One S3 request, unencoded; `operation` names it in errors ("PutObject").
    struct Request {
        var operation: String
        var method: String
        var bucket: String?
        var key: String?
        var query: [(name: String, value: String)] = []
        var headers: [(name: String, value: String)] = []
        var body: [UInt8] = []
        /// The hex SHA-256 of `body` when the caller has it already (it is computed otherwise).
        var payloadHash: String? = nil
    }

    /// An answer with a 2xx status: its head and, unless streamed to a sink, its body.
    struct Response {
        var head: HTTPResponseHead
        var body: [UInt8]
    }

    /// Sends `request` and collects the body of its 2xx answer (S3's XML answers are small).
    func send(_ request: Request) throws -> Response {
        var body: [UInt8] = []
        let head = try send(request) { body.append(contentsOf: $0) }
        return Response(head: head, body: body)
    }

    /// Sends `request`, retrying as `configuration.retry` allows; the body of a 2xx answer goes to `onBody`.
    /// A request whose answer started to reach `onBody` is not retried here (the caller decides: see `getObject`).
    func send(_ request: Request, onBody: (UnsafeRawBufferPointer) throws -> Void) throws -> HTTPResponseHead {
        var request = request
        if request.payloadHash == nil { request.payloadHash = LowerHex.encode(try SHA256.hash(request.body)) }  // once
        var streamed = false
        return try withRetries(request.operation) { _ in
            try self.sendOnce(request, onHead: { _ in }) { bytes in
                streamed = true
                try onBody(bytes)
            }
        } mayRetry: { !streamed }
    }

    /// Runs `attempt` (given its number, from 1) until it succeeds, fails for good, or the attempts run out.
    /// `mayRetry` can veto a retry (after part of a streamed body was delivered, for instance).
    func withRetries<R>(
        _ operation: String, _ attempt: (Int) throws -> R, mayRetry: () -> Bool = { true }
    ) throws -> R {
        let policy = configuration.retry
        var number = 1
        while true {
            do {
                return try attempt(number)
            } catch let failure as AttemptFailure {
                guard failure.retryable, number < policy.maxAttempts, mayRetry() else {
                    throw failure.error(attempts: number)
                }
            }
            Thread.sleep(forTimeInterval: policy.delay(afterAttempt: number))
            number += 1
        }
    }

    /// One attempt: signs `request` now, performs it, and maps a non-2xx answer or a transport failure to an
    /// `AttemptFailure` (whether to retry, and the error to report if not).
    func sendOnce(
        _ request: Request, onHead: (HTTPResponseHead) throws -> Void, onBody: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> HTTPResponseHead {
        let (url, headers) = try signedURLAndHeaders(request)
        let http = HTTPRequest(method: request.method, url: url, headers: headers, body: request.body)
        let settings = TransportSettings(
            connectTimeout: configuration.timeouts.connect,
            stalledTransferSeconds: configuration.timeouts.stalledTransfer,
            caBundlePath: configuration.caBundlePath, noProxy: Self.noProxy)
        let outcome: (head: HTTPResponseHead, errorBody: [UInt8])
        do {
            outcome = try pool.withConnection { try $0.perform(http, settings: settings, onHead: onHead, onBody: onBody) }
        } catch let sink as SinkFailure {
            throw sink.underlying
        } catch let transport as TransportFailure {
            throw AttemptFailure(transport: transport, request: request, endpoint: configuration.endpoint.description)
        }
        guard (200..<300).contains(outcome.head.status) else {
            throw AttemptFailure(
                status: outcome.head.status, errorBody: outcome.errorBody, request: request,
                endpoint: configuration.endpoint.description)
        }
        return outcome.head
    }

    /// `NO_PROXY` (or `no_proxy`) with the loopback names added.
    private static let noProxy: String = {
        let environment = ProcessInfo.processInfo.environment
        let given = environment["NO_PROXY"] ?? environment["no_proxy"] ?? ""
        return ([given] + ["localhost", "127.0.0.1", "::1"]).filter { !$0.isEmpty }.joined(separator: ",")
    }()

    /// The URL and the signed headers of `request`, addressed path-style or virtual-hosted.
    func signedURLAndHeaders(_ request: Request) throws -> (String, [(name: String, value: String)]) {
        let endpoint = configuration.endpoint
        var host = endpoint.hostHeader
        var path = endpoint.basePath
        if let bucket = request.bucket {
            switch configuration.addressing {
            case .path: path += "/" + bucket
            case .virtualHosted: host = bucket + "." + host
            }
        }
        path += "/" + (request.key ?? "")
        let payloadHash = try request.payloadHash ?? LowerHex.encode(SHA256.hash(request.body))
        let signed = try signer.signedRequest(
            SigV4Signer.Request(
                method: request.method, path: path, query: request.query,
                headers: [("Host", host)] + request.headers, payloadHash: payloadHash),
            at: Date())
        let origin = configuration.addressing == .virtualHosted && request.bucket != nil
            ? "\(endpoint.scheme)://\(host)" : endpoint.origin
        return (origin + signed.pathAndQuery, signed.headers)
    }
}

/// A failed attempt: whether another may succeed, and the error to report if none does.
struct AttemptFailure: Error {
    var retryable: Bool
    /// The error, with an attempt count of 1 where it has one.
    var base: S3Error

    /// `base` with its attempt count set to `attempts`.
    func error(attempts: Int) -> S3Error {
        switch base {
        case let .unreachable(endpoint, reason, _):
            return .unreachable(endpoint: endpoint, reason: reason, attempts: attempts)
        case let .connectionFailed(endpoint, operation, reason, _):
            return .connectionFailed(endpoint: endpoint, operation: operation, reason: reason, attempts: attempts)
        case let .service(operation, status, code, message, _):
            return .service(operation: operation, status: status, code: code, message: message, attempts: attempts)
        default:
            return base
        }
    }

    init(transport: TransportFailure, request: S3Client.Request, endpoint: String) {
        retryable = transport.retryable
        switch transport.phase {
        case .connect:
            base = .unreachable(endpoint: endpoint, reason: transport.reason, attempts: 1)
        case .transfer:
            base = .connectionFailed(endpoint: endpoint, operation: request.operation, reason: transport.reason, attempts: 1)
        case .local:
            base = .client(transport.reason)
        }
    }

    init(status: Int, errorBody: [UInt8], request: S3Client.Request, endpoint: String) {
        let parsed = XMLElementNode.parse(errorBody).flatMap { $0.name == "Error" ? $0 : nil }
        let code = parsed?.value("Code")
        let message = parsed?.value("Message").map(S3Error.oneLine)
        retryable = Self.isRetryable(status: status, code: code)
        let bucket = request.bucket ?? ""
        let key = request.key ?? ""
        switch (status, code) {
        case (_, let code?) where Self.credentialCodes.contains(code):
            base = .invalidCredentials(endpoint: endpoint, code: code)
        case (403, "AccessDenied"?), (403, nil):
            base = .accessDenied(operation: request.operation, bucket: bucket)
        case (404, "NoSuchBucket"?):
            base = .noSuchBucket(bucket: bucket)
        case (404, "NoSuchKey"?):
            base = .noSuchKey(bucket: bucket, key: key)
        case (404, "NoSuchUpload"?):
            base = .noSuchUpload(
                bucket: bucket, key: key, uploadID: request.query.first { $0.name == "uploadId" }?.value ?? "")
        case (404, nil) where request.method == "HEAD":
            // A HEAD answer has no body to name the error: a missing object, or (HeadBucket) a missing bucket.
            base = request.key == nil ? .noSuchBucket(bucket: bucket) : .noSuchKey(bucket: bucket, key: key)
        case (412, _) where request.headers.contains { $0.name == "If-Match" }:
            // Only resumed downloads send If-Match: the object changed since the first part of it arrived.
            base = .integrity(operation: request.operation, detail: "\(key) changed while it was being read")
        case (501, _):
            base = .notImplemented(operation: request.operation)
        case (_, let code?) where ["BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch"].contains(code):
            base = .integrity(
                operation: request.operation,
                detail: "the store received other bytes than were sent (\(code)\(message.map { ": " + $0 } ?? ""))")
        default:
            base = .service(operation: request.operation, status: status, code: code, message: message, attempts: 1)
        }
    }

    /// S3 error codes that mean the credentials themselves were refused.
    static let credentialCodes: Set<String> = [
        "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidToken", "ExpiredToken", "InvalidSecurity",
        "InvalidClientTokenId",
    ]

    /// 5xx except 501, 429, and S3's throttling and timeout codes (some stores send them with 400 or 503).
    static func isRetryable(status: Int, code: String?) -> Bool {
        if let code, ["SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "RequestThrottled",
                      "RequestTimeout", "InternalError", "ServiceUnavailable"].contains(code) {
            return true
        }
        return status == 429 || (status >= 500 && status != 501)
    }
}
