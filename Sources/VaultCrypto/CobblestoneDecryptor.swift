/// Streaming Cobblestone-256 decryption (see `Cobblestone256`).
///
/// The commitment is checked before any chunk is decrypted. Ciphertext is read in units of one
/// sealed chunk (16400 bytes): a full unit is a non-final chunk; a shorter unit, which can only
/// happen at the end of the source, is the final chunk. Plaintext of a chunk is released only
/// after its tag verified. Any error is sticky: every later call throws it again.
public final class CobblestoneDecryptor {
    private let source: (UnsafeMutableRawBufferPointer) throws -> Int
    /// Optional: the source's next bytes in place (see `init(inputKey:context:view:source:)`).
    private let view: ((Int) throws -> UnsafeRawBufferPointer)?
    /// Input key and context, kept only until the header has been read and checked.
    private var pendingKey: (inputKey: SecretBytes, context: [UInt8])?
    private var aead: AESGCM256?
    private var baseNonce: [UInt8] = []
    private var nonce = [UInt8](repeating: 0, count: AESGCM256.nonceSize)
    /// Index of the next chunk to open (internal so tests can start near the 2^38 limit).
    var nextChunkIndex: UInt64 = 0
    /// One sealed chunk as read from the source.
    private let sealed: UnsafeMutableRawBufferPointer
    /// Verified plaintext not yet handed out: `plaintext[plaintextStart..<plaintextEnd]`.
    private let plaintext: UnsafeMutableRawBufferPointer
    private var plaintextStart = 0
    private var plaintextEnd = 0
    private var sourceEnded = false
    private var finalChunkOpened = false
    private var failure: (any Error)?

    /// - Parameters:
    ///   - inputKey: the 32-byte key the message was encrypted with.
    ///   - context: the same context bytes given to the encryptor.
    ///   - view: optional, for a source that holds the ciphertext in a buffer of its own: returns its next bytes
    ///     (at most the count asked, empty only at the end) in place, consumed as `source` would consume them and
    ///     valid until the next call to either. A whole sealed chunk it returns is opened where it lies, without
    ///     the copy into the decryptor's own buffer; a shorter piece is copied and completed from `source`.
    ///   - source: fills its buffer with up to `buffer.count` ciphertext bytes and returns how
    ///     many; 0 means the ciphertext ended. Short reads are fine.
    /// - Throws: `CryptoError.invalidKeySize` if the key is not 32 bytes.
    public init(
        inputKey: SecretBytes, context: [UInt8],
        view: ((Int) throws -> UnsafeRawBufferPointer)? = nil,
        source: @escaping (UnsafeMutableRawBufferPointer) throws -> Int
    ) throws {
        guard inputKey.count == Cobblestone256.inputKeySize else {
            throw CryptoError.invalidKeySize(expected: Cobblestone256.inputKeySize, actual: inputKey.count)
        }
        pendingKey = (inputKey.slice(0..<inputKey.count), context)
        self.view = view
        self.source = source
        sealed = BufferPool.take(Cobblestone256.sealedChunkSize)
        plaintext = BufferPool.take(Cobblestone256.chunkSize)
    }

