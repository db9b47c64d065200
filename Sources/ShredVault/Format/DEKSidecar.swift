/// The sealed-DEK sidecar `<bundle-id>.dek` beside each bundle (vault-format.md §3.5): the catalog's current
/// outer-sealed DEK, so `reindex` can rebuild a working catalog from the bundle directory alone.
///
/// ```
/// off len field
///   0   8 magic "SVDEK1\n\0"
///   8   1 outer role: 1 = day, 2 = hold
///   9   7 reserved, zero
///  16  16 outer key id
///  32 194 outer sealed DEK (vault-format.md §3.4)
/// ```
/// It holds no usable key material: opening it needs the day/hold and user private keys.
public struct DEKSidecar: Equatable, Sendable {
    public static let magic: [UInt8] = Array("SVDEK1\n".utf8) + [0]
    public static let sealedLength = 194
    public static let length = 32 + sealedLength

    public var outerRole: KeyRole
    public var outerKeyId: [UInt8]
    public var sealedDEK: [UInt8]

    public func encoded() -> [UInt8] {
        Self.magic + [outerRole == .hold ? 2 : 1] + [UInt8](repeating: 0, count: 7) + outerKeyId + sealedDEK
    }

    public static func decode(_ b: [UInt8], path: String) throws -> DEKSidecar {
        guard b.count == length, Array(b[0..<8]) == magic, b[9..<16].allSatisfy({ $0 == 0 }), b[8] == 1 || b[8] == 2 else {
            throw VaultError.malformedHeader(path: path, reason: "not a version 1 DEK sidecar")
        }
        return DEKSidecar(outerRole: b[8] == 2 ? .hold : .day, outerKeyId: Array(b[16..<32]), sealedDEK: Array(b[32...]))
    }

    /// `bundles/…/<id>.svb` → `bundles/…/<id>.dek`.
    public static func location(forBundle location: String) -> String {
        String(location.dropLast(4)) + ".dek"
    }
}
