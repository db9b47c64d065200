import CPKCS11
import VaultCrypto

/// A P-256 private key kept in the token (non-extractable, usable only for `CKM_ECDH1_DERIVE`), so that a
/// restore key can open KeySeals without its scalar ever being in the host's memory.
///
/// The private key object is a token object labelled `label` (`CKO_PRIVATE_KEY`, `CKK_EC`, `CKA_EC_PARAMS` =
/// the DER OID of prime256v1, private, sensitive, non-extractable, `CKA_DERIVE` true, no sign/decrypt/unwrap);
/// a public key object with the same label holds `CKA_EC_POINT`. Uses the session it is given; like the
/// session, not for concurrent use.
public final class PKCS11ECDH {
    /// DER of OID 1.2.840.10045.3.1.7 (prime256v1 / P-256), the `CKA_EC_PARAMS` value.
    public static let p256Parameters: [UInt8] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]

    public let session: PKCS11Session
    public let label: String
    /// The public key, `04 ‖ X ‖ Y`.
    public let publicKey: P256PublicKey
    let privateKey: CK_OBJECT_HANDLE

    private init(session: PKCS11Session, label: String, privateKey: CK_OBJECT_HANDLE, publicKey: P256PublicKey) {
        self.session = session
        self.label = label
        self.privateKey = privateKey
        self.publicKey = publicKey
    }

    /// The key pair labelled `label` already on the token.
    /// - Throws: `.objectNotFound` / `.duplicateObject` for the private or public key object.
    public convenience init(session: PKCS11Session, label: String) throws {
        let privateKey = try Self.single(session: session, label: label, objectClass: CK_OBJECT_CLASS(CKO_PRIVATE_KEY))
        let publicObject = try Self.single(session: session, label: label, objectClass: CK_OBJECT_CLASS(CKO_PUBLIC_KEY))
        let point = try session.attributeValue(CK_ATTRIBUTE_TYPE(CKA_EC_POINT), of: publicObject)
        self.init(session: session, label: label, privateKey: privateKey, publicKey: try Self.decodePoint(point))
    }

    /// Generates a new key pair inside the token (`C_GenerateKeyPair`, `CKM_EC_KEY_PAIR_GEN`).
    /// - Throws: `.duplicateObject` if a private key with this label exists already.
    public static func generate(session: PKCS11Session, label: String) throws -> PKCS11ECDH {
        try requireAbsent(session: session, label: label)
        let publicTemplate = AttributeTemplate()
            .add(CK_ATTRIBUTE_TYPE(CKA_TOKEN), true)
            .add(CK_ATTRIBUTE_TYPE(CKA_PRIVATE), false)
            .add(CK_ATTRIBUTE_TYPE(CKA_LABEL), string: label)
            .add(CK_ATTRIBUTE_TYPE(CKA_EC_PARAMS), bytes: p256Parameters)
            .add(CK_ATTRIBUTE_TYPE(CKA_VERIFY), false)
            .add(CK_ATTRIBUTE_TYPE(CKA_ENCRYPT), false)
            .add(CK_ATTRIBUTE_TYPE(CKA_WRAP), false)
        let privateTemplate = privateKeyTemplate(label: label)
        let (publicObject, privateKey) = try session.generateKeyPair(
            mechanism: CK_MECHANISM_TYPE(CKM_EC_KEY_PAIR_GEN), publicTemplate: publicTemplate,
            privateTemplate: privateTemplate)
        let point = try session.attributeValue(CK_ATTRIBUTE_TYPE(CKA_EC_POINT), of: publicObject)
        return PKCS11ECDH(session: session, label: label, privateKey: privateKey, publicKey: try decodePoint(point))
    }

    /// Imports an existing P-256 key into the token (`C_CreateObject` with its scalar as `CKA_VALUE`); the
    /// object is then as non-extractable as a generated one. The token never gives the scalar back.
    public static func importKey(_ key: P256PrivateKey, session: PKCS11Session, label: String) throws -> PKCS11ECDH {
        try requireAbsent(session: session, label: label)
        let scalar = try key.rawScalar()
        let privateTemplate = privateKeyTemplate(label: label)
            .add(CK_ATTRIBUTE_TYPE(CKA_CLASS), ulong: CK_ULONG(CKO_PRIVATE_KEY))
            .add(CK_ATTRIBUTE_TYPE(CKA_KEY_TYPE), ulong: CK_ULONG(CKK_EC))
            .add(CK_ATTRIBUTE_TYPE(CKA_EC_PARAMS), bytes: p256Parameters)
            .add(CK_ATTRIBUTE_TYPE(CKA_VALUE), secret: scalar)
        let publicTemplate = AttributeTemplate()
            .add(CK_ATTRIBUTE_TYPE(CKA_CLASS), ulong: CK_ULONG(CKO_PUBLIC_KEY))
            .add(CK_ATTRIBUTE_TYPE(CKA_KEY_TYPE), ulong: CK_ULONG(CKK_EC))
            .add(CK_ATTRIBUTE_TYPE(CKA_TOKEN), true)
            .add(CK_ATTRIBUTE_TYPE(CKA_PRIVATE), false)
            .add(CK_ATTRIBUTE_TYPE(CKA_LABEL), string: label)
            .add(CK_ATTRIBUTE_TYPE(CKA_EC_PARAMS), bytes: p256Parameters)
            .add(CK_ATTRIBUTE_TYPE(CKA_EC_POINT), bytes: encodePoint(key.publicKey.x963Representation))
            .add(CK_ATTRIBUTE_TYPE(CKA_VERIFY), false)
        let privateKey = try session.createObject(privateTemplate)
        do {
            _ = try session.createObject(publicTemplate)
        } catch {
            try? session.destroyObject(privateKey)
            throw error
        }
        return PKCS11ECDH(session: session, label: label, privateKey: privateKey, publicKey: key.publicKey)
    }

    /// ECDH with `peerPublicX963` inside the token: `C_DeriveKey` with `CKM_ECDH1_DERIVE` (`CKD_NULL`, no
    /// shared data) into a 32-byte extractable `CKK_GENERIC_SECRET` session object, whose `CKA_VALUE` (the
    /// x-coordinate of the shared point, as from `P256PrivateKey.sharedSecret`) is read into `SecretBytes`;
    /// the object is then destroyed.
    /// - Throws: `CryptoError.invalidPublicKey` for a peer key that is not an uncompressed point on P-256
    ///   (checked by VaultCrypto before the token sees it).
    public func deriveSharedSecret(peerPublicX963: [UInt8]) throws -> SecretBytes {
        let peer = try P256PublicKey(x963Representation: peerPublicX963)
        var publicData = peer.x963Representation
        let template = AttributeTemplate()
            .add(CK_ATTRIBUTE_TYPE(CKA_CLASS), ulong: CK_ULONG(CKO_SECRET_KEY))
            .add(CK_ATTRIBUTE_TYPE(CKA_KEY_TYPE), ulong: CK_ULONG(CKK_GENERIC_SECRET))
            .add(CK_ATTRIBUTE_TYPE(CKA_VALUE_LEN), ulong: CK_ULONG(P256PrivateKey.scalarSize))
            .add(CK_ATTRIBUTE_TYPE(CKA_TOKEN), false)
            .add(CK_ATTRIBUTE_TYPE(CKA_SENSITIVE), false)
            .add(CK_ATTRIBUTE_TYPE(CKA_EXTRACTABLE), true)
        let derived = try publicData.withUnsafeMutableBufferPointer { point in
            var parameters = CK_ECDH1_DERIVE_PARAMS(
                kdf: ck_ec_kdf_t(CKD_NULL), ulSharedDataLen: 0, pSharedData: nil,
                ulPublicDataLen: CK_ULONG(point.count), pPublicData: point.baseAddress)
            return try withUnsafeMutablePointer(to: &parameters) { pointer in
                var mechanism = CK_MECHANISM(
                    mechanism: CK_MECHANISM_TYPE(CKM_ECDH1_DERIVE), pParameter: pointer,
                    ulParameterLen: CK_ULONG(MemoryLayout<CK_ECDH1_DERIVE_PARAMS>.size))
                return try session.deriveKey(mechanism: &mechanism, baseKey: privateKey, template: template)
            }
        }
        let secret: SecretBytes
        do {
            secret = try session.secretAttributeValue(
                CK_ATTRIBUTE_TYPE(CKA_VALUE), of: derived, length: P256PrivateKey.scalarSize)
        } catch {
            try? session.destroyObject(derived)
            throw error
        }
        try session.destroyObject(derived)
        return secret
    }

    /// Opens a KeySeal (vault-format.md §3.1) sealed to this key: the ECDH runs in the token, HKDF and
    /// AES-GCM in VaultCrypto. Same errors as `KeySeal.open`.
    public func openKeySeal(_ sealed: [UInt8], info: [UInt8], aad: [UInt8]) throws -> SecretBytes {
        try KeySeal.open(sealed, recipient: publicKey, info: info, aad: aad) { ephemeral in
            try deriveSharedSecret(peerPublicX963: ephemeral.x963Representation)
        }
    }

    /// Destroys the private and public key objects labelled `label` (idempotent).
    public static func destroy(session: PKCS11Session, label: String) throws {
        for objectClass in [CK_OBJECT_CLASS(CKO_PRIVATE_KEY), CK_OBJECT_CLASS(CKO_PUBLIC_KEY)] {
            for object in try session.findObjects(searchTemplate(label: label, objectClass: objectClass)) {
                try session.destroyObject(object)
            }
        }
    }

    // MARK: Internals

    private static func privateKeyTemplate(label: String) -> AttributeTemplate {
        AttributeTemplate()
            .add(CK_ATTRIBUTE_TYPE(CKA_TOKEN), true)
            .add(CK_ATTRIBUTE_TYPE(CKA_PRIVATE), true)
            .add(CK_ATTRIBUTE_TYPE(CKA_SENSITIVE), true)
            .add(CK_ATTRIBUTE_TYPE(CKA_EXTRACTABLE), false)
            .add(CK_ATTRIBUTE_TYPE(CKA_DERIVE), true)
            .add(CK_ATTRIBUTE_TYPE(CKA_SIGN), false)
            .add(CK_ATTRIBUTE_TYPE(CKA_DECRYPT), false)
            .add(CK_ATTRIBUTE_TYPE(CKA_UNWRAP), false)
            .add(CK_ATTRIBUTE_TYPE(CKA_LABEL), string: label)
    }

    private static func searchTemplate(label: String, objectClass: CK_OBJECT_CLASS) -> AttributeTemplate {
        AttributeTemplate()
            .add(CK_ATTRIBUTE_TYPE(CKA_CLASS), ulong: CK_ULONG(objectClass))
            .add(CK_ATTRIBUTE_TYPE(CKA_KEY_TYPE), ulong: CK_ULONG(CKK_EC))
            .add(CK_ATTRIBUTE_TYPE(CKA_TOKEN), true)
            .add(CK_ATTRIBUTE_TYPE(CKA_LABEL), string: label)
    }

    private static func single(session: PKCS11Session, label: String, objectClass: CK_OBJECT_CLASS) throws
        -> CK_OBJECT_HANDLE
    {
        let objects = try session.findObjects(searchTemplate(label: label, objectClass: objectClass))
        guard let object = objects.first else { throw PKCS11Error.objectNotFound(label: label) }
        guard objects.count == 1 else { throw PKCS11Error.duplicateObject(label: label, count: objects.count) }
        return object
    }

    private static func requireAbsent(session: PKCS11Session, label: String) throws {
        let existing = try session.findObjects(
            searchTemplate(label: label, objectClass: CK_OBJECT_CLASS(CKO_PRIVATE_KEY)))
        guard existing.isEmpty else { throw PKCS11Error.duplicateObject(label: label, count: existing.count + 1) }
    }

    /// `CKA_EC_POINT` is the DER OCTET STRING of the X9.63 point (PKCS#11 v2.40); some tokens return it bare.
    static func decodePoint(_ value: [UInt8]) throws -> P256PublicKey {
        if value.count == P256PublicKey.x963Size + 2, value[0] == 0x04, value[1] == UInt8(P256PublicKey.x963Size) {
            return try P256PublicKey(x963Representation: Array(value[2...]))
        }
        guard value.count == P256PublicKey.x963Size else {
            throw PKCS11Error.unexpectedResponse(
                function: "C_GetAttributeValue", detail: "CKA_EC_POINT of \(value.count) bytes is not a P-256 point")
        }
        return try P256PublicKey(x963Representation: value)
    }

    static func encodePoint(_ x963: [UInt8]) -> [UInt8] { [0x04, UInt8(x963.count)] + x963 }
}
