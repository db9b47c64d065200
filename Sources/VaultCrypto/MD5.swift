/// Incremental MD5 (RFC 1321). After `finalize()` the hasher starts over and can be reused.
///
/// MD5 is broken as a cryptographic hash: it is here only because S3 checks a request body against its
/// `Content-MD5` header (and reports single-part objects' MD5 as their ETag). Never use it to authenticate or to
/// identify content an attacker may choose; the vault's own integrity rests on SHA-256 and AES-GCM.
public final class MD5 {
    /// Digest length in bytes.
    public static let byteCount = 16

    private let context: DigestContext

    /// Starts a new MD5 computation.
    public init() throws { context = try DigestContext(.md5) }

    /// Feeds `bytes` into the hash.
    public func update(_ bytes: UnsafeRawBufferPointer) throws { try context.update(bytes) }

    /// Feeds `bytes` into the hash.
    public func update(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try context.update($0) } }

    /// Returns the 16-byte digest of everything fed so far and resets the hasher.
    public func finalize() throws -> [UInt8] { try context.finalize() }

    /// One-shot MD5 of `bytes`.
    public static func hash(_ bytes: [UInt8]) throws -> [UInt8] {
        let hasher = try MD5()
        try hasher.update(bytes)
        return try hasher.finalize()
    }
}
