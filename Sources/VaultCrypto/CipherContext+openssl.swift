import COpenSSL

/// Owns one `EVP_CIPHER_CTX` keyed for AES-256-GCM. The key schedule is set once; each call
/// only sets the direction and the nonce. Callers (AESGCM256) validate all lengths first.
final class CipherContext {
    private let context: OpaquePointer
    /// `EVP_CipherUpdate` takes an `int` length, so long inputs go through in pieces.
    private static let maxUpdate = 1 << 30

    init(aes256GCMKey key: SecretBytes) throws {
        context = try checkOpenSSL(EVP_CIPHER_CTX_new(), "EVP_CIPHER_CTX_new")
        try key.withUnsafeBytes { key in
            try checkOpenSSL(
                EVP_CipherInit_ex(context, EVP_aes_256_gcm(), nil, key.baseAddress!.assumingMemoryBound(to: UInt8.self), nil, 1),
                "EVP_CipherInit_ex")
        }
    }

    deinit { EVP_CIPHER_CTX_free(context) }  // cleanses the key schedule

    func seal(
        nonce: [UInt8], plaintext: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws {
        try start(nonce: nonce, encrypt: true, aad: aad)
        try update(plaintext, into: output)
        let tag = output.baseAddress! + plaintext.count
        var finalLength: Int32 = 0
        try checkOpenSSL(EVP_CipherFinal_ex(context, tag.assumingMemoryBound(to: UInt8.self), &finalLength), "EVP_CipherFinal_ex")
        try checkOpenSSL(
            EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, Int32(AESGCM256.tagSize), tag),
            "EVP_CIPHER_CTX_ctrl(EVP_CTRL_AEAD_GET_TAG)")
    }

    /// Throws `authenticationFailed` if the tag does not verify; the caller zeroes `output`.
    func open(
        nonce: [UInt8], ciphertextAndTag: UnsafeRawBufferPointer, aad: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws {
        let ciphertextCount = ciphertextAndTag.count - AESGCM256.tagSize
        try start(nonce: nonce, encrypt: false, aad: aad)
        try update(UnsafeRawBufferPointer(rebasing: ciphertextAndTag[..<ciphertextCount]), into: output)
        // OpenSSL only reads the expected tag, despite the non-const parameter.
        let tag = UnsafeMutableRawPointer(mutating: ciphertextAndTag.baseAddress! + ciphertextCount)
        try checkOpenSSL(
            EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, Int32(AESGCM256.tagSize), tag),
            "EVP_CIPHER_CTX_ctrl(EVP_CTRL_AEAD_SET_TAG)")
        var finalLength: Int32 = 0
        var scratch: UInt8 = 0  // GCM writes nothing here; OpenSSL wants a valid pointer
        guard EVP_CipherFinal_ex(context, &scratch, &finalLength) == 1 else {
            ERR_clear_error()
            throw CryptoError.authenticationFailed
        }
    }

    /// Sets direction and nonce (keeping the key) and feeds the additional data.
    private func start(nonce: [UInt8], encrypt: Bool, aad: UnsafeRawBufferPointer) throws {
        try checkOpenSSL(EVP_CipherInit_ex(context, nil, nil, nil, nonce, encrypt ? 1 : 0), "EVP_CipherInit_ex")
        var offset = 0
        while offset < aad.count {
            let step = min(aad.count - offset, Self.maxUpdate)
            var written: Int32 = 0
            try checkOpenSSL(
                EVP_CipherUpdate(context, nil, &written, (aad.baseAddress! + offset).assumingMemoryBound(to: UInt8.self), Int32(step)),
                "EVP_CipherUpdate")
            offset += step
        }
    }

    /// Encrypts or decrypts `input` into the first `input.count` bytes of `output`.
    private func update(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws {
        var offset = 0
        while offset < input.count {
            let step = min(input.count - offset, Self.maxUpdate)
            var written: Int32 = 0
            try checkOpenSSL(
                EVP_CipherUpdate(
                    context, (output.baseAddress! + offset).assumingMemoryBound(to: UInt8.self), &written,
                    (input.baseAddress! + offset).assumingMemoryBound(to: UInt8.self), Int32(step)),
                "EVP_CipherUpdate")
            guard Int(written) == step else {
                throw CryptoError.openSSL(function: "EVP_CipherUpdate", detail: "wrote \(written) of \(step) bytes")
            }
            offset += step
        }
    }
}
