import Foundation
import VaultCrypto

/// AWS Signature Version 4 for S3, header-based, payload in a single chunk (the S3 API reference's
/// "Signature Calculations for the Authorization Header: Transferring Payload in a Single Chunk").
///
/// Written once here over VaultCrypto's SHA-256 and HMAC-SHA-256, and checked against the four worked examples of
/// that page (`SigV4Tests`). The caller gives the request unencoded; the signer percent-encodes the path and the
/// query once, and `signedRequest` returns the exact path-and-query the HTTP layer must send, so the bytes signed
/// are the bytes sent.
struct SigV4Signer: Sendable {
    let credentials: S3Credentials
    let region: String
    let service = "s3"

    /// A request as the signer needs it: method, unencoded absolute path, unencoded query parameters, the headers
    /// to sign (any case; `host` among them) and the hex SHA-256 of the payload (or `UNSIGNED-PAYLOAD`).
    struct Request {
        var method: String
        var path: String
        var query: [(name: String, value: String)]
        var headers: [(name: String, value: String)]
        var payloadHash: String
    }

    /// What the HTTP layer sends: the encoded path and query, and the headers including the `Authorization`.
    struct Signed {
        var pathAndQuery: String
        var headers: [(name: String, value: String)]
    }

    /// The SHA-256 of an empty payload, in hex.
    static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// Adds `x-amz-date`, `x-amz-content-sha256` and (with temporary credentials) `x-amz-security-token` to the
    /// request's headers, signs them all, and returns what to send.
    func signedRequest(_ request: Request, at date: Date) throws -> Signed {
        var request = request
        let timestamp = Self.timestamp(date)
        request.headers.append(("x-amz-date", timestamp))
        request.headers.append(("x-amz-content-sha256", request.payloadHash))
        if let token = credentials.sessionToken { request.headers.append(("x-amz-security-token", token)) }
        let authorization = try self.authorization(request, timestamp: timestamp)
        let query = Self.canonicalQuery(request.query)
        return Signed(
            pathAndQuery: Self.canonicalURI(request.path) + (query.isEmpty ? "" : "?" + query),
            headers: request.headers + [("Authorization", authorization)])
    }

    /// The `Authorization` header value for `request`, whose headers already include `x-amz-date` (= `timestamp`).
    func authorization(_ request: Request, timestamp: String) throws -> String {
        let (canonical, signedHeaders) = Self.canonicalRequest(request)
        let scope = credentialScope(day: String(timestamp.prefix(8)))
        let signature = try self.signature(
            stringToSign: try Self.stringToSign(canonicalRequest: canonical, timestamp: timestamp, scope: scope),
            day: String(timestamp.prefix(8)))
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope),SignedHeaders=\(signedHeaders),Signature=\(signature)"
    }

    /// `DAY/REGION/s3/aws4_request`.
    func credentialScope(day: String) -> String { "\(day)/\(region)/\(service)/aws4_request" }

    /// The canonical request and the `SignedHeaders` list: method, canonical URI, canonical query, canonical headers
    /// (lower-case names, sorted; values trimmed, inner runs of spaces collapsed), signed header names, payload hash.
    static func canonicalRequest(_ request: Request) -> (text: String, signedHeaders: String) {
        var merged: [String: [String]] = [:]
        for (name, value) in request.headers {
            merged[name.lowercased(), default: []].append(canonicalHeaderValue(value))
        }
        let names = merged.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(merged[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let text = [
            request.method, canonicalURI(request.path), canonicalQuery(request.query), canonicalHeaders, signedHeaders,
            request.payloadHash,
        ].joined(separator: "\n")
        return (text, signedHeaders)
    }

    /// `AWS4-HMAC-SHA256`, the timestamp, the scope and the hex SHA-256 of the canonical request.
    static func stringToSign(canonicalRequest: String, timestamp: String, scope: String) throws -> String {
        let hash = LowerHex.encode(try SHA256.hash(Array(canonicalRequest.utf8)))
        return "AWS4-HMAC-SHA256\n\(timestamp)\n\(scope)\n\(hash)"
    }

    /// HMAC(kSigning, stringToSign) in hex, kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), "s3"),
    /// "aws4_request"). Every intermediate key stays in `SecretBytes`.
    func signature(stringToSign: String, day: String) throws -> String {
        var key = credentials.signingSeed
        for part in [day, region, service, "aws4_request"] {
            key = try HMACSHA256.derivedKey(key: key, message: Array(part.utf8))
        }
        return LowerHex.encode(try HMACSHA256.authenticationCode(key: key, message: Array(stringToSign.utf8)))
    }

    /// The path, each byte outside the unreserved set percent-encoded once, slashes kept (S3 does not normalize
    /// paths and does not encode twice).
    static func canonicalURI(_ path: String) -> String {
        path.isEmpty ? "/" : PercentEncoding.encode(path, keepSlash: true)
    }

    /// Parameters encoded (slash too), sorted by encoded name then value, `name=value` joined by `&`; a parameter
    /// without a value is `name=`.
    static func canonicalQuery(_ query: [(name: String, value: String)]) -> String {
        query.map { (PercentEncoding.encode($0.name, keepSlash: false), PercentEncoding.encode($0.value, keepSlash: false)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// `yyyyMMdd'T'HHmmss'Z'` in UTC (x-amz-date).
    static func timestamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T"
            + "\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z"
    }

    private static func canonicalHeaderValue(_ value: String) -> String {
        var out = ""
        var lastWasSpace = false
        for character in value.trimmingCharacters(in: .whitespaces) {
            if character == " " {
                if !lastWasSpace { out.append(character) }
                lastWasSpace = true
            } else {
                out.append(character)
                lastWasSpace = false
            }
        }
        return out
    }
}
