import XCTest

@testable import VaultCrypto

final class P256Tests: XCTestCase {
    /// n, the order of the P-256 base point.
    private let order = Hex.decode("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551")

    func testGenerateExportImportRoundTrip() throws {
        let key = try P256PrivateKey.generate()
        XCTAssertEqual(key.publicKey.x963Representation.count, 65)
        XCTAssertEqual(key.publicKey.x963Representation.first, 0x04)
        let scalar = try key.rawScalar()
        XCTAssertEqual(scalar.count, 32)
        let imported = try P256PrivateKey(rawScalar: scalar)
        XCTAssertEqual(imported.publicKey, key.publicKey)
        XCTAssertEqual(try imported.rawScalar(), scalar)
        XCTAssertNotEqual(try P256PrivateKey.generate().publicKey, key.publicKey)
    }

    func testKnownPublicKeyForScalarOne() throws {
        let one = SecretBytes(copying: [UInt8](repeating: 0, count: 31) + [1])
        XCTAssertEqual(
            Hex.encode(try P256PrivateKey(rawScalar: one).publicKey.x963Representation),
            "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
                + "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")
    }

    func testScalarRange() throws {
        var nMinusOne = order
        nMinusOne[31] -= 1
        XCTAssertNoThrow(try P256PrivateKey(rawScalar: SecretBytes(copying: nMinusOne)))
        var nPlusOne = order
        nPlusOne[31] += 1
        for bad in [order, nPlusOne, [UInt8](repeating: 0, count: 32), [UInt8](repeating: 0xff, count: 32)] {
            XCTAssertThrowsError(try P256PrivateKey(rawScalar: SecretBytes(copying: bad)), Hex.encode(bad)) {
                guard case .invalidLength = $0 as? CryptoError else { return XCTFail("\($0)") }
            }
        }
        XCTAssertThrowsError(try P256PrivateKey(rawScalar: SecretBytes(count: 31))) {
            XCTAssertEqual($0 as? CryptoError, .invalidKeySize(expected: 32, actual: 31))
        }
    }

    func testECDHIsSymmetric() throws {
        let alice = try P256PrivateKey.generate(), bob = try P256PrivateKey.generate()
        let ab = try alice.sharedSecret(with: bob.publicKey)
        XCTAssertEqual(ab.count, 32)
        XCTAssertEqual(ab, try bob.sharedSecret(with: alice.publicKey))
        XCTAssertNotEqual(ab, try alice.sharedSecret(with: P256PrivateKey.generate().publicKey))
    }

    func testPublicKeyValidation() throws {
        let good = try P256PrivateKey.generate().publicKey.x963Representation
        XCTAssertEqual(try P256PublicKey(x963Representation: good).x963Representation, good)

        var compressed = Array(good[..<33])
        compressed[0] = 0x02 | (good[64] & 1)
        var offCurve = good
        offCurve[64] ^= 1
        var hybrid = good
        hybrid[0] = 0x06 | (good[64] & 1)
        let xTooLarge = [0x04] + [UInt8](repeating: 0xff, count: 64)
        let infinity: [UInt8] = [0x00]
        let zeros = [0x04] + [UInt8](repeating: 0, count: 64)
        for (name, bytes) in [
            ("compressed", compressed), ("off curve", offCurve), ("hybrid", hybrid), ("x >= p", xTooLarge),
            ("infinity", infinity), ("zeros", zeros), ("empty", []), ("long", good + [0]),
        ] {
            XCTAssertThrowsError(try P256PublicKey(x963Representation: bytes), name) {
                guard case .invalidPublicKey = $0 as? CryptoError else { return XCTFail("\(name): \($0)") }
            }
        }
    }
}
