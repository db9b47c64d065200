import XCTest

@testable import VaultCrypto

/// Round trips and tampering for Cobblestone-256 beyond the Wycheproof vectors.
final class CobblestoneTests: XCTestCase {
    private let chunk = Cobblestone256.chunkSize
    private let sealedChunk = Cobblestone256.chunkSize + Cobblestone256.tagSize
    private let header = Cobblestone256.headerSize

    private func randomMessage(_ count: Int) throws -> [UInt8] { try SecureRandom.bytes(count: count) }

    func testRoundTripSizes() throws {
        for size in [0, 1, 16383, 16384, 16385, 32768, (1 << 20) + 3] {
            let key = try SecretBytes.random(count: 32)
            let context = try SecureRandom.bytes(count: Int.random(in: 0...100))
            let message = try randomMessage(size)
            let ciphertext = try cobblestoneEncrypt(key: key, context: context, plaintext: message, pieces: [1, 16384, 5000, 40000])
            XCTAssertEqual(UInt64(ciphertext.count), Cobblestone256.ciphertextSize(plaintextSize: UInt64(size)), "\(size)")
            XCTAssertEqual(ciphertext.count, header + size + (size / chunk + 1) * 16, "\(size)")
            let outcome = try cobblestoneDecrypt(key: key, context: context, ciphertext: ciphertext, readSize: 10000, steps: [777, 16400])
            XCTAssertNil(outcome.error, "\(size)")
            XCTAssertTrue(outcome.plaintext == message, "\(size)")
            // A second encryption uses a fresh salt, hence different keys.
            let again = try cobblestoneEncrypt(key: key, context: context, plaintext: message)
            XCTAssertNotEqual(Array(again.prefix(header)), Array(ciphertext.prefix(header)))
        }
    }

    func testCiphertextSizeFormula() {
        XCTAssertEqual(Cobblestone256.ciphertextSize(plaintextSize: 0), 72)
        XCTAssertEqual(Cobblestone256.ciphertextSize(plaintextSize: 16383), 56 + 16383 + 16)
        XCTAssertEqual(Cobblestone256.ciphertextSize(plaintextSize: 16384), 56 + 16384 + 32)
        XCTAssertEqual(Cobblestone256.ciphertextSize(plaintextSize: 1 << 30), 56 + (1 << 30) + 65537 * 16)
    }

    func testEveryFlippedByteFails() throws {
        let key = try SecretBytes.random(count: 32)
        let context = Array("bundle header".utf8)
        let ciphertext = try cobblestoneEncrypt(key: key, context: context, plaintext: randomMessage(100))
        for index in ciphertext.indices {
            var tampered = ciphertext
            tampered[index] ^= 0x01
            let outcome = try cobblestoneDecrypt(key: key, context: context, ciphertext: tampered)
            let expected: CryptoError = index < header ? .commitmentMismatch : .authenticationFailed
            XCTAssertEqual(outcome.error as? CryptoError, expected, "byte \(index)")
            XCTAssertEqual(outcome.plaintext.count, 0, "byte \(index)")
        }
    }

    func testTruncationAtEveryBoundaryAndMidChunkFails() throws {
        let key = try SecretBytes.random(count: 32)
        let message = try randomMessage(3 * chunk + 100)
        let ciphertext = try cobblestoneEncrypt(key: key, context: [], plaintext: message)
        XCTAssertEqual(ciphertext.count, header + 3 * sealedChunk + 116)
        var cuts = Set(0...header + 1)
        for boundary in 0...3 {
            let end = header + boundary * sealedChunk
            cuts.formUnion([end - 1, end, end + 1, end + 15, end + 16, end + 17, end + chunk / 2])
        }
        cuts.formUnion([ciphertext.count - 1, ciphertext.count - 16, ciphertext.count - 17])
        for cut in cuts.sorted() where cut < ciphertext.count {
            let outcome = try cobblestoneDecrypt(key: key, context: [], ciphertext: Array(ciphertext[..<cut]))
            let error = outcome.error as? CryptoError
            XCTAssertTrue(error == .truncated || error == .authenticationFailed, "cut at \(cut): \(String(describing: error))")
            // Only whole verified chunks may come out, and never the full message.
            XCTAssertEqual(outcome.plaintext.count % chunk, 0, "cut at \(cut)")
            XCTAssertTrue(outcome.plaintext == Array(message.prefix(outcome.plaintext.count)), "cut at \(cut)")
            XCTAssertLessThan(outcome.plaintext.count, message.count, "cut at \(cut)")
            if cut == header || (cut > header && (cut - header) % sealedChunk == 0) {
                XCTAssertEqual(error, .truncated, "cut at chunk boundary \(cut)")
            }
        }
    }

