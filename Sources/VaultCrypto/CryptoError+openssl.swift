import COpenSSL

extension CryptoError {
    /// Builds `.openSSL` for a failed call, taking the oldest queued OpenSSL error as the detail
    /// and clearing the thread's error queue so stale errors never leak into later reports.
    static func openSSLFailure(_ function: String) -> CryptoError {
        let code = ERR_get_error()
        ERR_clear_error()
        guard code != 0 else { return .openSSL(function: function, detail: "no OpenSSL error reported") }
        var text = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &text, text.count)
        let bytes = text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return .openSSL(function: function, detail: String(decoding: bytes, as: UTF8.self))
    }
}

/// Throws `.openSSL(function:…)` unless an OpenSSL call returned 1 (its success value).
@inline(__always)
func checkOpenSSL(_ result: Int32, _ function: String) throws {
    guard result == 1 else { throw CryptoError.openSSLFailure(function) }
}

/// Unwraps a pointer returned by an OpenSSL allocator or constructor, throwing if it is NULL.
@inline(__always)
func checkOpenSSL<T>(_ pointer: T?, _ function: String) throws -> T {
    guard let pointer else { throw CryptoError.openSSLFailure(function) }
    return pointer
}
