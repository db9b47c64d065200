import COpenSSL

/// Owns one `EVP_MAC_CTX` (OpenSSL's `HMAC` provider implementation) keyed once at creation. After each
/// `finalize` the context is re-initialized with the same key, which the provider keeps.
final class MACContext {
    private let context: OpaquePointer
    private let outputSize: Int

    /// The HMAC implementation, fetched from the provider once: a fetched `EVP_MAC` is immutable and may be
    /// shared between threads (each computation gets its own context). Kept for the life of the process.
    private final class Fetched: @unchecked Sendable {
        let mac: OpaquePointer
        init() throws { mac = try checkOpenSSL(EVP_MAC_fetch(nil, "HMAC", nil), "EVP_MAC_fetch") }
    }
    private static let hmacImplementation: Result<Fetched, Error> = Result { try Fetched() }

    /// A new HMAC context over `digest`, keyed with `key`.
    init(hmac digest: DigestAlgorithm, key: SecretBytes) throws {
        context = try checkOpenSSL(EVP_MAC_CTX_new(try Self.hmacImplementation.get().mac), "EVP_MAC_CTX_new")
        outputSize = digest.outputSize
        try key.withUnsafeBytes { keyBytes in
            try withOSSLParams([(OSSL_MAC_PARAM_DIGEST, .utf8(digest.openSSLName))]) { params in
                // OpenSSL rejects a NULL key pointer even for an empty key; an empty key is valid HMAC.
                var empty: UInt8 = 0
                let base = keyBytes.baseAddress?.assumingMemoryBound(to: UInt8.self)
                try withUnsafePointer(to: &empty) { emptyPointer in
                    try checkOpenSSL(
                        EVP_MAC_init(context, keyBytes.count > 0 ? base : emptyPointer, keyBytes.count, params),
                        "EVP_MAC_init")
                }
            }
        }
        let size = EVP_MAC_CTX_get_mac_size(context)
        guard size == outputSize else {
            throw CryptoError.openSSL(function: "EVP_MAC_CTX_get_mac_size", detail: "unexpected MAC size \(size)")
        }
    }

    deinit { EVP_MAC_CTX_free(context) }  // also cleanses the key held by the provider

    func update(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        try checkOpenSSL(EVP_MAC_update(context, base.assumingMemoryBound(to: UInt8.self), bytes.count), "EVP_MAC_update")
    }

    func finalize() throws -> [UInt8] {
        var tag = [UInt8](repeating: 0, count: outputSize)
        try tag.withUnsafeMutableBytes { try finalize(into: $0) }
        return tag
    }

    func finalizeSecret() throws -> SecretBytes {
        let tag = SecretBytes(count: outputSize)
        try tag.withUnsafeMutableBytes { try finalize(into: $0) }
        return tag
    }

    private func finalize(into output: UnsafeMutableRawBufferPointer) throws {
        var length = 0
        try checkOpenSSL(
            EVP_MAC_final(context, output.baseAddress!.assumingMemoryBound(to: UInt8.self), &length, output.count),
            "EVP_MAC_final")
        guard length == outputSize else {
            throw CryptoError.openSSL(function: "EVP_MAC_final", detail: "unexpected MAC length \(length)")
        }
        // Re-initialize for the next message: a NULL key keeps the key already set.
        try checkOpenSSL(EVP_MAC_init(context, nil, 0, nil), "EVP_MAC_init")
    }
}