    func testAppendedDataFails() throws {
        let key = try SecretBytes.random(count: 32)
        for size in [0, 100, chunk, chunk + 5] {
            let message = try randomMessage(size)
            let ciphertext = try cobblestoneEncrypt(key: key, context: [], plaintext: message)
            for extra in [[UInt8(0)], [UInt8](repeating: 7, count: 16), [UInt8](repeating: 7, count: sealedChunk)] {
                let outcome = try cobblestoneDecrypt(key: key, context: [], ciphertext: ciphertext + extra)
                let error = outcome.error as? CryptoError
                XCTAssertTrue(error == .authenticationFailed || error == .truncated, "size \(size) + \(extra.count)")
                // Verified non-final chunks may come out before the bad final unit is seen; nothing else.
                XCTAssertEqual(outcome.plaintext.count, size / chunk * chunk, "size \(size) + \(extra.count)")
                XCTAssertTrue(outcome.plaintext == Array(message.prefix(outcome.plaintext.count)))
            }
        }
    }

    func testWrongContextOrKeyFailsTheCommitmentBeforeAnyChunk() throws {
        let key = try SecretBytes.random(count: 32)
        let ciphertext = try cobblestoneEncrypt(key: key, context: Array("header v1".utf8), plaintext: randomMessage(50000))
        var chunkReads = 0
        let source = arraySource(ciphertext)
        let decryptor = try CobblestoneDecryptor(inputKey: key, context: Array("header v2".utf8)) { buffer in
            chunkReads += 1
            return try source(buffer)
        }
        XCTAssertThrowsError(try decryptor.verifyCommitment()) { XCTAssertEqual($0 as? CryptoError, .commitmentMismatch) }
        XCTAssertEqual(chunkReads, 1, "only the header may be read")
        XCTAssertEqual(drain(decryptor, readSize: 100).error as? CryptoError, .commitmentMismatch)

        for (wrongKey, context) in [(try SecretBytes.random(count: 32), Array("header v1".utf8)), (key, [])] {
            let outcome = try cobblestoneDecrypt(key: wrongKey, context: context, ciphertext: ciphertext)
            XCTAssertEqual(outcome.error as? CryptoError, .commitmentMismatch)
            XCTAssertEqual(outcome.plaintext.count, 0)
        }
        let right = try CobblestoneDecryptor(inputKey: key, context: Array("header v1".utf8), source: arraySource(ciphertext))
        XCTAssertNoThrow(try right.verifyCommitment())
        XCTAssertNoThrow(try right.verifyCommitment())  // idempotent
        XCTAssertEqual(drain(right, readSize: 4096).plaintext.count, 50000)
    }

    func testSwappedOrDuplicatedChunksFail() throws {
        let key = try SecretBytes.random(count: 32)
        let ciphertext = try cobblestoneEncrypt(key: key, context: [], plaintext: randomMessage(2 * chunk + 10))
        let chunks = [
            Array(ciphertext[header..<(header + sealedChunk)]),
            Array(ciphertext[(header + sealedChunk)..<(header + 2 * sealedChunk)]),
        ]
        let tail = Array(ciphertext[(header + 2 * sealedChunk)...])
        let prefix = Array(ciphertext[..<header])
        for (variant, expectedRelease) in [(prefix + chunks[1] + chunks[0] + tail, 0), (prefix + chunks[0] + chunks[0] + tail, chunk)] {
            let outcome = try cobblestoneDecrypt(key: key, context: [], ciphertext: variant)
            XCTAssertEqual(outcome.error as? CryptoError, .authenticationFailed)
            XCTAssertEqual(outcome.plaintext.count, expectedRelease)
        }
        let dropped = try cobblestoneDecrypt(key: key, context: [], ciphertext: prefix + chunks[0] + tail)
        XCTAssertEqual(dropped.error as? CryptoError, .authenticationFailed)
    }

