import CCurl
import Foundation

/// Owns one libcurl easy handle. One exchange at a time; reusing the handle keeps its connection alive between
/// requests to the same endpoint. The only file that calls libcurl.
final class CurlConnection {
    private let handle: UnsafeMutableRawPointer
    /// CURLOPT_ERRORBUFFER: libcurl writes its detailed message here during `perform`.
    private let errorBuffer: UnsafeMutablePointer<CChar>

    /// Loading libcurl (shim.h: dlopen at the first S3 request) and `curl_global_init`, once per process, before the
    /// first handle (neither may be raced); nil, or why it failed.
    private static let setUp: String? = {
        if let failure = shredvault_curl_load() { return String(cString: failure) }
        let code = shredvault_curl_global_init(Int(CURL_GLOBAL_ALL))
        return code == CURLE_OK ? nil : "curl_global_init failed: \(text(code))"
    }()

    init() throws {
        if let failure = Self.setUp {
            throw TransportFailure(phase: .local, reason: failure, retryable: false)
        }
        guard let handle = shredvault_curl_easy_init() else {
            throw TransportFailure(phase: .local, reason: "curl_easy_init failed", retryable: false)
        }
        self.handle = handle
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
    }

    deinit {
        shredvault_curl_easy_cleanup(handle)
        errorBuffer.deallocate()
    }

    /// Performs `request`. For a 2xx answer, `onHead` sees the status and headers once, before any body byte, and
    /// the body goes to `onBody`; the body of any other answer is collected (at most 64 KiB) and returned.
    /// - Throws: `TransportFailure` when no complete answer arrived; `SinkFailure` when `onHead` or `onBody` threw.
    func perform(
        _ request: HTTPRequest, settings: TransportSettings,
        onHead: (HTTPResponseHead) throws -> Void, onBody: (UnsafeRawBufferPointer) throws -> Void
    ) throws -> (head: HTTPResponseHead, errorBody: [UInt8]) {
        shredvault_curl_easy_reset(handle)
        errorBuffer[0] = 0
        return try withoutActuallyEscaping(onHead) { onHead in try withoutActuallyEscaping(onBody) { onBody in
            let exchange = Exchange(body: request.body, onHead: onHead, onBody: onBody)
            var headerList: UnsafeMutablePointer<curl_slist>? = nil
            defer { shredvault_curl_slist_free_all(headerList) }
            // libcurl would add "Expect: 100-continue" to larger bodies (a 1 s wait on some servers) and, for
            // uploads, "Transfer-Encoding"/"Content-Type" headers nobody signed: suppress what we do not send.
            for (name, value) in request.headers where (name + value).contains(where: { $0 == "\r" || $0 == "\n" }) {
                throw TransportFailure(phase: .local, reason: "header \(name) contains a line break", retryable: false)
            }
            for line in request.headers.map({ "\($0.name): \($0.value)" }) + ["Expect:", "Accept:"] {
                guard let appended = shredvault_curl_slist_append(headerList, line) else {
                    throw TransportFailure(phase: .local, reason: "curl_slist_append failed", retryable: false)
                }
                headerList = appended
            }
            let userdata = Unmanaged.passUnretained(exchange).toOpaque()
            try set(CURLOPT_URL, string: request.url)
            try set(CURLOPT_PATH_AS_IS, 1)  // send "/a/../b" and "//" in keys as they are
            try set(CURLOPT_NOSIGNAL, 1)  // threads: no SIGALRM for DNS timeouts
            try set(CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1))
            try set(CURLOPT_FOLLOWLOCATION, 0)
            try set(CURLOPT_TCP_KEEPALIVE, 1)
            try set(CURLOPT_CONNECTTIMEOUT_MS, Int(settings.connectTimeout * 1000))
            try set(CURLOPT_LOW_SPEED_LIMIT, 1)
            try set(CURLOPT_LOW_SPEED_TIME, settings.stalledTransferSeconds)
            if let ca = settings.caBundlePath { try set(CURLOPT_CAINFO, string: ca) }
            try set(CURLOPT_NOPROXY, string: settings.noProxy)
            try check(shredvault_curl_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer), "CURLOPT_ERRORBUFFER")
            try check(shredvault_curl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList), "CURLOPT_HTTPHEADER")
            try check(shredvault_curl_setopt_callback(handle, CURLOPT_HEADERFUNCTION, headerCallback), "CURLOPT_HEADERFUNCTION")
            try check(shredvault_curl_setopt_pointer(handle, CURLOPT_HEADERDATA, userdata), "CURLOPT_HEADERDATA")
            try check(shredvault_curl_setopt_callback(handle, CURLOPT_WRITEFUNCTION, writeCallback), "CURLOPT_WRITEFUNCTION")
            try check(shredvault_curl_setopt_pointer(handle, CURLOPT_WRITEDATA, userdata), "CURLOPT_WRITEDATA")
            switch request.method {
            case "GET":
                try set(CURLOPT_HTTPGET, 1)
            case "HEAD":
                try set(CURLOPT_NOBODY, 1)
            case "PUT", "POST":
                // An upload of exactly body.count bytes through the read callback; POST renames the method.
                try set(CURLOPT_UPLOAD, 1)
                try check(shredvault_curl_setopt_offset(handle, CURLOPT_INFILESIZE_LARGE, curl_off_t(request.body.count)), "CURLOPT_INFILESIZE_LARGE")
                try check(shredvault_curl_setopt_callback(handle, CURLOPT_READFUNCTION, readCallback), "CURLOPT_READFUNCTION")
                try check(shredvault_curl_setopt_pointer(handle, CURLOPT_READDATA, userdata), "CURLOPT_READDATA")
                try check(shredvault_curl_setopt_seek(handle, seekCallback), "CURLOPT_SEEKFUNCTION")
                try check(shredvault_curl_setopt_pointer(handle, CURLOPT_SEEKDATA, userdata), "CURLOPT_SEEKDATA")
                if request.method == "POST" { try set(CURLOPT_CUSTOMREQUEST, string: "POST") }
            default:
                try set(CURLOPT_CUSTOMREQUEST, string: request.method)
            }

