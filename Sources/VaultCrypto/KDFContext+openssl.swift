import COpenSSL

/// Owns one `EVP_KDF_CTX` (OpenSSL's `HKDF` provider implementation).
final class KDFContext {
    /// `OSSL_KDF_PARAM_MODE` values.
    enum HKDFMode {
        case extractAndExpand, expandOnly

        var openSSLValue: Int32 {
            switch self {
            case .extractAndExpand: return Int32(EVP_KDF_HKDF_MODE_EXTRACT_AND_EXPAND)
            case .expandOnly: return Int32(EVP_KDF_HKDF_MODE_EXPAND_ONLY)
            }
        }
    }

    private let context: OpaquePointer

    /// The HKDF implementation, fetched from the provider once: a fetched `EVP_KDF` is immutable and may be
    /// shared between threads (each derivation gets its own context). Kept for the life of the process.
    private final class Fetched: @unchecked Sendable {
        let kdf: OpaquePointer
        init() throws { kdf = try checkOpenSSL(EVP_KDF_fetch(nil, "HKDF", nil), "EVP_KDF_fetch") }
    }
    private static let hkdfImplementation: Result<Fetched, Error> = Result { try Fetched() }

    private init() throws {
        context = try checkOpenSSL(EVP_KDF_CTX_new(try Self.hkdfImplementation.get().kdf), "EVP_KDF_CTX_new")
    }

    deinit { EVP_KDF_CTX_free(context) }  // also cleanses the key held by the provider

    /// Runs HKDF once in a fresh context; the output goes straight into `SecretBytes`.
    static func hkdf(
        mode: HKDFMode, digest: DigestAlgorithm, key: SecretBytes, salt: [UInt8], info: [UInt8],
        outputByteCount: Int
    ) throws -> SecretBytes {
        let kdf = try KDFContext()
        try key.withUnsafeBytes { keyBytes in
            try salt.withUnsafeBytes { saltBytes in
                try info.withUnsafeBytes { infoBytes in
                    var entries: [(key: String, value: OSSLParamValue)] = [
                        (OSSL_KDF_PARAM_MODE, .int32(mode.openSSLValue)),
                        (OSSL_KDF_PARAM_DIGEST, .utf8(digest.openSSLName)),
                        (OSSL_KDF_PARAM_KEY, .octets(keyBytes)),
                        (OSSL_KDF_PARAM_INFO, .octets(infoBytes)),
                    ]
                    if mode == .extractAndExpand {
                        entries.append((OSSL_KDF_PARAM_SALT, .octets(saltBytes)))
                    }
                    try withOSSLParams(entries) { params in
                        try checkOpenSSL(EVP_KDF_CTX_set_params(kdf.context, params), "EVP_KDF_CTX_set_params")
                    }
                }
            }
        }
        let output = SecretBytes(count: outputByteCount)
        try output.withUnsafeMutableBytes { out in
            try checkOpenSSL(
                EVP_KDF_derive(kdf.context, out.baseAddress!.assumingMemoryBound(to: UInt8.self), out.count, nil),
                "EVP_KDF_derive")
        }
        return output
    }
}