    func testChunkNonceIsBaseXorBigEndianCounter() {
        let base: [UInt8] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
        var nonce = [UInt8](repeating: 0, count: 12)
        Cobblestone256.chunkNonce(base: base, index: 0, into: &nonce)
        XCTAssertEqual(nonce, base)
        Cobblestone256.chunkNonce(base: base, index: 0x0102, into: &nonce)
        XCTAssertEqual(Hex.encode(nonce), "00010203040506070809" + "0b09")  // 0x0a^0x01, 0x0b^0x02
        Cobblestone256.chunkNonce(base: base, index: (1 << 38) - 1, into: &nonce)
        XCTAssertEqual(Hex.encode(nonce), "00010203040506" + "38f7f6f5f4")  // low 38 bits flipped
    }

    func testChunkLimit() throws {
        let aeadKey = try SecretBytes.random(count: 32)
        let baseNonce = try SecureRandom.bytes(count: 12)
        let message = try randomMessage(chunk + 1)

        // The encryptor may seal index 2^38 - 1 but not 2^38.
        var ciphertext: [UInt8] = []
        let encryptor = try CobblestoneEncryptor(aeadKey: aeadKey, baseNonce: baseNonce) { ciphertext += $0 }
        encryptor.nextChunkIndex = (1 << 38) - 2
        try encryptor.write(message)
        XCTAssertNoThrow(try encryptor.finish())
        XCTAssertEqual(ciphertext.count, sealedChunk + 17)

        let over = try CobblestoneEncryptor(aeadKey: aeadKey, baseNonce: baseNonce) { _ in }
        over.nextChunkIndex = (1 << 38) - 1
        try over.write(message)  // the full chunk (index 2^38 - 1) is sealed only now:
        XCTAssertThrowsError(try over.finish()) { XCTAssertEqual($0 as? CryptoError, .chunkLimitExceeded) }
        XCTAssertThrowsError(try over.finish()) { XCTAssertEqual($0 as? CryptoError, .chunkLimitExceeded) }

        let decryptor = try CobblestoneDecryptor(aeadKey: aeadKey, baseNonce: baseNonce, source: arraySource(ciphertext))
        decryptor.nextChunkIndex = (1 << 38) - 2
        let outcome = drain(decryptor, readSize: 5000)
        XCTAssertNil(outcome.error)
        XCTAssertTrue(outcome.plaintext == message)

        // A stream that would need a chunk at index 2^38 is rejected.
        let tooLong = try CobblestoneDecryptor(aeadKey: aeadKey, baseNonce: baseNonce, source: arraySource(ciphertext))
        tooLong.nextChunkIndex = (1 << 38) - 1
        XCTAssertEqual(drain(tooLong, readSize: 5000).error as? CryptoError, .authenticationFailed)  // wrong nonce for chunk 0
        let atLimit = try CobblestoneDecryptor(aeadKey: aeadKey, baseNonce: baseNonce, source: arraySource(ciphertext))
        atLimit.nextChunkIndex = 1 << 38
        XCTAssertEqual(drain(atLimit, readSize: 5000).error as? CryptoError, .chunkLimitExceeded)
    }

    func testSinkAndSourceErrorsAreSticky() throws {
        struct Boom: Error, Equatable {}
        let key = try SecretBytes.random(count: 32)
        var calls = 0
        let encryptor = try CobblestoneEncryptor(inputKey: key, context: []) { _ in
            calls += 1
            if calls == 2 { throw Boom() }
        }
        XCTAssertThrowsError(try encryptor.write(randomMessage(chunk + 1))) { XCTAssertTrue($0 is Boom) }
        XCTAssertThrowsError(try encryptor.write([1])) { XCTAssertTrue($0 is Boom) }
        XCTAssertThrowsError(try encryptor.finish()) { XCTAssertTrue($0 is Boom) }

        let ciphertext = try cobblestoneEncrypt(key: key, context: [], plaintext: randomMessage(3 * chunk))
        var reads = 0
        let source = arraySource(ciphertext)
        let decryptor = try CobblestoneDecryptor(inputKey: key, context: []) { buffer in
            reads += 1
            if reads == 3 { throw Boom() }
            return try source(buffer)
        }
        let outcome = drain(decryptor, readSize: 100_000)
        XCTAssertTrue(outcome.error is Boom)
        var byte: UInt8 = 0
        XCTAssertThrowsError(try withUnsafeMutableBytes(of: &byte) { try decryptor.read(into: $0) }) { XCTAssertTrue($0 is Boom) }

        let lying = try CobblestoneDecryptor(inputKey: key, context: []) { $0.count + 1 }
        XCTAssertThrowsError(try lying.verifyCommitment()) {
            guard case .invalidLength = $0 as? CryptoError else { return XCTFail("\($0)") }
        }
    }

