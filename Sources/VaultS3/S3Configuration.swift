import Foundation

/// Where the object store is, as `scheme://host[:port][/base-path]`.
public struct S3Endpoint: Sendable, Equatable, CustomStringConvertible {
    /// `http` or `https`.
    public let scheme: String
    /// The host name or IP address (an IPv6 address keeps its brackets).
    public let host: String
    /// The port, nil for the scheme's default.
    public let port: Int?
    /// A path prefix every request path starts with: empty, or `/` followed by segments, no trailing slash.
    public let basePath: String

    /// Parses `text`, e.g. `http://127.0.0.1:9000` or `https://s3.eu-west-1.amazonaws.com`.
    /// - Throws: `S3Error.invalidConfiguration` naming what is wrong (never echoing a user:password part).
    public init(parsing text: String) throws {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else {
            throw S3Error.invalidConfiguration(
                "AWS_ENDPOINT_URL must look like http://HOST[:PORT] or https://HOST[:PORT]")
        }
        guard components.user == nil, components.password == nil else {
            throw S3Error.invalidConfiguration(
                "AWS_ENDPOINT_URL must not contain a user or password; credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        }
        guard components.query == nil, components.fragment == nil else {
            throw S3Error.invalidConfiguration("AWS_ENDPOINT_URL must not contain a query or fragment")
        }
        self.scheme = scheme
        self.host = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        self.port = components.port
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        guard let decoded = path.removingPercentEncoding else {
            throw S3Error.invalidConfiguration("AWS_ENDPOINT_URL has a malformed path")
        }
        self.basePath = decoded
    }

    /// The `Host` header: the port only when it is not the scheme's default.
    var hostHeader: String {
        guard let port, port != (scheme == "https" ? 443 : 80) else { return host }
        return "\(host):\(port)"
    }

    /// `scheme://host[:port]`, the origin every URL starts with.
    var origin: String { "\(scheme)://\(hostHeader)" }

    public var description: String { origin + basePath }
}

/// How bucket names are placed in request URLs.
public enum S3AddressingStyle: Sendable, Equatable {
    /// `https://endpoint/BUCKET/KEY`: custom endpoints (the local store, most S3-compatible stores).
    case path
    /// `https://BUCKET.endpoint/KEY`: AWS's own endpoints.
    case virtualHosted
}

/// Retries with exponential backoff and jitter for errors a later attempt may not see: HTTP 5xx, 429 and S3's
/// throttling codes, and connections that failed or dropped.
public struct S3RetryPolicy: Sendable, Equatable {
    /// Attempts per request, the first included (1 = no retry).
    public var maxAttempts: Int
    /// The delay before the first retry, in seconds; it doubles for each further retry.
    public var baseDelay: Double
    /// The longest delay between two attempts, in seconds.
    public var maxDelay: Double

    public init(maxAttempts: Int = 5, baseDelay: Double = 0.2, maxDelay: Double = 10) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = max(0, baseDelay)
        self.maxDelay = max(self.baseDelay, maxDelay)
    }

    /// The pause before attempt `attempt + 1` (`attempt` ≥ 1): base × 2^(attempt−1), capped, with the upper
    /// half jittered so that clients throttled together do not retry in lockstep.
    func delay(afterAttempt attempt: Int) -> Double {
        let exponential = min(maxDelay, baseDelay * pow(2, Double(min(attempt - 1, 30))))
        return exponential / 2 + Double.random(in: 0...(exponential / 2))
    }
}

/// Network timeouts. There is deliberately no limit on a whole transfer (objects may be large): a transfer that
/// makes no progress is cut instead.
public struct S3Timeouts: Sendable, Equatable {
    /// Seconds to establish a connection (TCP and TLS).
    public var connect: Double
    /// A transfer slower than 1 byte/s for this many seconds is aborted (and retried).
    public var stalledTransfer: Int

    public init(connect: Double = 10, stalledTransfer: Int = 30) {
        self.connect = connect
        self.stalledTransfer = stalledTransfer
    }
}

/// Everything the client needs to reach and sign for one object store.
public struct S3Configuration: Sendable {
    public var endpoint: S3Endpoint
    public var region: String
    public var credentials: S3Credentials
    public var addressing: S3AddressingStyle
    public var retry: S3RetryPolicy
    public var timeouts: S3Timeouts
    /// A PEM file of CA certificates for https endpoints (`AWS_CA_BUNDLE`); nil uses the system's.
    public var caBundlePath: String?

    public init(
        endpoint: S3Endpoint, region: String, credentials: S3Credentials, addressing: S3AddressingStyle = .path,
        retry: S3RetryPolicy = S3RetryPolicy(), timeouts: S3Timeouts = S3Timeouts(), caBundlePath: String? = nil
    ) {
        self.endpoint = endpoint
        self.region = region
        self.credentials = credentials
        self.addressing = addressing
        self.retry = retry
        self.timeouts = timeouts
        self.caBundlePath = caBundlePath
    }

    /// The standard AWS environment variables: `AWS_ENDPOINT_URL` (a custom endpoint, addressed path-style; when
    /// unset, AWS's `https://s3.REGION.amazonaws.com`, virtual-hosted), `AWS_REGION` (else `AWS_DEFAULT_REGION`,
    /// else `us-east-1`), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN` (optional) and
    /// `AWS_CA_BUNDLE` (optional).
    /// - Throws: `S3Error.invalidConfiguration` naming the variable that is missing or malformed.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> S3Configuration {
        func value(_ name: String) -> String? {
            guard let text = environment[name]?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
            return text
        }
        let region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? "us-east-1"
        guard region.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7a) })
        else {
            throw S3Error.invalidConfiguration("AWS_REGION must be a region name such as us-east-1")
        }
        guard let accessKey = value("AWS_ACCESS_KEY_ID"), let secret = environment["AWS_SECRET_ACCESS_KEY"],
              !secret.isEmpty
        else {
            throw S3Error.invalidConfiguration(
                "S3 credentials are missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        }
        let endpoint: S3Endpoint
        let addressing: S3AddressingStyle
        if let url = value("AWS_ENDPOINT_URL") {
            endpoint = try S3Endpoint(parsing: url)
            addressing = .path
        } else {
            endpoint = try S3Endpoint(parsing: "https://s3.\(region).amazonaws.com")
            addressing = .virtualHosted
        }
        return S3Configuration(
            endpoint: endpoint, region: region,
            credentials: S3Credentials(
                accessKeyID: accessKey, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN")),
            addressing: addressing, caBundlePath: value("AWS_CA_BUNDLE"))
    }
}
