import XCTest

@testable import VaultCrypto

/// Wycheproof `ecdh_secp256r1_ecpoint_test.json`: public keys as raw SEC1 points.
final class ECDHWycheproofTests: XCTestCase {
    struct VectorFile: Decodable {
        let numberOfTests: FlexibleInt
        let testGroups: [Group]
    }

    struct Group: Decodable {
        let curve: String
        let tests: [Vector]
    }

    struct Vector: Decodable {
        let tcId: FlexibleInt
        let comment: String
        let `public`: String
        let `private`: String
        let shared: String
        let result: String
        let flags: Flags
    }

    func testP256ECDHVectors() throws {
        let file = try loadVectors("ecdh_secp256r1_ecpoint_test.json", as: VectorFile.self)
        var valid = 0, invalid = 0, acceptableAccepted = 0, acceptableRejected = 0
        for group in file.testGroups {
            XCTAssertEqual(group.curve, "secp256r1")
            for vector in group.tests {
                let id = "tcId \(vector.tcId.value) (\(vector.comment))"
                let privateKey = try P256PrivateKey(rawScalar: SecretBytes(copying: Self.scalar(vector.private)))
                let shared: SecretBytes?
                do {
                    let peer = try P256PublicKey(x963Representation: Hex.decode(vector.public))
                    shared = try privateKey.sharedSecret(with: peer)
                } catch {
                    shared = nil
                }
                switch vector.result {
                case "valid":
                    XCTAssertEqual(shared?.hexEncodedString(), vector.shared, id)
                    valid += 1
                case "invalid":
                    XCTAssertNil(shared, "\(id): must be rejected")
                    invalid += 1
                case "acceptable":
                    if let shared {
                        XCTAssertEqual(shared.hexEncodedString(), vector.shared, id)
                        acceptableAccepted += 1
                    } else {
                        acceptableRejected += 1
                    }
                default:
                    XCTFail("\(id): unexpected result \(vector.result)")
                }
            }
        }
        let total = valid + invalid + acceptableAccepted + acceptableRejected
        XCTAssertEqual(file.numberOfTests.value, 355)
        XCTAssertEqual(total, 355)
        print(
            "P-256 ECDH Wycheproof: \(total) vectors passed (\(valid) valid, \(invalid) invalid rejected, "
                + "acceptable: \(acceptableAccepted) accepted, \(acceptableRejected) rejected)")
    }

    /// Wycheproof scalars are DER-style integers (maybe a leading 00, maybe short): make them 32 bytes.
    static func scalar(_ hex: String) -> [UInt8] {
        let significant = Array(Hex.decode(hex).drop { $0 == 0 })
        precondition(significant.count <= 32, "scalar longer than 32 bytes in test data")
        return [UInt8](repeating: 0, count: 32 - significant.count) + significant
    }
}
