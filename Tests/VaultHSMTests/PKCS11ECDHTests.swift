import CPKCS11
import Foundation
import XCTest

@testable import VaultCrypto
@testable import VaultHSM

/// ECDH with a P-256 key inside SoftHSM2, checked against OpenSSL's ECDH in VaultCrypto.
final class PKCS11ECDHTests: SoftHSMTestCase {
    private func makeSession() throws -> PKCS11Session {
        try PKCS11Session(
            module: PKCS11Module(path: SoftHSMFixture.modulePath), tokenLabel: token.label, pin: token.pin)
    }

    /// Secret-key objects visible to the session (token and session objects): derived secrets must not stay.
    private func secretKeyObjects(_ session: PKCS11Session) throws -> Int {
        try session.findObjects(
            AttributeTemplate().add(CK_ATTRIBUTE_TYPE(CKA_CLASS), ulong: CK_ULONG(CKO_SECRET_KEY))
        ).count
    }

    func testImportedKeyDerivesTheSameSecretAsOpenSSL() throws {
        let session = try makeSession()
        let local = try P256PrivateKey.generate()
        let inToken = try PKCS11ECDH.importKey(local, session: session, label: "restore-key")
        XCTAssertEqual(inToken.publicKey, local.publicKey)
        for _ in 0..<3 {
            let peer = try P256PrivateKey.generate()
            let derived = try inToken.deriveSharedSecret(peerPublicX963: peer.publicKey.x963Representation)
            XCTAssertEqual(derived.count, 32)
            XCTAssertEqual(derived, try local.sharedSecret(with: peer.publicKey))
            XCTAssertEqual(derived, try peer.sharedSecret(with: local.publicKey))
        }
        XCTAssertEqual(try secretKeyObjects(session), 0, "the derived secret objects were destroyed")

        // Found again by label, from a new session, and still the same key.
        let peer = try P256PrivateKey.generate()
        try session.close()
        let reopened = try PKCS11ECDH(session: makeSession(), label: "restore-key")
        XCTAssertEqual(reopened.publicKey, local.publicKey)
        XCTAssertEqual(
            try reopened.deriveSharedSecret(peerPublicX963: peer.publicKey.x963Representation),
            try peer.sharedSecret(with: local.publicKey))
    }

    func testGeneratedKeyIsNonExtractableAndAgreesWithOpenSSL() throws {
        let session = try makeSession()
        let inToken = try PKCS11ECDH.generate(session: session, label: "restore-key")
        let peer = try P256PrivateKey.generate()
        XCTAssertEqual(
            try inToken.deriveSharedSecret(peerPublicX963: peer.publicKey.x963Representation),
            try peer.sharedSecret(with: inToken.publicKey))

        let key = inToken.privateKey
        XCTAssertThrowsError(try session.attributeValue(CK_ATTRIBUTE_TYPE(CKA_VALUE), of: key)) {
            XCTAssertEqual(
                $0 as? PKCS11Error, .call(function: "C_GetAttributeValue", code: UInt(CKR_ATTRIBUTE_SENSITIVE)))
        }
        XCTAssertFalse(try session.boolAttribute(CK_ATTRIBUTE_TYPE(CKA_EXTRACTABLE), of: key))
        XCTAssertTrue(try session.boolAttribute(CK_ATTRIBUTE_TYPE(CKA_SENSITIVE), of: key))
        XCTAssertTrue(try session.boolAttribute(CK_ATTRIBUTE_TYPE(CKA_DERIVE), of: key))
        XCTAssertFalse(try session.boolAttribute(CK_ATTRIBUTE_TYPE(CKA_SIGN), of: key))
        XCTAssertEqual(
            try session.attributeValue(CK_ATTRIBUTE_TYPE(CKA_EC_PARAMS), of: key), PKCS11ECDH.p256Parameters)

        XCTAssertThrowsError(try PKCS11ECDH.generate(session: session, label: "restore-key")) {
            guard case .duplicateObject = $0 as? PKCS11Error else { return XCTFail("\($0)") }
        }
        try PKCS11ECDH.destroy(session: session, label: "restore-key")
        XCTAssertThrowsError(try PKCS11ECDH(session: session, label: "restore-key")) {
            XCTAssertEqual($0 as? PKCS11Error, .objectNotFound(label: "restore-key"))
        }
        try PKCS11ECDH.destroy(session: session, label: "restore-key")  // idempotent
    }

