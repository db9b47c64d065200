import COpenSSL

/// The hash functions VaultCrypto uses: SHA-2, and MD5 only for S3's `Content-MD5` transfer check.
enum DigestAlgorithm: Sendable {
    case sha256, sha512, md5

    /// Output length in bytes.
    var outputSize: Int {
        switch self {
        case .sha256: return 32
        case .sha512: return 64
        case .md5: return 16
        }
    }

    /// The OpenSSL digest name, as used in `OSSL_PARAM`s.
    var openSSLName: String {
        switch self {
        case .sha256: return "SHA256"
        case .sha512: return "SHA512"
        case .md5: return "MD5"
        }
    }

    fileprivate var evpMD: OpaquePointer? {
        switch self {
        case .sha256: return EVP_sha256()
        case .sha512: return EVP_sha512()
        case .md5: return EVP_md5()
        }
    }
}

/// Owns one `EVP_MD_CTX`. After `finalize()` the context is re-initialized and can hash again.
final class DigestContext {
    private let context: OpaquePointer
    private let algorithm: DigestAlgorithm

    init(_ algorithm: DigestAlgorithm) throws {
        self.algorithm = algorithm
        context = try checkOpenSSL(EVP_MD_CTX_new(), "EVP_MD_CTX_new")
        try reset()
    }

    deinit { EVP_MD_CTX_free(context) }

    private func reset() throws {
        try checkOpenSSL(EVP_DigestInit_ex(context, algorithm.evpMD, nil), "EVP_DigestInit_ex")
    }

    func update(_ bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        try checkOpenSSL(EVP_DigestUpdate(context, base, bytes.count), "EVP_DigestUpdate")
    }

    func finalize() throws -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: algorithm.outputSize)
        var length: UInt32 = 0
        try checkOpenSSL(EVP_DigestFinal_ex(context, &digest, &length), "EVP_DigestFinal_ex")
        guard Int(length) == digest.count else {
            throw CryptoError.openSSL(function: "EVP_DigestFinal_ex", detail: "unexpected digest length \(length)")
        }
        try reset()
        return digest
    }
}
