import VaultCrypto

/// Key roles in the keystore (vault-format.md §3.3).
public enum KeyRole: String, Sendable, Codable, CaseIterable {
    case day, user, hold, epoch
}

/// Key ids, private-key sealing and the two-layer sealed DEK (vault-format.md §3.1, §3.3, §3.4).
public enum KeyHierarchy {
    /// `SHA-256("shredvault.org/key-id@v1" ‖ 0x00 ‖ pub)[0:16]`.
    public static func keyId(_ key: P256PublicKey) throws -> [UInt8] {
        Array(try SHA256.hash(Array("shredvault.org/key-id@v1".utf8) + [0] + key.x963Representation).prefix(16))
    }

    static func keystoreAAD(vaultId: [UInt8], role: KeyRole, subject: String, keyId: [UInt8]) -> [UInt8] {
        Array("shredvault.org/keystore@v1".utf8) + vaultId + Array(role.rawValue.utf8) + [0] + Array(subject.utf8) + [0] + keyId
    }

    /// Seals a private key to the master public key for storage in the keystore.
    public static func sealPrivateKey(_ key: P256PrivateKey, master: P256PublicKey, vaultId: [UInt8], role: KeyRole,
                                      subject: String, keyId: [UInt8]) throws -> [UInt8] {
        try KeySeal.seal(try key.rawScalar(), to: master, info: Array("private-key".utf8),
                         aad: keystoreAAD(vaultId: vaultId, role: role, subject: subject, keyId: keyId))
    }

    /// Opens a sealed private key with the restore key.
    public static func openPrivateKey(_ sealed: [UInt8], restoreKey: P256PrivateKey, vaultId: [UInt8], role: KeyRole,
                                      subject: String, keyId: [UInt8]) throws -> P256PrivateKey {
        let scalar = try KeySeal.open(sealed, with: restoreKey, info: Array("private-key".utf8),
                                      aad: keystoreAAD(vaultId: vaultId, role: role, subject: subject, keyId: keyId))
        return try P256PrivateKey(rawScalar: scalar)
    }

    /// What a sealed DEK is bound to (`bind` of vault-format.md §3.4).
    public struct Binding: Sendable {
        public var vaultId: [UInt8]
        public var bundleId: [UInt8]
        public var expiryDay: CivilDay
        public var userKeyId: [UInt8]
        public var userId: UserID

        public init(header: BundleHeader) {
            vaultId = header.vaultId
            bundleId = header.bundleId
            expiryDay = header.expiryDay
            userKeyId = header.userKeyId
            userId = header.userId
        }

        var bytes: [UInt8] {
            var out = Array("shredvault.org/dek@v1".utf8) + vaultId + bundleId
            out.appendBigEndian(UInt32(truncatingIfNeeded: expiryDay.daysSinceEpoch))
            out += userKeyId
            out.append(UInt8(userId.rawValue.utf8.count))
            out += Array(userId.rawValue.utf8)
            return out
        }

        func outerAAD(role: KeyRole, outerKeyId: [UInt8]) -> [UInt8] {
            bytes + Array(role.rawValue.utf8) + [0] + outerKeyId
        }

        /// Runs a KeySeal.open of this bundle's sealed DEK: with the right (stored) private key, a seal that does not
        /// open was modified or made for another bundle, user or key: forged or corrupt input (exit 65), never an
        /// internal error.
        func refusingForgery<T>(_ layer: String, _ open: () throws -> T) throws -> T {
            do { return try open() } catch is CryptoError {
                throw VaultError.notGenuine(subject: "the sealed data key of bundle \(Hex.encode(bundleId)) of \(userId)",
                                            reason: "its \(layer) layer does not open with the keystore's key (modified, or sealed for another bundle or key)")
            }
        }
    }

    /// `inner = KeySeal(user, DEK)`; `outer = KeySeal(day or hold, inner)`. Only `outer` is stored.
    public static func sealDataKey(_ dek: SecretBytes, binding: Binding, userKey: P256PublicKey,
                                   outerRole: KeyRole, outerKey: P256PublicKey) throws -> [UInt8] {
        let inner = try KeySeal.seal(dek, to: userKey, info: Array("dek-inner".utf8), aad: binding.bytes)
        return try sealOuter(SecretBytes(copying: inner), binding: binding, role: outerRole, outerKey: outerKey)
    }

    /// `sealDataKey`, also giving SHA-256 of `inner`, which the bundle signature binds (vault-format.md §3.10).
    public static func sealDataKeyLayers(_ dek: SecretBytes, binding: Binding, userKey: P256PublicKey,
                                         outerRole: KeyRole, outerKey: P256PublicKey) throws -> (outer: [UInt8], innerSHA256: [UInt8]) {
        let inner = try KeySeal.seal(dek, to: userKey, info: Array("dek-inner".utf8), aad: binding.bytes)
        let outer = try sealOuter(SecretBytes(copying: inner), binding: binding, role: outerRole, outerKey: outerKey)
        return (outer, try SHA256.hash(inner))
    }

    /// Opens the inner layer (from `openOuter`), giving the DEK.
    public static func openInner(_ inner: SecretBytes, binding: Binding, userKey: P256PrivateKey) throws -> SecretBytes {
        let innerBytes: [UInt8] = inner.withUnsafeBytes { Array($0) }
        return try binding.refusingForgery("inner") {
            try KeySeal.open(innerBytes, with: userKey, info: Array("dek-inner".utf8), aad: binding.bytes)
        }
    }

    static func sealOuter(_ inner: SecretBytes, binding: Binding, role: KeyRole, outerKey: P256PublicKey) throws -> [UInt8] {
        try KeySeal.seal(inner, to: outerKey, info: Array("dek-outer".utf8),
                         aad: binding.outerAAD(role: role, outerKeyId: try keyId(outerKey)))
    }

    /// Opens the outer layer, giving the inner sealed DEK (used to reseal under a hold or back to a day key).
    public static func openOuter(_ outer: [UInt8], binding: Binding, role: KeyRole, outerKey: P256PrivateKey) throws -> SecretBytes {
        let aad = binding.outerAAD(role: role, outerKeyId: try keyId(outerKey.publicKey))
        return try binding.refusingForgery("outer") { try KeySeal.open(outer, with: outerKey, info: Array("dek-outer".utf8), aad: aad) }
    }

    /// Reseals the outer layer to another key; the bundle file is not touched.
    /// - Parameter checkInner: called with the inner sealed DEK before it is resealed (the provenance check, §3.10).
    public static func resealOuter(_ outer: [UInt8], binding: Binding, from: (role: KeyRole, key: P256PrivateKey),
                                   to: (role: KeyRole, key: P256PublicKey), checkInner: (SecretBytes) throws -> Void = { _ in }) throws -> [UInt8] {
        let inner = try openOuter(outer, binding: binding, role: from.role, outerKey: from.key)
        try checkInner(inner)
        return try sealOuter(inner, binding: binding, role: to.role, outerKey: to.key)
    }

    /// Opens both layers, giving the DEK.
    public static func openDataKey(_ outer: [UInt8], binding: Binding, outerRole: KeyRole, outerKey: P256PrivateKey,
                                   userKey: P256PrivateKey) throws -> SecretBytes {
        try openInner(try openOuter(outer, binding: binding, role: outerRole, outerKey: outerKey), binding: binding, userKey: userKey)
    }
}
