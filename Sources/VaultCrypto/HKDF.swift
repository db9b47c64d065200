/// HKDF (RFC 5869) over SHA-256 or SHA-512.
public enum HKDF {
    /// The hash function HKDF is instantiated with.
    public enum Hash: Sendable {
        case sha256, sha512

        var algorithm: DigestAlgorithm { self == .sha256 ? .sha256 : .sha512 }
    }

    /// HKDF-Expand: `outputByteCount` bytes from the pseudorandom key `prk` and `info`.
    /// - Throws: `CryptoError.invalidLength` if `outputByteCount` is not in 1...255 × hash length.
    public static func expand(hash: Hash, prk: SecretBytes, info: [UInt8], outputByteCount: Int) throws -> SecretBytes {
        try checkOutputSize(outputByteCount, hash: hash)
        return try KDFContext.hkdf(
            mode: .expandOnly, digest: hash.algorithm, key: prk, salt: [], info: info,
            outputByteCount: outputByteCount)
    }

    /// HKDF-Extract then HKDF-Expand: derives `outputByteCount` bytes from `inputKeyMaterial`.
    /// An empty `salt` means a hash-length string of zeros, as RFC 5869 specifies.
    /// - Throws: `CryptoError.invalidLength` if `outputByteCount` is not in 1...255 × hash length.
    public static func deriveKey(
        hash: Hash, inputKeyMaterial: SecretBytes, salt: [UInt8], info: [UInt8], outputByteCount: Int
    ) throws -> SecretBytes {
        try checkOutputSize(outputByteCount, hash: hash)
        return try KDFContext.hkdf(
            mode: .extractAndExpand, digest: hash.algorithm, key: inputKeyMaterial, salt: salt, info: info,
            outputByteCount: outputByteCount)
    }

    private static func checkOutputSize(_ count: Int, hash: Hash) throws {
        let limit = 255 * hash.algorithm.outputSize
        guard count >= 1, count <= limit else {
            throw CryptoError.invalidLength("HKDF output must be 1 to \(limit) bytes, not \(count)")
        }
    }
}
