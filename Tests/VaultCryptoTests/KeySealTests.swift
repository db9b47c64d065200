import XCTest

@testable import VaultCrypto

final class KeySealTests: XCTestCase {
    // Known answer, computed independently (Python `cryptography`: ECDH, HKDF-SHA-256, AES-GCM) and pinned.
    private let recipientScalar = "6d45ca7ebd1cf940c505619fdeb3dba2691f638ef2781e4a3a78dd984b852b4d"
    private let ephemeralScalar = "292f7d6097552d41100faac4aeb5434069f91107043eab61b0ba2c5cc8a0c8fe"
    private let recipientPublic =
        "04f470654ac1fcb11716d091da8ae57f6698cb8775886dcfb75672dfa3849c692b"
        + "795c2264d53e43352bea11d650c1a4e68fec9746de31f65531a30fd842fcf953"
    private let expectedSealed =
        "04041adce2b34b657ad68ff165167385fa550582afe72c55b48a80c99260294341"
        + "898fc44e08e5c024bd45d735918f8611ca41dd54ed9a62059d56526cba3dd278"
        + "f2c73421740ab6e11a62099e46e1a02f1a3e4ff5e694eb8d6a914394361e72d3"
        + "01a582251229d58eb886a184a59c7c67"
    private let secret = SecretBytes(copying: Array(0..<32))
    private let info = Array("bundle-dek".utf8)
    private let aad = Array("user=u0100037;bundle=b1".utf8)

    func testKnownAnswer() throws {
        let recipient = try P256PrivateKey(rawScalar: SecretBytes(hex: recipientScalar))
        XCTAssertEqual(Hex.encode(recipient.publicKey.x963Representation), recipientPublic)
        let ephemeral = try P256PrivateKey(rawScalar: SecretBytes(hex: ephemeralScalar))
        let sealed = try KeySeal.seal(secret, to: recipient.publicKey, info: info, aad: aad, ephemeralKey: ephemeral)
        XCTAssertEqual(Hex.encode(sealed), expectedSealed)
        XCTAssertEqual(try KeySeal.open(Hex.decode(expectedSealed), with: recipient, info: info, aad: aad), secret)
    }

    func testRoundTripWithFreshEphemeralKeys() throws {
        let recipient = try P256PrivateKey.generate()
        for count in [0, 1, 32, 100] {
            let secret = try SecretBytes.random(count: count)
            let first = try KeySeal.seal(secret, to: recipient.publicKey, info: info, aad: aad)
            let second = try KeySeal.seal(secret, to: recipient.publicKey, info: info, aad: aad)
            XCTAssertEqual(first.count, count + KeySeal.overhead)
            XCTAssertNotEqual(first, second, "each seal uses a new ephemeral key")
            XCTAssertEqual(try KeySeal.open(first, with: recipient, info: info, aad: aad), secret)
            XCTAssertEqual(try KeySeal.open(second, with: recipient, info: info, aad: aad), secret)
        }
    }

    func testEveryFlippedByteFails() throws {
        let recipient = try P256PrivateKey(rawScalar: SecretBytes(hex: recipientScalar))
        let sealed = Hex.decode(expectedSealed)
        for index in sealed.indices {
            var tampered = sealed
            tampered[index] ^= 0x80
            XCTAssertThrowsError(try KeySeal.open(tampered, with: recipient, info: info, aad: aad), "byte \(index)") {
                let error = $0 as? CryptoError
                if index == 0 || (index < 65 && error != .authenticationFailed) {
                    guard case .invalidPublicKey = error else { return XCTFail("byte \(index): \($0)") }
                } else {
                    XCTAssertEqual(error, .authenticationFailed, "byte \(index)")
                }
            }
        }
    }

    func testWrongContextOrKeyFails() throws {
        let recipient = try P256PrivateKey(rawScalar: SecretBytes(hex: recipientScalar))
        let sealed = Hex.decode(expectedSealed)
        let attempts: [(String, P256PrivateKey, [UInt8], [UInt8])] = [
            ("wrong aad", recipient, info, aad + [0]),
            ("empty aad", recipient, info, []),
            ("wrong info", recipient, Array("bundle-dek2".utf8), aad),
            ("wrong key", try P256PrivateKey.generate(), info, aad),
        ]
        for (name, key, info, aad) in attempts {
            XCTAssertThrowsError(try KeySeal.open(sealed, with: key, info: info, aad: aad), name) {
                XCTAssertEqual($0 as? CryptoError, .authenticationFailed, name)
            }
        }
    }

    func testMalformedBlobs() throws {
        let recipient = try P256PrivateKey.generate()
        for count in [0, 65, 80] {
            XCTAssertThrowsError(try KeySeal.open([UInt8](repeating: 4, count: count), with: recipient, info: [], aad: [])) {
                guard case .invalidLength = $0 as? CryptoError else { return XCTFail("\($0)") }
            }
        }
        var notAPoint = Hex.decode(expectedSealed)
        notAPoint.replaceSubrange(1..<65, with: [UInt8](repeating: 0, count: 64))
        XCTAssertThrowsError(try KeySeal.open(notAPoint, with: recipient, info: info, aad: aad)) {
            guard case .invalidPublicKey = $0 as? CryptoError else { return XCTFail("\($0)") }
        }
    }
}
