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

    /// What the file holds (counted from its `result` fields): 330 valid, 24 invalid, 1 acceptable (a compressed point).
    static let expectedSplit = ["valid": 330, "invalid": 24, "acceptable": 1]

    /// The exact rejection of each kind of invalid public key, by the vector's flags. Every invalid vector is refused
    /// while its public key is decoded, before any ECDH.
    static let expectedRejections: [String: CryptoError] = [
        "InvalidCurveAttack": .invalidPublicKey("the coordinates are out of range or the point is not on the P-256 curve"),
        "WrongCurve CompressedPoint": .invalidPublicKey("expected a 65-byte uncompressed point, got 33 bytes"),
        "InvalidEncoding": .invalidPublicKey("expected a 65-byte uncompressed point, got 0 bytes"),
        "InvalidCompressedPublic CompressedPoint": .invalidPublicKey("expected a 65-byte uncompressed point, got 33 bytes"),
        "CompressedPublic CompressedPoint": .invalidPublicKey("expected a 65-byte uncompressed point, got 33 bytes"),
    ]

    func testP256ECDHVectors() throws {
        let file = try loadVectors("ecdh_secp256r1_ecpoint_test.json", as: VectorFile.self)
        var valid = 0, invalid = 0, acceptableAccepted = 0, acceptableRejected = 0
        var split: [String: Int] = [:]
        for group in file.testGroups {
            XCTAssertEqual(group.curve, "secp256r1")
            for vector in group.tests {
                let id = "tcId \(vector.tcId.value) (\(vector.comment))"
                split[vector.result, default: 0] += 1
                let privateKey = try P256PrivateKey(rawScalar: SecretBytes(copying: Self.scalar(vector.private)))
                let flags = vector.flags.values.joined(separator: " ")
                // Decoding the public key and the ECDH are separate steps, so a rejection is pinned to the step.
                let peer: P256PublicKey?
                var decodeError: CryptoError?
                do { peer = try P256PublicKey(x963Representation: Hex.decode(vector.public)) } catch {
                    peer = nil
                    decodeError = error as? CryptoError
                    XCTAssertNotNil(decodeError, "\(id): \(error) is not a CryptoError")
                }
                switch vector.result {
                case "valid":
                    let key = try XCTUnwrap(peer, "\(id): a valid public key was rejected: \(String(describing: decodeError))")
                    XCTAssertEqual(try privateKey.sharedSecret(with: key).hexEncodedString(), vector.shared, id)
                    valid += 1
                case "invalid":
                    XCTAssertNil(peer, "\(id): must be rejected")
                    XCTAssertEqual(decodeError, Self.expectedRejections[flags], "\(id) [\(flags)]: the exact rejection")
                    invalid += 1
                case "acceptable":
                    if let peer {
                        XCTAssertEqual(try privateKey.sharedSecret(with: peer).hexEncodedString(), vector.shared, id)
                        acceptableAccepted += 1
                    } else {
                        XCTAssertEqual(decodeError, Self.expectedRejections[flags], "\(id) [\(flags)]: the exact rejection")
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
        XCTAssertEqual(split, Self.expectedSplit, "the file's valid/invalid/acceptable split")
        XCTAssertEqual(valid, 330, "valid vectors: shared secret equal")
        XCTAssertEqual(invalid, 24, "invalid vectors: rejected with their exact error")
        // Only uncompressed points are accepted (vault-format.md §3.1): the one acceptable vector is a compressed point.
        XCTAssertEqual(acceptableAccepted, 0)
        XCTAssertEqual(acceptableRejected, 1)
        print(
            "P-256 ECDH Wycheproof: \(total) vectors passed (\(valid) valid, \(invalid) invalid rejected with their exact error, "
                + "acceptable: \(acceptableAccepted) accepted, \(acceptableRejected) rejected)")
    }

    /// Wycheproof scalars are DER-style integers (maybe a leading 00, maybe short): make them 32 bytes.
    static func scalar(_ hex: String) -> [UInt8] {
        let significant = Array(Hex.decode(hex).drop { $0 == 0 })
        precondition(significant.count <= 32, "scalar longer than 32 bytes in test data")
        return [UInt8](repeating: 0, count: 32 - significant.count) + significant
    }
}
