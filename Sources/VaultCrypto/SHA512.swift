/// Incremental SHA-512 (FIPS 180-4). After `finalize()` the hasher starts over and can be reused.
public final class SHA512 {
    /// Digest length in bytes.
    public static let byteCount = 64

    private let context: DigestContext

    /// Starts a new SHA-512 computation.
    public init() throws { context = try DigestContext(.sha512) }

    /// Feeds `bytes` into the hash.
    public func update(_ bytes: UnsafeRawBufferPointer) throws { try context.update(bytes) }

    /// Feeds `bytes` into the hash.
    public func update(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try context.update($0) } }

    /// Returns the 64-byte digest of everything fed so far and resets the hasher.
    public func finalize() throws -> [UInt8] { try context.finalize() }

    /// One-shot SHA-512 of `bytes`.
    public static func hash(_ bytes: [UInt8]) throws -> [UInt8] {
        let hasher = try SHA512()
        try hasher.update(bytes)
        return try hasher.finalize()
    }
}
