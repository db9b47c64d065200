/// Incremental HMAC-SHA-256 (RFC 2104, FIPS 198-1). After `finalize()` the authenticator starts over with the same
/// key and can be reused.
public final class HMACSHA256 {
    /// Tag length in bytes.
    public static let byteCount = 32

    private let context: MACContext

    /// Starts an HMAC-SHA-256 computation under `key` (any length; keys longer than the 64-byte block are hashed
    /// first, as RFC 2104 specifies). The provider keeps its own copy of the key and cleanses it when freed.
    public init(key: SecretBytes) throws { context = try MACContext(hmac: .sha256, key: key) }

    /// Feeds `bytes` into the MAC.
    public func update(_ bytes: UnsafeRawBufferPointer) throws { try context.update(bytes) }

    /// Feeds `bytes` into the MAC.
    public func update(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try context.update($0) } }

    /// Returns the 32-byte tag of everything fed so far and starts over under the same key.
    public func finalize() throws -> [UInt8] { try context.finalize() }

    /// Like `finalize()`, but the tag goes straight into `SecretBytes`: for tags that are themselves keys, as in
    /// derivation chains (AWS Signature Version 4's signing key).
    public func finalizeSecret() throws -> SecretBytes { try context.finalizeSecret() }

    /// One-shot HMAC-SHA-256 of `message` under `key`.
    public static func authenticationCode(key: SecretBytes, message: [UInt8]) throws -> [UInt8] {
        let mac = try HMACSHA256(key: key)
        try mac.update(message)
        return try mac.finalize()
    }

    /// One-shot HMAC-SHA-256 of `message` under `key`, returned as a secret (a derived key).
    public static func derivedKey(key: SecretBytes, message: [UInt8]) throws -> SecretBytes {
        let mac = try HMACSHA256(key: key)
        try mac.update(message)
        return try mac.finalizeSecret()
    }
}
