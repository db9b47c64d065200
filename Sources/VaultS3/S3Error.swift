import Foundation

/// Every failure VaultS3 reports. `description` is one line that says what failed and what to check; it never
/// contains a secret (the secret key, a session token, a signature) nor a whole server response.
public enum S3Error: Error, Equatable, CustomStringConvertible {
    /// A configuration value (usually an environment variable) is missing or malformed.
    case invalidConfiguration(String)
    /// No connection could be made (refused, no route, name not resolved, connect timeout), after `attempts` tries.
    case unreachable(endpoint: String, reason: String, attempts: Int)
    /// Connections were made but the transfer failed each time (dropped, stalled, reset), after `attempts` tries.
    case connectionFailed(endpoint: String, operation: String, reason: String, attempts: Int)
    /// The store rejected the credentials: `code` is S3's (SignatureDoesNotMatch, InvalidAccessKeyId, ExpiredToken…).
    case invalidCredentials(endpoint: String, code: String)
    /// The credentials are valid but may not do `operation` on the bucket (HTTP 403 AccessDenied).
    case accessDenied(operation: String, bucket: String)
    /// The bucket does not exist.
    case noSuchBucket(bucket: String)
    /// The object does not exist.
    case noSuchKey(bucket: String, key: String)
    /// The multipart upload does not exist (completed or aborted already, or never created).
    case noSuchUpload(bucket: String, key: String, uploadID: String)
    /// The store does not implement `operation` (HTTP 501): never retried, and never worked around.
    case notImplemented(operation: String)
    /// A transfer failed its integrity check (the store's BadDigest, a short body, a mismatched range or ETag).
    case integrity(operation: String, detail: String)
    /// Any other error answer: HTTP status, S3 error code and message (shortened), after `attempts` tries.
    case service(operation: String, status: Int, code: String?, message: String?, attempts: Int)
    /// The store answered something VaultS3 cannot read (malformed XML, a missing field).
    case invalidResponse(operation: String, detail: String)
    /// A request could not be built or sent for a local reason (libcurl setup, an invalid argument).
    case client(String)

    public var description: String {
        switch self {
        case let .invalidConfiguration(text):
            return "Object store configuration: \(text)."
        case let .unreachable(endpoint, reason, attempts):
            return "Cannot reach the object store at \(endpoint): \(reason) (\(Self.tries(attempts))); "
                + "check AWS_ENDPOINT_URL and that the store is running."
        case let .connectionFailed(endpoint, operation, reason, attempts):
            return "\(operation) to the object store at \(endpoint) failed: \(reason) (\(Self.tries(attempts)))."
        case let .invalidCredentials(endpoint, code):
            return "The object store at \(endpoint) rejected the credentials (\(code)); "
                + "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN if set)."
        case let .accessDenied(operation, bucket):
            return "\(operation) on bucket \(bucket) was refused (HTTP 403 access denied); "
                + "check the credentials and their permissions on the bucket."
        case let .noSuchBucket(bucket):
            return "Bucket \(bucket) does not exist in the object store; create it or check the bucket name."
        case let .noSuchKey(bucket, key):
            return "Object \(key) does not exist in bucket \(bucket)."
        case let .noSuchUpload(bucket, key, uploadID):
            return "Multipart upload \(uploadID) of \(key) in bucket \(bucket) does not exist (completed or aborted)."
        case let .notImplemented(operation):
            return "The object store does not support \(operation) (HTTP 501)."
        case let .integrity(operation, detail):
            return "\(operation) failed its integrity check: \(detail)."
        case let .service(operation, status, code, message, attempts):
            var text = "\(operation) failed: HTTP \(status)"
            if let code { text += " \(code)" }
            if let message, !message.isEmpty { text += ": \(message)" }
            if attempts > 1 { text += " (\(Self.tries(attempts)))" }
            return text + "."
        case let .invalidResponse(operation, detail):
            return "\(operation): the object store's answer could not be read: \(detail)."
        case let .client(text):
            return "S3 client: \(text)."
        }
    }

    private static func tries(_ attempts: Int) -> String { attempts == 1 ? "1 attempt" : "\(attempts) attempts" }

    /// An error text from a server, made safe for a one-line message: control characters removed, at most 200
    /// characters.
    static func oneLine(_ text: String) -> String {
        let cleaned = String(text.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : Character($0) })
            .trimmingCharacters(in: .whitespaces)
        return cleaned.count > 200 ? String(cleaned.prefix(197)) + "..." : cleaned
    }
}