    func testImportedScalarCannotBeReadBack() throws {
        let session = try makeSession()
        let inToken = try PKCS11ECDH.importKey(P256PrivateKey.generate(), session: session, label: "imported")
        XCTAssertThrowsError(try session.attributeValue(CK_ATTRIBUTE_TYPE(CKA_VALUE), of: inToken.privateKey)) {
            XCTAssertEqual(
                $0 as? PKCS11Error, .call(function: "C_GetAttributeValue", code: UInt(CKR_ATTRIBUTE_SENSITIVE)))
        }
        XCTAssertFalse(try session.boolAttribute(CK_ATTRIBUTE_TYPE(CKA_EXTRACTABLE), of: inToken.privateKey))
    }

    func testInvalidPeerKeysAreRejected() throws {
        let session = try makeSession()
        let inToken = try PKCS11ECDH.generate(session: session, label: "restore-key")
        var offCurve = try P256PrivateKey.generate().publicKey.x963Representation
        offCurve[64] ^= 0x01
        let compressed = [0x02] + Array(inToken.publicKey.x963Representation[1..<33])
        for bad in [offCurve, compressed, [UInt8](repeating: 0, count: 65), []] {
            XCTAssertThrowsError(try inToken.deriveSharedSecret(peerPublicX963: bad)) {
                guard case .invalidPublicKey = $0 as? CryptoError else { return XCTFail("\($0)") }
            }
        }
        XCTAssertEqual(try secretKeyObjects(session), 0)
    }
}

/// KeySeal opened with the restore key inside the token.
final class PKCS11KeySealTests: SoftHSMTestCase {
    // The KeySeal known answer of VaultCryptoTests.KeySealTests (computed with Python `cryptography`).
    private let recipientScalar = "6d45ca7ebd1cf940c505619fdeb3dba2691f638ef2781e4a3a78dd984b852b4d"
    private let expectedSealed =
        "04041adce2b34b657ad68ff165167385fa550582afe72c55b48a80c99260294341"
        + "898fc44e08e5c024bd45d735918f8611ca41dd54ed9a62059d56526cba3dd278"
        + "f2c73421740ab6e11a62099e46e1a02f1a3e4ff5e694eb8d6a914394361e72d3"
        + "01a582251229d58eb886a184a59c7c67"
    private let info = Array("bundle-dek".utf8)
    private let aad = Array("user=u0100037;bundle=b1".utf8)

    private func makeSession() throws -> PKCS11Session {
        try PKCS11Session(
            module: PKCS11Module(path: SoftHSMFixture.modulePath), tokenLabel: token.label, pin: token.pin)
    }

    func testKnownAnswerOpensInTheToken() throws {
        let recipient = try P256PrivateKey(rawScalar: SecretBytes(hex: recipientScalar))
        let inToken = try PKCS11ECDH.importKey(recipient, session: makeSession(), label: "restore-key")
        let opened = try inToken.openKeySeal(Self.decodeHex(expectedSealed), info: info, aad: aad)
        XCTAssertEqual(opened, SecretBytes(copying: Array(0..<32)))
    }

    func testSealToTokenKeyAndOpenInTheToken() throws {
        let inToken = try PKCS11ECDH.generate(session: makeSession(), label: "restore-key")
        for count in [0, 32, 65] {
            let secret = try SecretBytes.random(count: count)
            let sealed = try KeySeal.seal(secret, to: inToken.publicKey, info: info, aad: aad)
            XCTAssertEqual(try inToken.openKeySeal(sealed, info: info, aad: aad), secret)
            XCTAssertThrowsError(try inToken.openKeySeal(sealed, info: info, aad: aad + [0])) {
                XCTAssertEqual($0 as? CryptoError, .authenticationFailed)
            }
            var tampered = sealed
            tampered[tampered.count - 1] ^= 1
            XCTAssertThrowsError(try inToken.openKeySeal(tampered, info: info, aad: aad)) {
                XCTAssertEqual($0 as? CryptoError, .authenticationFailed)
            }
        }
        // Sealed to another key: the token's ECDH gives another secret, so the tag fails.
        let other = try P256PrivateKey.generate()
        let sealed = try KeySeal.seal(SecretBytes(count: 32), to: other.publicKey, info: info, aad: aad)
        XCTAssertThrowsError(try inToken.openKeySeal(sealed, info: info, aad: aad)) {
            XCTAssertEqual($0 as? CryptoError, .authenticationFailed)
        }
    }

    private static func decodeHex(_ text: String) throws -> [UInt8] {
        try SecretBytes(hex: text).withUnsafeBytes { Array($0) }
    }
}
