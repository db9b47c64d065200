/// Incremental SHA-256 (FIPS 180-4). After `finalize()` the hasher starts over and can be reused.
public final class SHA256 {
    /// Digest length in bytes.
    public static let byteCount = 32

    private let context: DigestContext

    /// Starts a new SHA-256 computation.
    public init() throws { context = try DigestContext(.sha256) }

    /// Feeds `bytes` into the hash.
    public func update(_ bytes: UnsafeRawBufferPointer) throws { try context.update(bytes) }

    /// Feeds `bytes` into the hash.
    public func update(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try context.update($0) } }

    /// Returns the 32-byte digest of everything fed so far and resets the hasher.
    public func finalize() throws -> [UInt8] { try context.finalize() }

    /// One-shot SHA-256 of `bytes`.
    public static func hash(_ bytes: [UInt8]) throws -> [UInt8] {
        let hasher = try SHA256()
        try hasher.update(bytes)
        return try hasher.finalize()
    }
}
