import VaultArchive
import XCTest

@testable import VaultCrypto

/// Wycheproof `c2sp_chunked_encryption_aes_256_gcm_test.json` (Cobblestone-256).
final class CobblestoneWycheproofTests: XCTestCase {
    struct VectorFile: Decodable {
        let numberOfTests: FlexibleInt
        let testGroups: [Group]
    }

    struct Group: Decodable {
        let aead: String
        let sha: String
        let tests: [Vector]
    }

    struct Vector: Decodable {
        let tcId: FlexibleInt
        let comment: String
        let key: String
        let ctx: String
        let ct: String
        let aeadKey: String?
        let baseNonce: String?
        let msgLength: FlexibleInt?
        let msgSha512: String?
        let result: String
        let flags: Flags
    }

    /// Read sizes for `CobblestoneDecryptor.read`, and the short-read patterns of the source.
    private let readSizes = [1, 7, 16400, 65536]
    private let sourceSteps: [[Int]] = [[1 << 20], [1, 4096, 16399, 7, 65536], [16400], [13]]

    func testAllVectors() throws {
        let file = try loadVectors("c2sp_chunked_encryption_aes_256_gcm_test.json", as: VectorFile.self)
        var passed = 0
        var split: [String: Int] = [:]
        for group in file.testGroups {
            XCTAssertEqual(group.aead, "AEAD_AES_256_GCM")
            XCTAssertEqual(group.sha, "SHA-512")
            for vector in group.tests {
                let failuresBefore = testRun?.failureCount ?? 0
                try check(vector)
                split[vector.result, default: 0] += 1
                if testRun?.failureCount == failuresBefore { passed += 1 }
            }
        }
        XCTAssertEqual(file.numberOfTests.value, 35)
        XCTAssertEqual(passed, 35, "every Cobblestone-256 vector must run and pass")
        XCTAssertEqual(split, ["valid": 10, "invalid": 25], "the file's valid/invalid split")
        print("Cobblestone-256 Wycheproof: \(passed) vectors passed")
    }

    private func check(_ vector: Vector) throws {
        let id = "tcId \(vector.tcId.value) (\(vector.comment))"
        let ciphertext = try zlibInflate(Hex.decode(vector.ct))
        let key = SecretBytes(copying: Hex.decode(vector.key))
        let context = Hex.decode(vector.ctx)

        if vector.flags.contains("InvalidKeySize") {
            XCTAssertEqual(vector.result, "invalid", id)
            XCTAssertThrowsError(try CobblestoneDecryptor(inputKey: key, context: context, source: arraySource(ciphertext)), id) {
                XCTAssertEqual($0 as? CryptoError, .invalidKeySize(expected: 32, actual: key.count), id)
            }
            XCTAssertThrowsError(try CobblestoneEncryptor(inputKey: key, context: context) { _ in }, id)
            return
        }

        if vector.flags.contains("HeaderFailure") {
            // Rejected while processing the header, before any chunk is read.
            let decryptor = try CobblestoneDecryptor(inputKey: key, context: context, source: arraySource(ciphertext))
            let error = caughtError { try decryptor.verifyCommitment() } as? CryptoError
            XCTAssertEqual(error, Self.expectedError(vector), "\(id): the exact header failure")
        }

        switch vector.result {
        case "valid": try checkValid(vector, id: id, key: key, context: context, ciphertext: ciphertext)
        case "invalid": try checkInvalid(vector, id: id, key: key, context: context, ciphertext: ciphertext)
        default: XCTFail("\(id): unexpected result \(vector.result)")
        }
    }

