import CSHA256

/// Incremental SHA-256 (FIPS 180-4). After `finalize()` the hasher starts over and can be reused.
///
/// Two hashers on one thread can share the work: one *lends* a buffer it read (`lend`), and the next bytes hashed
/// into the other (`update(_:pairedWith:)`) are compressed block by block together with the lent bytes (on x86-64
/// CPUs with the SHA extensions; elsewhere, or with `pairing` off, one after the other). A stream alone waits on the
/// latency of the SHA round instruction; two interleaved nearly double the bytes hashed per second. Each digest is
/// still the SHA-256 of that hasher's own bytes in order (CSHA256/csha256.h).
public final class SHA256 {
    /// Digest length in bytes.
    public static let byteCount = 32

    private let state: OpaquePointer

    /// Starts a new SHA-256 computation.
    public init() throws {
        guard let state = svsha_new() else { throw CryptoError.openSSLFailure("SHA256_Init") }
        self.state = state
    }

    /// Zeroes the state. Lent bytes must be settled before (every caller settles or finalizes first).
    deinit { svsha_free(state) }

    /// Feeds `bytes` into the hash (after any bytes this hasher lent).
    public func update(_ bytes: UnsafeRawBufferPointer) throws {
        try check(svsha_update(state, bytes.baseAddress, bytes.count), "SHA256_Update")
    }

    /// Feeds `bytes` into the hash.
    public func update(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try update($0) } }

    /// Feeds `bytes` into the hash, their whole blocks compressed together with bytes `lender` lent (those are
    /// hashed into `lender`). Same digests as `update`, only faster.
    public func update(_ bytes: UnsafeRawBufferPointer, pairedWith lender: SHA256?) throws {
        try check(svsha_update_paired(state, bytes.baseAddress, bytes.count, lender?.state), "SHA256_Update")
    }

    /// Takes `bytes` as the next bytes of this hash without hashing them yet: another hasher's
    /// `update(_:pairedWith:)` hashes them with its own, and `settle()` (or this hasher's next `update`, `lend` or
    /// `finalize`) hashes what is left. The caller keeps the buffer alive and unchanged until then.
    public func lend(_ bytes: UnsafeRawBufferPointer) throws {
        try check(svsha_lend(state, bytes.baseAddress, bytes.count), "SHA256_Update")
    }

    /// Hashes whatever is left of the lent bytes; afterwards the lent buffer may change.
    public func settle() throws {
        try check(svsha_settle(state), "SHA256_Update")
    }

    /// Returns the 32-byte digest of everything fed so far and resets the hasher.
    public func finalize() throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.byteCount)
        try check(out.withUnsafeMutableBufferPointer { svsha_final(state, $0.baseAddress) }, "SHA256_Final")
        return out
    }

    /// One-shot SHA-256 of `bytes`.
    public static func hash(_ bytes: [UInt8]) throws -> [UInt8] {
        let hasher = try SHA256()
        try hasher.update(bytes)
        return try hasher.finalize()
    }

    /// Whether paired blocks are compressed together on this machine (the CPU has the SHA extensions and
    /// pairing is on).
    public static var pairsTogether: Bool { svsha_pairing_available() != 0 }

    /// Turns pairing off or back on for the whole process (tests compare both ways).
    public static func setPairing(_ on: Bool) { svsha_set_pairing(on ? 1 : 0) }

    /// Blocks compressed in pairs so far in this process.
    public static var pairedBlocks: UInt64 { svsha_paired_blocks() }

    private func check(_ result: Int32, _ function: String) throws {
        guard result == 1 else { throw CryptoError.openSSLFailure(function) }
    }
}