            let code = shredvault_curl_easy_perform(handle)
            if let sinkError = exchange.sinkError { throw SinkFailure(underlying: sinkError) }
            guard code == CURLE_OK else { throw failure(code) }
            var status = 0
            try check(shredvault_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status), "CURLINFO_RESPONSE_CODE")
            let head = HTTPResponseHead(status: status, headers: exchange.headers)
            if (200..<300).contains(status) && !exchange.headDelivered {  // an answer without body bytes
                do { try onHead(head) } catch { throw SinkFailure(underlying: error) }
            }
            return (head, exchange.errorBody)
        } }
    }

    private func set(_ option: CURLoption, _ value: Int) throws {
        try check(shredvault_curl_setopt_long(handle, option, value), "curl_easy_setopt(\(option.rawValue))")
    }

    private func set(_ option: CURLoption, string: String) throws {
        try check(shredvault_curl_setopt_string(handle, option, string), "curl_easy_setopt(\(option.rawValue))")
    }

    private func check(_ code: CURLcode, _ what: String) throws {
        guard code == CURLE_OK else {
            throw TransportFailure(phase: .local, reason: "\(what): \(Self.text(code))", retryable: false)
        }
    }

    /// Classifies a failed `curl_easy_perform`: which phase, and whether trying again may help.
    private func failure(_ code: CURLcode) -> TransportFailure {
        let detail = String(cString: errorBuffer)
        let reason = detail.isEmpty ? Self.text(code) : detail
        switch code {
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY:
            return TransportFailure(phase: .connect, reason: reason, retryable: true)
        case CURLE_OPERATION_TIMEDOUT:
            // A connect timeout (no connection was made: connect time 0), or a stalled transfer.
            var connectTime: curl_off_t = 0
            let connected = shredvault_curl_getinfo_offset(handle, CURLINFO_CONNECT_TIME_T, &connectTime) == CURLE_OK
                && connectTime > 0
            return TransportFailure(phase: connected ? .transfer : .connect, reason: reason, retryable: true)
        // CURLE_SEND_FAIL_REWIND: libcurl's own re-send on a connection that died could not rewind the body; a new
        // attempt sends it from its start (the first message, kept in the error buffer, says what happened).
        case CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_HTTP2,
             CURLE_HTTP2_STREAM, CURLE_SSL_CONNECT_ERROR, CURLE_SEND_FAIL_REWIND:
            return TransportFailure(phase: .transfer, reason: reason, retryable: true)
        default:
            return TransportFailure(phase: .transfer, reason: reason, retryable: false)
        }
    }

    private static func text(_ code: CURLcode) -> String { String(cString: shredvault_curl_easy_strerror(code)) }
}

