import XCTest

@testable import VaultCrypto

/// Wycheproof `hkdf_sha512_test.json`, through `HKDF.deriveKey` (extract and expand).
final class HKDFWycheproofTests: XCTestCase {
    struct VectorFile: Decodable {
        let numberOfTests: FlexibleInt
        let testGroups: [Group]
    }

    struct Group: Decodable { let tests: [Vector] }

    struct Vector: Decodable {
        let tcId: FlexibleInt
        let ikm, salt, info, okm: String
        let size: FlexibleInt
        let result: String
        let flags: Flags
    }

    func testHKDFSHA512Vectors() throws {
        let file = try loadVectors("hkdf_sha512_test.json", as: VectorFile.self)
        var ran = 0, rejected = 0, matched = 0
        for vector in file.testGroups.flatMap(\.tests) {
            let id = "tcId \(vector.tcId.value)"
            let derive = {
                try HKDF.deriveKey(
                    hash: .sha512, inputKeyMaterial: SecretBytes(copying: Hex.decode(vector.ikm)),
                    salt: Hex.decode(vector.salt), info: Hex.decode(vector.info), outputByteCount: vector.size.value)
            }
            switch vector.result {
            case "valid":
                XCTAssertEqual(try derive().hexEncodedString(), vector.okm, id)
                matched += 1
            case "invalid":
                XCTAssertTrue(vector.flags.contains("SizeTooLarge"), id)
                // The exact error: HKDF-SHA-512 yields at most 255 * 64 bytes.
                XCTAssertThrowsError(try derive(), id) {
                    guard case .invalidLength(let reason) = $0 as? CryptoError else { return XCTFail("\(id): \($0)") }
                    XCTAssertTrue(reason.contains("\(vector.size.value)") && reason.contains("16320"), "\(id): \(reason)")
                }
                rejected += 1
            default:
                XCTFail("\(id): unexpected result \(vector.result)")
            }
            ran += 1
        }
        XCTAssertEqual(file.numberOfTests.value, 83)
        XCTAssertEqual(ran, 83)
        XCTAssertEqual(rejected, 3, "invalid vectors")
        XCTAssertEqual(matched, 80, "valid vectors")
        print("HKDF-SHA-512 Wycheproof: \(ran) vectors passed (\(rejected) oversize requests rejected)")
    }
}
