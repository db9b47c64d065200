import VaultCrypto

/// The fixed-layout bundle header, format version 1 (vault-format.md §2.1).
///
/// ```
/// off  len  field
///   0    8  magic "SVBUNDL\n"
///   8    2  format version (u16 BE) = 1
///  10    2  algorithm id   (u16 BE) = 1: Cobblestone-256 over zstd over pax tar
///  12    2  header length  (u16 BE) = 92 + n
///  14    1  n = user id length (1...128)
///  15    1  flags = 0 (reserved; readers reject non-zero)
///  16   16  vault id
///  32   16  bundle id
///  48    8  created at (i64 BE, Unix seconds)
///  56    4  expiry day (u32 BE, days since 1970-01-01)
///  60   16  user key id (all zero: sealed with a bare data key)
///  76   16  day key id  (all zero: sealed with a bare data key)
///  92    n  user id (ASCII, UserID syntax)
/// ```
/// The exact header bytes are the Cobblestone-256 context, so editing any of them fails the key commitment.
public struct BundleHeader: Equatable, Sendable {
    public static let magic: [UInt8] = Array("SVBUNDL\n".utf8)
    public static let currentVersion: UInt16 = 1
    public static let algorithmCobblestoneZstdPax: UInt16 = 1
    /// Bytes before the user id.
    public static let fixedLength = 92
    /// Bytes a reader needs to learn the full header length.
    public static let prefixLength = 16
    public static let maxLength = fixedLength + UserID.maxLength
    public static let idLength = 16

    public var vaultId: [UInt8]
    public var bundleId: [UInt8]
    public var createdAt: Int64
    public var expiryDay: CivilDay
    public var userKeyId: [UInt8]
    public var dayKeyId: [UInt8]
    public var userId: UserID

    public init(vaultId: [UInt8], bundleId: [UInt8], createdAt: Int64, expiryDay: CivilDay,
                userKeyId: [UInt8] = zeroId, dayKeyId: [UInt8] = zeroId, userId: UserID) {
        precondition(vaultId.count == Self.idLength && bundleId.count == Self.idLength
            && userKeyId.count == Self.idLength && dayKeyId.count == Self.idLength)
        self.vaultId = vaultId
        self.bundleId = bundleId
        self.createdAt = createdAt
        self.expiryDay = expiryDay
        self.userKeyId = userKeyId
        self.dayKeyId = dayKeyId
        self.userId = userId
    }

    public static let zeroId = [UInt8](repeating: 0, count: idLength)

    public var length: Int { Self.fixedLength + userId.rawValue.utf8.count }

    /// The exact bytes written to the file (and used as the Cobblestone context).
    public func encoded() -> [UInt8] {
        var out = Self.magic
        out.reserveCapacity(length)
        out.appendBigEndian(Self.currentVersion)
        out.appendBigEndian(Self.algorithmCobblestoneZstdPax)
        out.appendBigEndian(UInt16(length))
        out.append(UInt8(userId.rawValue.utf8.count))
        out.append(0)
        out += vaultId
        out += bundleId
        out.appendBigEndian(UInt64(bitPattern: createdAt))
        out.appendBigEndian(UInt32(truncatingIfNeeded: expiryDay.daysSinceEpoch))
        out += userKeyId
        out += dayKeyId
        out += Array(userId.rawValue.utf8)
        return out
    }

    /// Validates the first `prefixLength` bytes and returns the total header length.
    /// Check order: magic, version, algorithm, length fields — so a newer file reports its version, not a layout error.
    public static func headerLength(fromPrefix p: [UInt8], path: String) throws -> Int {
        guard p.count >= prefixLength, Array(p[0..<8]) == magic else { throw VaultError.notABundle(path: path) }
        let version = p.readBigEndianUInt16(at: 8)
        guard version == currentVersion else { throw VaultError.unsupportedVersion(path: path, version: Int(version)) }
        let algorithm = p.readBigEndianUInt16(at: 10)
        guard algorithm == algorithmCobblestoneZstdPax else {
            throw VaultError.unsupportedAlgorithm(path: path, algorithm: Int(algorithm))
        }
        let length = Int(p.readBigEndianUInt16(at: 12))
        let n = Int(p[14])
        guard (1...UserID.maxLength).contains(n) else {
            throw VaultError.malformedHeader(path: path, reason: "user id length \(n) is outside 1...\(UserID.maxLength)")
        }
        guard length == fixedLength + n else {
            throw VaultError.malformedHeader(path: path, reason: "header length \(length) does not match user id length \(n)")
        }
        guard p[15] == 0 else { throw VaultError.malformedHeader(path: path, reason: "reserved flags byte is \(p[15]), not 0") }
        return length
    }

    /// Parses a complete header strictly; `bytes` must be exactly the header.
    public static func decode(_ bytes: [UInt8], path: String) throws -> BundleHeader {
        let length = try headerLength(fromPrefix: bytes, path: path)
        guard bytes.count == length else {
            throw VaultError.malformedHeader(path: path, reason: "header is \(bytes.count) bytes, expected \(length)")
        }
        let createdAt = Int64(bitPattern: bytes.readBigEndianUInt64(at: 48))
        let expiry = CivilDay(daysSinceEpoch: Int64(bytes.readBigEndianUInt32(at: 56)))
        let userBytes = Array(bytes[fixedLength..<length])
        guard let text = String(validating: userBytes, as: UTF8.self), let userId = UserID(text) else {
            throw VaultError.malformedHeader(path: path, reason: "user id is not of the form [A-Za-z0-9._-]{1,128}")
        }
        return BundleHeader(
            vaultId: Array(bytes[16..<32]), bundleId: Array(bytes[32..<48]), createdAt: createdAt, expiryDay: expiry,
            userKeyId: Array(bytes[60..<76]), dayKeyId: Array(bytes[76..<92]), userId: userId)
    }

    public var bundleIdHex: String { Hex.encode(bundleId) }
    public var vaultIdHex: String { Hex.encode(vaultId) }
}

extension Array where Element == UInt8 {
    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        var v = value.bigEndian
        Swift.withUnsafeBytes(of: &v) { append(contentsOf: $0) }
    }

    func readBigEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var v: T = 0
        for i in 0..<MemoryLayout<T>.size { v = v << 8 | T(self[offset + i]) }
        return v
    }

    func readBigEndianUInt16(at o: Int) -> UInt16 { readBigEndian(UInt16.self, at: o) }
    func readBigEndianUInt32(at o: Int) -> UInt32 { readBigEndian(UInt32.self, at: o) }
    func readBigEndianUInt64(at o: Int) -> UInt64 { readBigEndian(UInt64.self, at: o) }
}

extension BundleHeader {
    /// A fresh random 16-byte bundle id.
    public static func randomId() throws -> [UInt8] { try SecureRandom.bytes(count: idLength) }
}