    func testInvalidParameters() throws {
        XCTAssertThrowsError(try CobblestoneEncryptor(inputKey: SecretBytes(count: 32), context: [], salt: [1, 2]) { _ in })
        XCTAssertThrowsError(try CobblestoneEncryptor(inputKey: SecretBytes(count: 16), context: []) { _ in }) {
            XCTAssertEqual($0 as? CryptoError, .invalidKeySize(expected: 32, actual: 16))
        }
        XCTAssertThrowsError(try CobblestoneDecryptor(inputKey: SecretBytes(count: 64), context: []) { _ in 0 }) {
            XCTAssertEqual($0 as? CryptoError, .invalidKeySize(expected: 32, actual: 64))
        }
        // An empty ciphertext, and one with only a header, are truncated.
        let key = try SecretBytes.random(count: 32)
        XCTAssertEqual(try cobblestoneDecrypt(key: key, context: [], ciphertext: []).error as? CryptoError, .truncated)
        let empty = try cobblestoneEncrypt(key: key, context: [], plaintext: [])
        XCTAssertEqual(empty.count, 72)
        XCTAssertEqual(try cobblestoneDecrypt(key: key, context: [], ciphertext: Array(empty.prefix(56))).error as? CryptoError, .truncated)
    }

    /// A long multi-chunk stream end to end (64 MiB, 4097 chunks): every MiB of plaintext differs (its index is
    /// written into it), the whole ciphertext is kept, decrypted in 1 MiB reads and compared MiB by MiB with what was
    /// encrypted. Prints the throughput of both directions (no timing is asserted).
    func testLongStreamRoundTripAndThroughput() throws {
        let key = try SecretBytes.random(count: 32)
        let mib = 1 << 20
        let count = 64
        let base = try randomMessage(mib)
        func piece(_ i: Int) -> [UInt8] {
            var p = base
            withUnsafeBytes(of: UInt64(i).bigEndian) { for (k, b) in $0.enumerated() { p[k] = b; p[mib / 2 + k] = b } }
            return p
        }
        var ciphertext: [UInt8] = []
        ciphertext.reserveCapacity(Int(Cobblestone256.ciphertextSize(plaintextSize: UInt64(count * mib))))
        var start = Date()
        let encryptor = try CobblestoneEncryptor(inputKey: key, context: Array("long stream".utf8)) { ciphertext += $0 }
        for i in 0..<count { try encryptor.write(piece(i)) }
        try encryptor.finish()
        let encryptSeconds = Date().timeIntervalSince(start)
        XCTAssertEqual(UInt64(ciphertext.count), Cobblestone256.ciphertextSize(plaintextSize: UInt64(count * mib)))
        XCTAssertEqual((ciphertext.count - Cobblestone256.headerSize + Cobblestone256.sealedChunkSize - 1) / Cobblestone256.sealedChunkSize, 4097)

        start = Date()
        let decryptor = try CobblestoneDecryptor(inputKey: key, context: Array("long stream".utf8), source: arraySource(ciphertext, steps: [65536, 16400, 7]))
        var buffer = [UInt8](repeating: 0, count: mib)
        var pieces = 0
        while true {
            var filled = 0
            while filled < mib {
                let n = try buffer.withUnsafeMutableBytes { try decryptor.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[filled...])) }
                if n == 0 { break }
                filled += n
            }
            if filled == 0 { break }
            XCTAssertEqual(filled, mib, "piece \(pieces) complete")
            XCTAssertTrue(buffer == piece(pieces), "piece \(pieces) decrypts to what was encrypted")
            pieces += 1
        }
        let decryptSeconds = Date().timeIntervalSince(start)
        XCTAssertEqual(pieces, count, "every MiB came back, in order")
        // Past the end the stream stays at its end.
        XCTAssertEqual(try buffer.withUnsafeMutableBytes { try decryptor.read(into: $0) }, 0)
        print(String(format: "Cobblestone-256, 64 MiB: encrypt %.0f MB/s, decrypt and compare %.0f MB/s",
                     Double(count * mib) / encryptSeconds / 1e6, Double(count * mib) / decryptSeconds / 1e6))
    }
}
