/// One HTTP/1.1 exchange as the S3 client needs it; `CurlConnection` (libcurl) performs it.
struct HTTPRequest {
    var method: String
    /// The absolute URL, already percent-encoded (sent as is: no normalization, no re-encoding).
    var url: String
    var headers: [(name: String, value: String)]
    /// The body, sent with `Content-Length` (empty: none for GET, HEAD and DELETE; `Content-Length: 0` otherwise).
    var body: [UInt8]
}

/// The status line and headers of an answer.
struct HTTPResponseHead: Sendable {
    var status: Int
    /// Header values by lower-case name (the last one wins when a header repeats).
    var headers: [String: String]

    subscript(_ name: String) -> String? { headers[name] }
}

/// Why an exchange failed below HTTP. `phase` tells connecting apart from a transfer that started.
struct TransportFailure: Error {
    enum Phase { case connect, transfer, local }

    var phase: Phase
    /// libcurl's code name and message, e.g. "Couldn't connect to server"; never includes request headers.
    var reason: String
    /// Whether a new attempt may succeed (refused/reset/dropped/timed out; not a TLS certificate problem).
    var retryable: Bool
}

/// What a body sink threw: passed through untouched, never retried.
struct SinkFailure: Error {
    var underlying: any Error
}

/// Timeouts and TLS settings one exchange uses.
struct TransportSettings: Sendable {
    var connectTimeout: Double
    var stalledTransferSeconds: Int
    var caBundlePath: String?
    /// Hosts reached without a proxy: `NO_PROXY`/`no_proxy` plus the loopback names (a store on 127.0.0.1 is never
    /// behind the `http_proxy` a machine may set).
    var noProxy: String
}
