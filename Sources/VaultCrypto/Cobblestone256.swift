/// Cobblestone-256: the C2SP chunked-encryption scheme (c2sp.org/chunked-encryption)
/// instantiated with HKDF-Expand-SHA-512 and AES-256-GCM; the bundle payload of vault-format.md §2.3.
///
/// Ciphertext layout: `salt(24) ‖ commitment(32) ‖ chunk₀ ‖ … ‖ chunkₙ`. Every chunk but the
/// last holds exactly 16384 plaintext bytes; the last is always shorter (possibly empty), so a
/// ciphertext that ends on a full chunk is detectably truncated. Chunk `i` is AES-256-GCM with
/// nonce `baseNonce XOR i` (12-byte big-endian) and empty AAD. The commitment binds the key and
/// the context, so a wrong key or a modified context fails before any chunk is decrypted.
public enum Cobblestone256 {
    /// Plaintext bytes in every non-final chunk.
    public static let chunkSize = 16384
    /// AES-GCM tag bytes at the end of each chunk.
    public static let tagSize = 16
    /// Random salt at the start of the ciphertext.
    public static let saltSize = 24
    /// Key commitment following the salt.
    public static let commitmentSize = 32
    /// `saltSize + commitmentSize`.
    public static let headerSize = 56
    /// Input key length (the AES-256 key length).
    public static let inputKeySize = 32

    /// Ciphertext bytes in a full chunk.
    static let sealedChunkSize = chunkSize + tagSize
    /// Chunk indexes must stay below 2^38 (c2sp.org/chunked-encryption).
    static let maxChunkCount: UInt64 = 1 << 38

    /// The exact ciphertext length for `plaintextSize` bytes of plaintext: the header plus one
    /// tag per chunk, where the chunk count includes the always-present short final chunk.
    public static func ciphertextSize(plaintextSize: UInt64) -> UInt64 {
        let chunks = plaintextSize / UInt64(chunkSize) + 1
        return UInt64(headerSize) + plaintextSize + chunks * UInt64(tagSize)
    }

    /// Per-message keys derived from the input key, the salt and the context.
    struct MessageKeys {
        let aeadKey: SecretBytes
        let baseNonce: [UInt8]
        let commitment: [UInt8]
    }

    /// `key(32) ‖ baseNonce(12) ‖ commitment(32) = HKDF-Expand-SHA-512(inputKey,
    /// "c2sp.org/chunked-encryption@v1+" ‖ "AEAD_AES_256_GCM" ‖ 0x00 ‖ salt ‖ context, 76)`.
    static func deriveKeys(inputKey: SecretBytes, salt: [UInt8], context: [UInt8]) throws -> MessageKeys {
        guard inputKey.count == inputKeySize else {
            throw CryptoError.invalidKeySize(expected: inputKeySize, actual: inputKey.count)
        }
        precondition(salt.count == saltSize)
        let info = Array("c2sp.org/chunked-encryption@v1+AEAD_AES_256_GCM".utf8) + [0] + salt + context
        let okm = try HKDF.expand(hash: .sha512, prk: inputKey, info: info, outputByteCount: 76)
        return okm.withUnsafeBytes { bytes in
            MessageKeys(
                aeadKey: okm.slice(0..<32),
                baseNonce: Array(bytes[32..<44]),
                commitment: Array(bytes[44..<76]))
        }
    }

    /// Writes the nonce for chunk `index` (`baseNonce XOR index`, big-endian) into `nonce`.
    /// Only the low 5 bytes can differ, since `index` < 2^38.
    static func chunkNonce(base: [UInt8], index: UInt64, into nonce: inout [UInt8]) {
        precondition(index < maxChunkCount && base.count == AESGCM256.nonceSize && nonce.count == base.count)
        for position in 0..<AESGCM256.nonceSize {
            let shift = UInt64(8 * (AESGCM256.nonceSize - 1 - position))
            let counterByte = shift < 64 ? UInt8(truncatingIfNeeded: index >> shift) : 0
            nonce[position] = base[position] ^ counterByte
        }
    }
}
