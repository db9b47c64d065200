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
}