/// The state of one exchange, reached from libcurl's callbacks through their userdata pointer.
private final class Exchange {
    let body: [UInt8]
    var bodyOffset = 0
    let onHead: (HTTPResponseHead) throws -> Void
    let onBody: (UnsafeRawBufferPointer) throws -> Void
    var headDelivered = false
    var status = 0
    var headers: [String: String] = [:]
    var errorBody: [UInt8] = []
    var sinkError: (any Error)?

    static let errorBodyLimit = 64 * 1024

    init(
        body: [UInt8], onHead: @escaping (HTTPResponseHead) throws -> Void,
        onBody: @escaping (UnsafeRawBufferPointer) throws -> Void
    ) {
        self.body = body
        self.onHead = onHead
        self.onBody = onBody
    }
}

private func exchange(_ userdata: UnsafeMutableRawPointer?) -> Exchange {
    Unmanaged<Exchange>.fromOpaque(userdata!).takeUnretainedValue()
}

/// CURLOPT_HEADERFUNCTION: one header line per call. A status line starts a new header set (after a 100 Continue
/// or an interim answer only the final one counts).
private let headerCallback: shredvault_curl_data_callback = { buffer, size, count, userdata in
    let length = size * count
    guard let buffer else { return length }
    let state = exchange(userdata)
    let line = String(decoding: UnsafeRawBufferPointer(start: buffer, count: length), as: UTF8.self)
        .trimmingCharacters(in: .whitespacesAndNewlines)
    if line.hasPrefix("HTTP/") {
        let fields = line.split(separator: " ", maxSplits: 2)
        state.status = fields.count > 1 ? Int(fields[1]) ?? 0 : 0
        state.headers = [:]
    } else if let colon = line.firstIndex(of: ":") {
        let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
        state.headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return length
}

/// CURLOPT_WRITEFUNCTION: body bytes. Returning less than given makes libcurl stop with CURLE_WRITE_ERROR.
private let writeCallback: shredvault_curl_data_callback = { buffer, size, count, userdata in
    let length = size * count
    guard let buffer, length > 0 else { return length }
    let state = exchange(userdata)
    let bytes = UnsafeRawBufferPointer(start: buffer, count: length)
    if (200..<300).contains(state.status) {
        do {
            if !state.headDelivered {
                state.headDelivered = true
                try state.onHead(HTTPResponseHead(status: state.status, headers: state.headers))
            }
            try state.onBody(bytes)
        } catch {
            state.sinkError = error
            return 0
        }
    } else if state.errorBody.count < Exchange.errorBodyLimit {
        state.errorBody.append(contentsOf: bytes.prefix(Exchange.errorBodyLimit - state.errorBody.count))
    }
    return length
}

/// CURLOPT_SEEKFUNCTION: moves the request body's read position (libcurl rewinds to re-send a request itself).
private let seekCallback: shredvault_curl_seek_callback = { userdata, offset, origin in
    let state = exchange(userdata)
    guard origin == SEEK_SET, offset >= 0, offset <= state.body.count else { return CURL_SEEKFUNC_CANTSEEK }
    state.bodyOffset = Int(offset)
    return CURL_SEEKFUNC_OK
}

/// CURLOPT_READFUNCTION: the next slice of the request body; 0 at its end.
private let readCallback: shredvault_curl_data_callback = { buffer, size, count, userdata in
    guard let buffer else { return 0 }
    let state = exchange(userdata)
    let length = min(size * count, state.body.count - state.bodyOffset)
    guard length > 0 else { return 0 }
    state.body.withUnsafeBytes { source in
        UnsafeMutableRawPointer(buffer).copyMemory(
            from: source.baseAddress! + state.bodyOffset, byteCount: length)
    }
    state.bodyOffset += length
    return length
}
