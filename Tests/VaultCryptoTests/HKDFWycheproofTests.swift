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
        var ran = 0, rejected = 0
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
            case "invalid":
                XCTAssertTrue(vector.flags.contains("SizeTooLarge"), id)
                XCTAssertThrowsError(try derive(), id) {
                    guard case .invalidLength = $0 as? CryptoError else { return XCTFail("\(id): \($0)") }
                }
                rejected += 1
            default:
                XCTFail("\(id): unexpected result \(vector.result)")
            }
            ran += 1
        }
        XCTAssertEqual(file.numberOfTests.value, 83)
        XCTAssertEqual(ran, 83)
        XCTAssertEqual(rejected, 3)
        print("HKDF-SHA-512 Wycheproof: \(ran) vectors passed (\(rejected) oversize requests rejected)")
    }
}
