import VaultCrypto

/// Header of a keystore snapshot file, format version 1 (vault-format.md §5.2).
///
/// ```
/// off  len  field
///   0    8  magic "SVKSNAP\n"
///   8    2  format version (u16 BE) = 1
///  10    2  algorithm id   (u16 BE) = 1: K sealed by KeySeal to the epoch key; Cobblestone-256(K) over the SQLite file
///  12    2  header length  (u16 BE) = 177
///  14    2  flags = 0
///  16   16  vault id
///  32    8  taken at (i64 BE, Unix seconds)
///  40    4  epoch start day (u32 BE, days since 1970-01-01)
///  44   16  epoch key id
///  60    4  backup window in days (u32 BE) at the time of the snapshot
///  64  113  KeySeal(epoch public, K, info = "keystore-snapshot", aad = bytes 0..<64)
/// ```
/// followed by a Cobblestone-256 message with input key K and context = the 177 header bytes.
public struct KeystoreSnapshotHeader: Equatable, Sendable {
    public static let magic: [UInt8] = Array("SVKSNAP\n".utf8)
    public static let length = 177
    public static let sealedKeyLength = 113

    public var vaultId: [UInt8]
    public var takenAt: Int64
    public var epochStart: CivilDay
    public var epochKeyId: [UInt8]
    public var backupDays: Int
    public var sealedKey: [UInt8]

    var fixedPart: [UInt8] {
        var out = Self.magic
        out.appendBigEndian(UInt16(1))
        out.appendBigEndian(UInt16(1))
        out.appendBigEndian(UInt16(Self.length))
        out.appendBigEndian(UInt16(0))
        out += vaultId
        out.appendBigEndian(UInt64(bitPattern: takenAt))
        out.appendBigEndian(UInt32(truncatingIfNeeded: epochStart.daysSinceEpoch))
        out += epochKeyId
        out.appendBigEndian(UInt32(backupDays))
        return out
    }

    public func encoded() -> [UInt8] { fixedPart + sealedKey }

    static let sealInfo = Array("keystore-snapshot".utf8)

    /// Builds a header with a fresh snapshot key K sealed to the epoch public key; returns K too.
    static func make(vaultId: [UInt8], takenAt: Int64, epochStart: CivilDay, epochKey: StoredKey, backupDays: Int) throws
        -> (KeystoreSnapshotHeader, SecretBytes) {
        var h = KeystoreSnapshotHeader(vaultId: vaultId, takenAt: takenAt, epochStart: epochStart, epochKeyId: epochKey.keyId,
                                       backupDays: backupDays, sealedKey: [])
        let k = try SecretBytes.random(count: 32)
        h.sealedKey = try KeySeal.seal(k, to: epochKey.publicKey, info: sealInfo, aad: h.fixedPart)
        return (h, k)
    }

    func openKey(with epochPrivate: P256PrivateKey, path: String) throws -> SecretBytes {
        do { return try KeySeal.open(sealedKey, with: epochPrivate, info: Self.sealInfo, aad: fixedPart) } catch {
            throw VaultError.corruptBundle(path: path, reason: "the snapshot key does not open (modified header)")
        }
    }

    public static func decode(_ b: [UInt8], path: String) throws -> KeystoreSnapshotHeader {
        guard b.count >= 8, Array(b[0..<8]) == magic else {
            throw VaultError.malformedHeader(path: path, reason: "not a ShredVault keystore snapshot (bad magic)")
        }
        guard b.count >= 16 else { throw VaultError.malformedHeader(path: path, reason: "file ends inside the header") }
        let version = b.readBigEndianUInt16(at: 8)
        guard version == 1 else { throw VaultError.unsupportedVersion(path: path, version: Int(version)) }
        let algorithm = b.readBigEndianUInt16(at: 10)
        guard algorithm == 1 else { throw VaultError.unsupportedAlgorithm(path: path, algorithm: Int(algorithm)) }
        guard Int(b.readBigEndianUInt16(at: 12)) == length, b.readBigEndianUInt16(at: 14) == 0 else {
            throw VaultError.malformedHeader(path: path, reason: "header length or flags are not those of version 1")
        }
        guard b.count == length else { throw VaultError.malformedHeader(path: path, reason: "file ends inside the header") }
        return KeystoreSnapshotHeader(
            vaultId: Array(b[16..<32]), takenAt: Int64(bitPattern: b.readBigEndianUInt64(at: 32)),
            epochStart: CivilDay(daysSinceEpoch: Int64(b.readBigEndianUInt32(at: 40))), epochKeyId: Array(b[44..<60]),
            backupDays: Int(b.readBigEndianUInt32(at: 60)), sealedKey: Array(b[64..<177]))
    }
}
