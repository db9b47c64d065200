/// AES-256-GCM (NIST SP 800-38D) with a 32-byte key, 12-byte nonce and 16-byte tag.
///
/// One instance keeps a single OpenSSL cipher context with the expanded key and reuses it for
/// every call, so sealing many small messages (Cobblestone chunks) costs no allocation or key
/// schedule. Not thread-safe: use one instance per task. Never reuse a nonce with the same key.
public final class AESGCM256 {
    public static let keySize = 32
    public static let nonceSize = 12
    public static let tagSize = 16
    /// The most plaintext one GCM invocation may process (2^36 − 32 bytes, SP 800-38D).
    static let maxPlaintextSize = (1 << 36) - 32

    private let cipher: CipherContext

    /// Prepares the cipher for `key`, which must be 32 bytes.
    public init(key: SecretBytes) throws {
        guard key.count == Self.keySize else {
            throw CryptoError.invalidKeySize(expected: Self.keySize, actual: key.count)
        }
        cipher = try CipherContext(aes256GCMKey: key)
    }

    /// Encrypts `plaintext` and writes `ciphertext ‖ tag` to `output`, which must be exactly
    /// `plaintext.count + 16` bytes and may not overlap the inputs except by being identical to `plaintext`.
    public func seal(
        nonce: [UInt8], plaintext: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws {
        try checkNonce(nonce)
        guard plaintext.count <= Self.maxPlaintextSize else {
            throw CryptoError.invalidLength("AES-GCM plaintext exceeds 2^36 - 32 bytes")
        }
        guard output.count == plaintext.count + Self.tagSize else {
            throw CryptoError.invalidLength(
                "AES-GCM output buffer is \(output.count) bytes, expected \(plaintext.count + Self.tagSize)")
        }
        try cipher.seal(nonce: nonce, plaintext: plaintext, aad: aad, into: output)
    }

    /// Verifies and decrypts `ciphertext ‖ tag` into `output` (exactly `ciphertextAndTag.count - 16` bytes).
    /// On failure `output` is zeroed and `CryptoError.authenticationFailed` is thrown.
    public func open(
        nonce: [UInt8], ciphertextAndTag: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws {
        try checkNonce(nonce)
        guard ciphertextAndTag.count >= Self.tagSize else {
            throw CryptoError.invalidLength("AES-GCM input is shorter than the 16-byte tag")
        }
        guard ciphertextAndTag.count - Self.tagSize <= Self.maxPlaintextSize else {
            throw CryptoError.invalidLength("AES-GCM ciphertext exceeds 2^36 - 32 bytes")
        }
        guard output.count == ciphertextAndTag.count - Self.tagSize else {
            throw CryptoError.invalidLength(
                "AES-GCM output buffer is \(output.count) bytes, expected \(ciphertextAndTag.count - Self.tagSize)")
        }
        do {
            try cipher.open(nonce: nonce, ciphertextAndTag: ciphertextAndTag, aad: aad, into: output)
        } catch {
            cleanse(output)
            throw error
        }
    }

    /// Encrypts `plaintext`; returns `ciphertext ‖ tag`.
    public func seal(nonce: [UInt8], plaintext: [UInt8], aad: [UInt8]) throws -> [UInt8] {
        var output = [UInt8](repeating: 0, count: plaintext.count + Self.tagSize)
        try plaintext.withUnsafeBytes { plaintext in
            try aad.withUnsafeBytes { aad in
                try output.withUnsafeMutableBytes { output in
                    try seal(nonce: nonce, plaintext: plaintext, aad: aad, into: output)
                }
            }
        }
        return output
    }

    /// Verifies and decrypts `ciphertext ‖ tag`; throws `CryptoError.authenticationFailed` on a bad tag.
    public func open(nonce: [UInt8], ciphertextAndTag: [UInt8], aad: [UInt8]) throws -> [UInt8] {
        guard ciphertextAndTag.count >= Self.tagSize else {
            throw CryptoError.invalidLength("AES-GCM input is shorter than the 16-byte tag")
        }
        var output = [UInt8](repeating: 0, count: ciphertextAndTag.count - Self.tagSize)
        try ciphertextAndTag.withUnsafeBytes { input in
            try aad.withUnsafeBytes { aad in
                try output.withUnsafeMutableBytes { output in
                    try open(nonce: nonce, ciphertextAndTag: input, aad: aad, into: output)
                }
            }
        }
        return output
    }

    private func checkNonce(_ nonce: [UInt8]) throws {
        guard nonce.count == Self.nonceSize else {
            throw CryptoError.invalidNonceSize(expected: Self.nonceSize, actual: nonce.count)
        }
    }
}
