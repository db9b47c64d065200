import XCTest
@testable import VaultCrypto

/// ECDSA P-256/SHA-256 (trust record and job signatures): round trip, every flipped byte of message or signature
/// fails, another key fails, and a signature made by OpenSSL's command line on the same key verifies (an
/// implementation other than ours: `openssl pkeyutl` over the same key and message).
final class ECDSATests: XCTestCase {
    func testSignVerifyAndEveryTamperFails() throws {
        let key = try P256PrivateKey.generate()
        let message = Array("shredvault.org/trust@v1".utf8) + [0] + Array(0..<200).map { UInt8($0) }
        let signature = try ECDSAP256.sign(message, with: key)
        XCTAssertTrue(ECDSAP256.verify(signature, message: message, publicKey: key.publicKey))
        XCTAssertLessThanOrEqual(signature.count, ECDSAP256.maxSignatureSize)
        XCTAssertEqual(signature.first, 0x30, "DER SEQUENCE")
        for i in 0..<signature.count {
            var bad = signature
            bad[i] ^= 0x01
            XCTAssertFalse(ECDSAP256.verify(bad, message: message, publicKey: key.publicKey), "signature byte \(i)")
        }
        for i in stride(from: 0, to: message.count, by: 7) {
            var bad = message
            bad[i] ^= 0x80
            XCTAssertFalse(ECDSAP256.verify(signature, message: bad, publicKey: key.publicKey), "message byte \(i)")
        }
        XCTAssertFalse(ECDSAP256.verify(signature, message: message, publicKey: try P256PrivateKey.generate().publicKey))
        XCTAssertFalse(ECDSAP256.verify([], message: message, publicKey: key.publicKey))
        XCTAssertFalse(ECDSAP256.verify(signature + [0], message: message, publicKey: key.publicKey), "trailing byte")
        // Two signatures of one message differ (random nonces) and both verify.
        let again = try ECDSAP256.sign(message, with: key)
        XCTAssertNotEqual(again, signature)
        XCTAssertTrue(ECDSAP256.verify(again, message: message, publicKey: key.publicKey))
    }

    func testASignatureFromTheOpenSSLCommandLineVerifies() throws {
        let dir = NSTemporaryDirectory() + "ecdsa-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func openssl(_ args: [String]) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
            p.arguments = args
            try p.run()
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "openssl \(args)")
        }
        try openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", dir + "/k.pem"])
        try openssl(["ec", "-in", dir + "/k.pem", "-pubout", "-conv_form", "uncompressed", "-outform", "DER", "-out", dir + "/pub.der"])
        let message = Array("a message signed elsewhere".utf8)
        try Data(message).write(to: URL(fileURLWithPath: dir + "/m"))
        try openssl(["dgst", "-sha256", "-sign", dir + "/k.pem", "-out", dir + "/sig", dir + "/m"])
        let der = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/pub.der")))
        let publicKey = try P256PublicKey(x963Representation: Array(der.suffix(65)))
        let signature = try [UInt8](Data(contentsOf: URL(fileURLWithPath: dir + "/sig")))
        XCTAssertTrue(ECDSAP256.verify(signature, message: message, publicKey: publicKey))
        XCTAssertFalse(ECDSAP256.verify(signature, message: message + [0], publicKey: publicKey))
    }

    /// The fixed-width form `r ‖ s` (vault signatures, vault-format.md §3.10): round trip through DER, every flipped
    /// byte fails, a wrong length fails, and r or s of zero (which DER would carry) is refused.
    func testRawSignatures() throws {
        let key = try P256PrivateKey.generate()
        let message = Array("shredvault.org/bundle@v1".utf8) + [0, 1, 2, 3]
        for _ in 0..<20 {
            let raw = try ECDSAP256.signRaw(message, with: key)
            XCTAssertEqual(raw.count, 64)
            XCTAssertTrue(ECDSAP256.verifyRaw(raw, message: message, publicKey: key.publicKey))
            XCTAssertEqual(try ECDSAP256.derToRaw(try ECDSAP256.rawToDER(raw)), raw)
            XCTAssertTrue(ECDSAP256.verify(try ECDSAP256.rawToDER(raw), message: message, publicKey: key.publicKey))
            for i in stride(from: 0, to: 64, by: 5) {
                var bad = raw
                bad[i] ^= 0x20
                XCTAssertFalse(ECDSAP256.verifyRaw(bad, message: message, publicKey: key.publicKey), "byte \(i)")
            }
        }
        let raw = try ECDSAP256.signRaw(message, with: key)
        XCTAssertFalse(ECDSAP256.verifyRaw(Array(raw.dropLast()), message: message, publicKey: key.publicKey))
        XCTAssertFalse(ECDSAP256.verifyRaw(raw + [0], message: message, publicKey: key.publicKey))
        XCTAssertFalse(ECDSAP256.verifyRaw([UInt8](repeating: 0, count: 32) + raw.suffix(32), message: message, publicKey: key.publicKey))
        XCTAssertFalse(ECDSAP256.verifyRaw([UInt8](repeating: 0xff, count: 64), message: message, publicKey: key.publicKey))
        // A DER signature made by ECDSAP256.sign converts and verifies in raw form.
        let der = try ECDSAP256.sign(message, with: key)
        XCTAssertTrue(ECDSAP256.verifyRaw(try ECDSAP256.derToRaw(der), message: message, publicKey: key.publicKey))
    }
}
