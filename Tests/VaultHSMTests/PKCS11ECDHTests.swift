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
