/// Streaming Cobblestone-256 encryption (see `Cobblestone256`).
///
/// Plaintext is buffered until a full chunk is known not to be the last one, so the final chunk
/// is always short; `finish()` emits it. Two chunk-sized buffers are allocated once and reused.
public final class CobblestoneEncryptor {
    private let aead: AESGCM256
    private let baseNonce: [UInt8]
    private var nonce: [UInt8]
    /// Index of the next chunk to seal (internal so tests can start near the 2^38 limit).
    var nextChunkIndex: UInt64 = 0
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    /// Plaintext waiting to be sealed: `plaintext[..<buffered]`. Cleansed when done.
    private let plaintext: UnsafeMutableRawBufferPointer
    private var buffered = 0
    /// Output of the chunk being sealed.
    private let sealed: UnsafeMutableRawBufferPointer
    private var finished = false
    private var failure: (any Error)?

    /// Derives the message keys and immediately passes the header (`salt ‖ commitment`) to `sink`.
    /// - Parameters:
    ///   - inputKey: 32 bytes, never reused with the same salt (salts are random, so any key is fine).
    ///   - context: bytes bound to the ciphertext by the commitment (e.g. the bundle header); not stored in it.
    ///   - salt: `nil` for 24 fresh random bytes; tests may inject a fixed salt.
    ///   - sink: receives ciphertext as it is produced; an error it throws stops the encryptor.
    public convenience init(
        inputKey: SecretBytes, context: [UInt8], salt: [UInt8]? = nil,
        sink: @escaping (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        if let salt, salt.count != Cobblestone256.saltSize {
            throw CryptoError.invalidLength("Cobblestone salt must be \(Cobblestone256.saltSize) bytes, not \(salt.count)")
        }
        let salt = try salt ?? SecureRandom.bytes(count: Cobblestone256.saltSize)
        let keys = try Cobblestone256.deriveKeys(inputKey: inputKey, salt: salt, context: context)
        try self.init(aeadKey: keys.aeadKey, baseNonce: keys.baseNonce, sink: sink)
        try (salt + keys.commitment).withUnsafeBytes { try sink($0) }
    }

    /// Raw mode (tests only): chunks under an explicit AEAD key and base nonce, with no header.
    init(aeadKey: SecretBytes, baseNonce: [UInt8], sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        guard baseNonce.count == AESGCM256.nonceSize else {
            throw CryptoError.invalidNonceSize(expected: AESGCM256.nonceSize, actual: baseNonce.count)
        }
        aead = try AESGCM256(key: aeadKey)
        self.baseNonce = baseNonce
        nonce = baseNonce
        self.sink = sink
        plaintext = BufferPool.take(Cobblestone256.chunkSize)
        sealed = BufferPool.take(Cobblestone256.sealedChunkSize)
    }

    deinit {
        BufferPool.give(plaintext)  // zeroed there
        BufferPool.give(sealed)
    }

    /// Encrypts `bytes`, passing every completed chunk to the sink. Throws the sink's error, or
    /// `chunkLimitExceeded`; after an error every further call throws it again.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let failure { throw failure }
        precondition(!finished, "CobblestoneEncryptor.write called after finish()")
        do {
            var remaining = bytes
            while !remaining.isEmpty {
                if buffered == Cobblestone256.chunkSize {
                    // More data follows, so the buffered full chunk is not the final one.
                    try sealChunk(UnsafeRawBufferPointer(plaintext))
                    buffered = 0
                }
                if buffered == 0 && remaining.count > Cobblestone256.chunkSize {
                    // Fast path: a full non-final chunk straight from the caller's buffer.
                    try sealChunk(UnsafeRawBufferPointer(rebasing: remaining[..<Cobblestone256.chunkSize]))
                    remaining = UnsafeRawBufferPointer(rebasing: remaining[Cobblestone256.chunkSize...])
                    continue
                }
                let count = min(Cobblestone256.chunkSize - buffered, remaining.count)
                (plaintext.baseAddress! + buffered).copyMemory(from: remaining.baseAddress!, byteCount: count)
                buffered += count
                remaining = UnsafeRawBufferPointer(rebasing: remaining[count...])
            }
        } catch {
            failure = error
            throw error
        }
    }

    /// Encrypts `bytes` (see `write(_:)` for buffers).
    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Seals the final short chunk (empty if the message length is a multiple of 16384, or zero).
    /// Calling `write` or `finish` again afterwards is a programming error.
    public func finish() throws {
        if let failure { throw failure }
        precondition(!finished, "CobblestoneEncryptor.finish called twice")
        do {
            if buffered == Cobblestone256.chunkSize {
                try sealChunk(UnsafeRawBufferPointer(plaintext))
                buffered = 0
            }
            try sealChunk(UnsafeRawBufferPointer(rebasing: plaintext[..<buffered]))
            finished = true
            cleanse(plaintext)
        } catch {
            failure = error
            throw error
        }
    }

    /// Seals one chunk under the next index and hands it to the sink.
    private func sealChunk(_ chunk: UnsafeRawBufferPointer) throws {
        guard nextChunkIndex < Cobblestone256.maxChunkCount else { throw CryptoError.chunkLimitExceeded }
        Cobblestone256.chunkNonce(base: baseNonce, index: nextChunkIndex, into: &nonce)
        let output = UnsafeMutableRawBufferPointer(rebasing: sealed[..<(chunk.count + Cobblestone256.tagSize)])
        try aead.seal(nonce: nonce, plaintext: chunk, aad: UnsafeRawBufferPointer(start: nil, count: 0), into: output)
        nextChunkIndex += 1
        try sink(UnsafeRawBufferPointer(output))
    }
}
