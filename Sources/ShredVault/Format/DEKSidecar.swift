/// The sealed-DEK sidecar `<bundle-id>.dek` beside each bundle (vault-format.md §3.5, §3.10): the catalog's current
/// outer-sealed DEK, so `reindex` can rebuild a working catalog from the bundle directory alone, and (version 2) the
/// bundle's provenance: the hash of its inner sealed DEK and its bundle and seal signatures.
///
/// ```
/// off len field
///   0   8 magic "SVDEK1\n\0" (version 1) or "SVDEK2\n\0" (version 2)
///   8   1 outer role: 1 = day, 2 = hold
///   9   7 reserved, zero
///  16  16 outer key id
///  32 194 outer sealed DEK (vault-format.md §3.4)
/// version 2 only:
/// 226  32 SHA-256 of the inner sealed DEK
/// 258  80 bundle signature
/// 338  80 seal signature
/// ```
/// It holds no usable key material: opening it needs the day/hold and user private keys.
public struct DEKSidecar: Equatable, Sendable {
    public static let magic: [UInt8] = Array("SVDEK1\n".utf8) + [0]
    public static let magicV2: [UInt8] = Array("SVDEK2\n".utf8) + [0]
    public static let sealedLength = 194
    public static let length = 32 + sealedLength
    public static let lengthV2 = length + 32 + 2 * VaultSignature.length

    /// What version 2 adds (§3.10).
    public struct Provenance: Equatable, Sendable {
        public var innerSHA256: [UInt8]
        public var bundleSignature: VaultSignature
        public var sealSignature: VaultSignature
    }

    public var outerRole: KeyRole
    public var outerKeyId: [UInt8]
    public var sealedDEK: [UInt8]
    /// Nil in a version 1 sidecar (written before the vault's trust record).
    public var provenance: Provenance?

    public init(outerRole: KeyRole, outerKeyId: [UInt8], sealedDEK: [UInt8], provenance: Provenance? = nil) {
        self.outerRole = outerRole
        self.outerKeyId = outerKeyId
        self.sealedDEK = sealedDEK
        self.provenance = provenance
    }

    public func encoded() -> [UInt8] {
        let body = [outerRole == .hold ? 2 : 1] + [UInt8](repeating: 0, count: 7) + outerKeyId + sealedDEK
        guard let provenance else { return Self.magic + body }
        return Self.magicV2 + body + provenance.innerSHA256 + provenance.bundleSignature.encoded + provenance.sealSignature.encoded
    }

    public static func decode(_ b: [UInt8], path: String) throws -> DEKSidecar {
        let v2 = b.count == lengthV2 && Array(b.prefix(8)) == magicV2
        guard v2 || (b.count == length && Array(b.prefix(8)) == magic), b[9..<16].allSatisfy({ $0 == 0 }), b[8] == 1 || b[8] == 2 else {
            throw VaultError.malformedHeader(path: path, reason: "not a version 1 or 2 DEK sidecar")
        }
        var sidecar = DEKSidecar(outerRole: b[8] == 2 ? .hold : .day, outerKeyId: Array(b[16..<32]), sealedDEK: Array(b[32..<length]))
        if v2 {
            let s = length + 32
            sidecar.provenance = Provenance(innerSHA256: Array(b[length..<s]),
                                            bundleSignature: VaultSignature(Array(b[s..<(s + VaultSignature.length)]))!,
                                            sealSignature: VaultSignature(Array(b[(s + VaultSignature.length)...]))!)
        }
        return sidecar
    }

    /// `bundles/…/<id>.svb` → `bundles/…/<id>.dek`.
    public static func location(forBundle location: String) -> String {
        String(location.dropLast(4)) + ".dek"
    }
}