    /// Raw mode (tests only): chunks under an explicit AEAD key and base nonce, with no header.
    init(aeadKey: SecretBytes, baseNonce: [UInt8], source: @escaping (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        guard baseNonce.count == AESGCM256.nonceSize else {
            throw CryptoError.invalidNonceSize(expected: AESGCM256.nonceSize, actual: baseNonce.count)
        }
        aead = try AESGCM256(key: aeadKey)
        self.baseNonce = baseNonce
        self.view = nil
        self.source = source
        sealed = BufferPool.take(Cobblestone256.sealedChunkSize)
        plaintext = BufferPool.take(Cobblestone256.chunkSize)
    }

    deinit {
        BufferPool.give(plaintext)  // zeroed there
        BufferPool.give(sealed)
    }

    /// Reads the 56-byte header and checks the key commitment, so a wrong key or context fails
    /// before any chunk is read. `read` does this itself on first use.
    /// - Throws: `truncated` (header incomplete) or `commitmentMismatch`.
    public func verifyCommitment() throws {
        if let failure { throw failure }
        guard let (inputKey, context) = pendingKey else { return }
        do {
            var header = [UInt8](repeating: 0, count: Cobblestone256.headerSize)
            let count = try header.withUnsafeMutableBytes { try readFully(into: $0) }
            guard count == Cobblestone256.headerSize else { throw CryptoError.truncated }
            let keys = try Cobblestone256.deriveKeys(
                inputKey: inputKey, salt: Array(header[..<Cobblestone256.saltSize]), context: context)
            guard constantTimeEquals(keys.commitment, Array(header[Cobblestone256.saltSize...])) else {
                throw CryptoError.commitmentMismatch
            }
            aead = try AESGCM256(key: keys.aeadKey)
            baseNonce = keys.baseNonce
            pendingKey = nil
        } catch {
            throw fail(error)
        }
    }

    /// Copies up to `buffer.count` bytes of authenticated plaintext into `buffer` (which must not
    /// be empty) and returns how many. Returns 0 only once the final chunk has been authenticated
    /// and the source has ended.
    /// - Throws: `truncated`, `authenticationFailed`, `commitmentMismatch`, `chunkLimitExceeded`,
    ///   or the source's error; then the same error on every later call.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if let failure { throw failure }
        precondition(buffer.count > 0, "CobblestoneDecryptor.read needs a non-empty buffer")
        try verifyCommitment()
        do {
            while plaintextStart == plaintextEnd {
                if finalChunkOpened { return 0 }
                // A buffer that holds a whole chunk receives it directly, one copy less (the restore pipeline reads
                // in 1 MiB). Nothing unauthenticated is released that way either: `AESGCM256.open` zeroes its
                // output when the tag does not verify.
                if buffer.count >= Cobblestone256.chunkSize { return try openNextChunk(into: buffer) }
                plaintextStart = 0
                plaintextEnd = try openNextChunk(into: plaintext)
            }
            let count = min(buffer.count, plaintextEnd - plaintextStart)
            buffer.baseAddress!.copyMemory(from: plaintext.baseAddress! + plaintextStart, byteCount: count)
            plaintextStart += count
            return count
        } catch {
            throw fail(error)
        }
    }

    /// Reads and authenticates the next chunk into `output` (at least one chunk long); returns its plaintext size.
    private func openNextChunk(into output: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let aead else { preconditionFailure("keys are set once the commitment verified") }
        guard nextChunkIndex < Cobblestone256.maxChunkCount else { throw CryptoError.chunkLimitExceeded }
        let unit = try readUnit()
        let count = unit.count
        // A full unit is a non-final chunk. Anything shorter means the source ended: it is the
        // final chunk, and it needs at least a tag. Zero bytes here means the final chunk is missing.
        guard count >= Cobblestone256.tagSize else { throw CryptoError.truncated }
        let plaintextCount = count - Cobblestone256.tagSize
        Cobblestone256.chunkNonce(base: baseNonce, index: nextChunkIndex, into: &nonce)
        try aead.open(
            nonce: nonce, ciphertextAndTag: unit,
            aad: UnsafeRawBufferPointer(start: nil, count: 0),
            into: UnsafeMutableRawBufferPointer(rebasing: output[..<plaintextCount]))
        nextChunkIndex += 1
        if count < Cobblestone256.sealedChunkSize { finalChunkOpened = true }
        return plaintextCount
    }

    /// The next sealed unit: a whole chunk (16400 bytes) unless the source ends first. In place in the source's
    /// buffer when `view` hands it out whole, otherwise assembled in `sealed`.
    private func readUnit() throws -> UnsafeRawBufferPointer {
        var filled = 0
        if let view, !sourceEnded {
            let first = try view(sealed.count)
            guard first.count <= sealed.count else {
                throw CryptoError.invalidLength("ciphertext view returned \(first.count) bytes for \(sealed.count)")
            }
            if first.count == sealed.count { return first }
            if first.isEmpty {
                sourceEnded = true
            } else {
                UnsafeMutableRawBufferPointer(rebasing: sealed[..<first.count]).copyMemory(from: first)
            }
            filled = first.count
        }
        filled += try readFully(into: UnsafeMutableRawBufferPointer(rebasing: sealed[filled...]))
        return UnsafeRawBufferPointer(rebasing: sealed[..<filled])
    }

    /// Fills `buffer` from the source until it is full or the source ends; returns the byte count.
    private func readFully(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var filled = 0
        while filled < buffer.count && !sourceEnded {
            let wanted = buffer.count - filled
            let count = try source(UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
            guard count >= 0 && count <= wanted else {
                throw CryptoError.invalidLength("ciphertext source returned \(count) for a \(wanted)-byte buffer")
            }
            if count == 0 { sourceEnded = true }
            filled += count
        }
        return filled
    }

    /// Records `error` as the sticky failure and drops any unreleased plaintext.
    private func fail(_ error: any Error) -> any Error {
        if failure == nil { failure = error }
        cleanse(plaintext)
        plaintextStart = 0
        plaintextEnd = 0
        return failure!
    }
}