    private func checkValid(_ vector: Vector, id: String, key: SecretBytes, context: [UInt8], ciphertext: [UInt8]) throws {
        let expectedLength = try XCTUnwrap(vector.msgLength?.value, id)
        var message: [UInt8] = []
        for (readSize, steps) in zip(readSizes, sourceSteps) {
            let outcome = try cobblestoneDecrypt(key: key, context: context, ciphertext: ciphertext, readSize: readSize, steps: steps)
            XCTAssertNil(outcome.error, "\(id) read size \(readSize)")
            XCTAssertEqual(outcome.plaintext.count, expectedLength, "\(id) read size \(readSize)")
            try assertSHA512(outcome.plaintext, matches: vector.msgSha512, id)
            message = outcome.plaintext
        }

        // Raw mode: the chunks alone, under the vector's AEAD key and base nonce.
        let aeadKey = SecretBytes(copying: Hex.decode(try XCTUnwrap(vector.aeadKey, id)))
        let baseNonce = Hex.decode(try XCTUnwrap(vector.baseNonce, id))
        var rawCiphertext: [UInt8] = []
        let rawEncryptor = try CobblestoneEncryptor(aeadKey: aeadKey, baseNonce: baseNonce) { rawCiphertext += $0 }
        try writeInPieces(message, pieces: [5000, 16384, 1]) { try rawEncryptor.write($0) }
        try rawEncryptor.finish()
        XCTAssertTrue(rawCiphertext == Array(ciphertext[Cobblestone256.headerSize...]), "\(id): raw-mode encryption differs")
        let rawDecryptor = try CobblestoneDecryptor(
            aeadKey: aeadKey, baseNonce: baseNonce, source: arraySource(Array(ciphertext[Cobblestone256.headerSize...])))
        let rawOutcome = drain(rawDecryptor, readSize: 9999)
        XCTAssertNil(rawOutcome.error, id)
        XCTAssertTrue(rawOutcome.plaintext == message, "\(id): raw-mode decryption differs")

        // Full encryption with the vector's salt reproduces the ciphertext byte for byte.
        let salt = Array(ciphertext[..<Cobblestone256.saltSize])
        let reencrypted = try cobblestoneEncrypt(key: key, context: context, plaintext: message, salt: salt, pieces: [16384, 3, 20000])
        XCTAssertTrue(reencrypted == ciphertext, "\(id): salt-injected encryption differs")
        XCTAssertEqual(Cobblestone256.ciphertextSize(plaintextSize: UInt64(message.count)), UInt64(ciphertext.count), id)
    }

    private func checkInvalid(_ vector: Vector, id: String, key: SecretBytes, context: [UInt8], ciphertext: [UInt8]) throws {
        // Invalid vectors without PartialPlaintext must not release a single byte.
        let releasable = vector.flags.contains("PartialPlaintext") ? try XCTUnwrap(vector.msgLength?.value, id) : 0
        for (readSize, steps) in zip(readSizes, sourceSteps) {
            let decryptor = try CobblestoneDecryptor(inputKey: key, context: context, source: arraySource(ciphertext, steps: steps))
            let outcome = drain(decryptor, readSize: readSize)
            let error = try XCTUnwrap(outcome.error as? CryptoError, "\(id) read size \(readSize): decryption must fail")
            XCTAssertEqual(error, Self.expectedError(vector), "\(id) read size \(readSize): the exact error")
            XCTAssertLessThanOrEqual(outcome.plaintext.count, releasable, "\(id) read size \(readSize)")
            if releasable > 0 && outcome.plaintext.count == releasable {
                try assertSHA512(outcome.plaintext, matches: vector.msgSha512, id)
            }
            // Errors are sticky.
            for _ in 0..<2 {
                var byte: UInt8 = 0
                XCTAssertThrowsError(try withUnsafeMutableBytes(of: &byte) { try decryptor.read(into: $0) }, id) {
                    XCTAssertEqual($0 as? CryptoError, error, id)
                }
            }
        }

        // Raw mode fails too for vectors whose failure lies in the chunks.
        if let aeadKey = vector.aeadKey, let baseNonce = vector.baseNonce {
            let chunks = Array(ciphertext.dropFirst(Cobblestone256.headerSize))
            let decryptor = try CobblestoneDecryptor(
                aeadKey: SecretBytes(copying: Hex.decode(aeadKey)), baseNonce: Hex.decode(baseNonce), source: arraySource(chunks))
            let outcome = drain(decryptor, readSize: 65536)
            XCTAssertNotNil(outcome.error, "\(id): raw-mode decryption must fail")
            XCTAssertLessThanOrEqual(outcome.plaintext.count, releasable, id)
        }
    }

    /// The exact error of an invalid vector, from its flags: a header cut short is `truncated`, any other header
    /// failure a commitment mismatch; in the chunks, a missing final chunk or a final chunk shorter than a tag is
    /// `truncated`, everything else (modified, reordered, cut mid-chunk, trailing data) fails authentication.
    static func expectedError(_ v: Vector) -> CryptoError {
        if v.flags.contains("HeaderFailure") { return v.flags.contains("Truncation") ? .truncated : .commitmentMismatch }
        switch v.tcId.value {
        // The final unit shorter than a tag (tag removed; payload shorter than a tag; 12 bytes after a full chunk), no
        // chunk at all, no final chunk after a full one.
        case 16, 17, 19, 20, 31: return .truncated
        default: return .authenticationFailed
        }
    }

    private func assertSHA512(_ bytes: [UInt8], matches expected: String?, _ id: String) throws {
        let expected = try XCTUnwrap(expected, id).lowercased()
        XCTAssertFalse(expected.isEmpty, id)
        let digest = Hex.encode(try SHA512.hash(bytes))
        // The field may be truncated in some vector files: compare as a prefix.
        XCTAssertTrue(digest.hasPrefix(expected), "\(id): SHA-512 \(digest) does not match \(expected)")
    }
}
