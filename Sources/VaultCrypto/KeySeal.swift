/// ECIES-style sealing of a secret to a P-256 public key (vault-format.md §3.1, KeySeal).
///
/// `sealed = ephemeralPublic(65) ‖ ciphertext(len(secret)) ‖ tag(16)` where
/// - `z = ECDH(ephemeral, recipient)`,
/// - `k = HKDF-SHA-256(ikm: z, salt: ephemeralPublic ‖ recipientPublic,
///   info: "shredvault.org/seal@v1" ‖ 0x00 ‖ info, L: 32)`,
/// - `ciphertext ‖ tag = AES-256-GCM(k, nonce: 12 zero bytes, aad: aad, secret)`.
///
/// The all-zero nonce is safe because every seal uses a fresh ephemeral key, so `k` encrypts
/// exactly one message. `info` and `aad` bind the purpose and the owning records (user, bundle,
/// day, key ids): a sealed key moved elsewhere fails to open.
public enum KeySeal {
    /// Bytes added to the secret's length.
    public static let overhead = P256PublicKey.x963Size + AESGCM256.tagSize

    private static let domain = Array("shredvault.org/seal@v1".utf8)
    private static let nonce = [UInt8](repeating: 0, count: AESGCM256.nonceSize)

    /// Seals `secret` so that only the holder of `recipient`'s private key can open it.
    public static func seal(_ secret: SecretBytes, to recipient: P256PublicKey, info: [UInt8], aad: [UInt8]) throws -> [UInt8] {
        try seal(secret, to: recipient, info: info, aad: aad, ephemeralKey: P256PrivateKey.generate())
    }

    /// `seal` with a given ephemeral key. Internal: only known-answer tests fix the ephemeral key.
    static func seal(
        _ secret: SecretBytes, to recipient: P256PublicKey, info: [UInt8], aad: [UInt8], ephemeralKey: P256PrivateKey
    ) throws -> [UInt8] {
        let ephemeralPublic = ephemeralKey.publicKey.x963Representation
        let aead = try AESGCM256(key: sealingKey(
            sharedSecret: ephemeralKey.sharedSecret(with: recipient),
            ephemeralPublic: ephemeralPublic, recipientPublic: recipient.x963Representation, info: info))
        var sealed = ephemeralPublic + [UInt8](repeating: 0, count: secret.count + AESGCM256.tagSize)
        try secret.withUnsafeBytes { plaintext in
            try aad.withUnsafeBytes { aad in
                try sealed.withUnsafeMutableBytes { output in
                    try aead.seal(
                        nonce: nonce, plaintext: plaintext, aad: aad,
                        into: UnsafeMutableRawBufferPointer(rebasing: output[P256PublicKey.x963Size...]))
                }
            }
        }
        return sealed
    }

    /// Opens a sealed secret with the recipient's private key.
    /// - Throws: `invalidLength` if `sealed` is shorter than `overhead`, `invalidPublicKey` if the
    ///   ephemeral point is invalid, `authenticationFailed` for a wrong key, `info` or `aad`, or
    ///   any modification.
    public static func open(_ sealed: [UInt8], with recipient: P256PrivateKey, info: [UInt8], aad: [UInt8]) throws -> SecretBytes {
        try open(sealed, recipient: recipient.publicKey, info: info, aad: aad) { try recipient.sharedSecret(with: $0) }
    }

    /// Opens a sealed secret whose recipient private key is held elsewhere (a PKCS#11 token): `keyAgreement`
    /// gets the validated ephemeral public key and returns ECDH(recipient private, ephemeral), the 32-byte
    /// x-coordinate. Same checks and errors as `open(_:with:info:aad:)`.
    public static func open(
        _ sealed: [UInt8], recipient: P256PublicKey, info: [UInt8], aad: [UInt8],
        keyAgreement: (P256PublicKey) throws -> SecretBytes
    ) throws -> SecretBytes {
        guard sealed.count >= overhead else {
            throw CryptoError.invalidLength("a sealed key is at least \(overhead) bytes, got \(sealed.count)")
        }
        let ephemeralPublic = Array(sealed[..<P256PublicKey.x963Size])
        let ephemeral = try P256PublicKey(x963Representation: ephemeralPublic)
        let sharedSecret = try keyAgreement(ephemeral)
        guard sharedSecret.count == P256PrivateKey.scalarSize else {
            throw CryptoError.invalidLength("an ECDH shared secret is 32 bytes, got \(sharedSecret.count)")
        }
        let aead = try AESGCM256(key: sealingKey(
            sharedSecret: sharedSecret,
            ephemeralPublic: ephemeralPublic, recipientPublic: recipient.x963Representation, info: info))
        let secret = SecretBytes(count: sealed.count - overhead)
        try sealed.withUnsafeBytes { input in
            try aad.withUnsafeBytes { aad in
                try secret.withUnsafeMutableBytes { output in
                    try aead.open(
                        nonce: nonce, ciphertextAndTag: UnsafeRawBufferPointer(rebasing: input[P256PublicKey.x963Size...]),
                        aad: aad, into: output)
                }
            }
        }
        return secret
    }

    private static func sealingKey(
        sharedSecret: SecretBytes, ephemeralPublic: [UInt8], recipientPublic: [UInt8], info: [UInt8]
    ) throws -> SecretBytes {
        try HKDF.deriveKey(
            hash: .sha256, inputKeyMaterial: sharedSecret, salt: ephemeralPublic + recipientPublic,
            info: domain + [0] + info, outputByteCount: AESGCM256.keySize)
    }
}
