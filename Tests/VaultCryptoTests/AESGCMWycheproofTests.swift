import XCTest

@testable import VaultCrypto

/// Wycheproof `aes_gcm_test.json`, groups with a 256-bit key, 96-bit IV and 128-bit tag.
final class AESGCMWycheproofTests: XCTestCase {
    struct VectorFile: Decodable { let testGroups: [Group] }

    struct Group: Decodable {
        let keySize: FlexibleInt
        let ivSize: FlexibleInt
        let tagSize: FlexibleInt
        let tests: [Vector]
    }

    struct Vector: Decodable {
        let tcId: FlexibleInt
        let key, iv, aad, msg, ct, tag: String
        let result: String
    }

    /// Vectors in the file with a 256-bit key, 96-bit IV and 128-bit tag (39 valid, 27 invalid).
    static let expectedCount = 66

    func testAES256GCMVectors() throws {
        let file = try loadVectors("aes_gcm_test.json", as: VectorFile.self)
        // Independent count: judge each vector by its own field lengths, ignoring group metadata.
        let independentCount = file.testGroups.flatMap(\.tests).filter {
            $0.key.count == 64 && $0.iv.count == 24 && $0.tag.count == 32
        }.count
        XCTAssertEqual(independentCount, Self.expectedCount)

        var ran = 0
        var split: [String: Int] = [:]
        for group in file.testGroups
        where group.keySize.value == 256 && group.ivSize.value == 96 && group.tagSize.value == 128 {
            for vector in group.tests {
                check(vector)
                split[vector.result, default: 0] += 1
                ran += 1
            }
        }
        XCTAssertEqual(ran, Self.expectedCount)
        XCTAssertEqual(ran, independentCount)
        XCTAssertEqual(split, ["valid": 39, "invalid": 27], "valid vectors round-trip exactly, invalid ones fail authentication")
        print("AES-256-GCM Wycheproof: \(ran) vectors passed (256-bit key, 96-bit IV)")
    }

    private func check(_ vector: Vector) {
        let id = "tcId \(vector.tcId.value)"
        let key = SecretBytes(copying: Hex.decode(vector.key))
        let nonce = Hex.decode(vector.iv)
        let aad = Hex.decode(vector.aad)
        let message = Hex.decode(vector.msg)
        let sealed = Hex.decode(vector.ct) + Hex.decode(vector.tag)
        do {
            let aead = try AESGCM256(key: key)
            switch vector.result {
            case "valid":
                XCTAssertEqual(try aead.seal(nonce: nonce, plaintext: message, aad: aad), sealed, id)
                XCTAssertEqual(try aead.open(nonce: nonce, ciphertextAndTag: sealed, aad: aad), message, id)
            case "invalid":
                XCTAssertThrowsError(try aead.open(nonce: nonce, ciphertextAndTag: sealed, aad: aad), id) {
                    XCTAssertEqual($0 as? CryptoError, .authenticationFailed, id)
                }
            default:
                XCTFail("\(id): unexpected result \(vector.result)")
            }
        } catch {
            XCTFail("\(id): \(error)")
        }
    }
}
