#if canImport(Glibc)
import Glibc
#endif
import VaultCrypto

/// A bare 32-byte data key in a file, as 64 hex characters (optionally followed by a newline).
/// Used by the low-level `shredvault bundle` commands (vault-format.md §2.6). The file must be a regular file
/// that is not readable or writable by group or others (mode 0600 or stricter), like an SSH private key.
public enum DataKeyFile {
    public static let keyLength = 32

    /// Reads and validates the key. The file's bytes are read into a zeroing buffer, never into a String.
    public static func read(_ path: String) throws -> SecretBytes {
        let raw = try readSecretFile(path, maxLength: 256)
        return try raw.withUnsafeBytes { bytes -> SecretBytes in
            var end = bytes.count
            while end > 0, bytes[end - 1] == UInt8(ascii: "\n") || bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            guard end == keyLength * 2 else {
                throw VaultError.keyFile(path: path, reason: "expected 64 hex characters (a 32-byte key); create one with `shredvault bundle keygen`")
            }
            let key = SecretBytes(count: keyLength)
            var ok = true
            key.withUnsafeMutableBytes { out in
                for i in 0..<keyLength {
                    let hi = nibble(bytes[2 * i]), lo = nibble(bytes[2 * i + 1])
                    ok = ok && hi < 16 && lo < 16
                    out[i] = (hi & 0x0f) << 4 | (lo & 0x0f)
                }
            }
            guard ok else { throw VaultError.keyFile(path: path, reason: "contains a character that is not hexadecimal") }
            return key
        }
    }

    /// Writes a fresh random key to a new file with mode 0600; refuses to overwrite.
    @discardableResult
    public static func create(_ path: String) throws -> SecretBytes {
        let key = try SecretBytes.random(count: keyLength)
        let hex = SecretBytes(count: keyLength * 2 + 1)
        let digits = Array("0123456789abcdef".utf8)
        key.withUnsafeBytes { k in
            hex.withUnsafeMutableBytes { h in
                for i in 0..<keyLength {
                    h[2 * i] = digits[Int(k[i] >> 4)]
                    h[2 * i + 1] = digits[Int(k[i] & 0x0f)]
                }
                h[keyLength * 2] = UInt8(ascii: "\n")
            }
        }
        if Posix.exists(path) { throw VaultError.targetExists(path: path) }
        let file = try FileDescriptor(open: path, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        do {
            try hex.withUnsafeBytes { try file.write($0) }
            try file.sync()
            try file.close()
        } catch {
            _ = unlink(path)
            throw error
        }
        return key
    }

    /// Constant-time-ish nibble decode (no data-dependent branches on the key bytes); 16+ means invalid.
    private static func nibble(_ c: UInt8) -> UInt8 {
        let isDigit = (c &- 0x30) < 10 ? UInt8(1) : 0
        let lower = c | 0x20
        let isHex = (lower &- 0x61) < 6 ? UInt8(1) : 0
        return isDigit &* (c &- 0x30) | isHex &* (lower &- 0x61 &+ 10) | (1 &- (isDigit | isHex)) &* 0xff
    }
}

/// Reads a secret file into a zeroing buffer after checking it is a regular file with no group/other permissions.
func readSecretFile(_ path: String, maxLength: Int) throws -> SecretBytes {
    guard let st = try Posix.status(path) else { throw VaultError.keyFile(path: path, reason: "does not exist") }
    guard st.kind == .regular else { throw VaultError.keyFile(path: path, reason: "is not a regular file") }
    guard st.mode & 0o077 == 0 else {
        throw VaultError.keyFile(path: path, reason: "is accessible by group or others (mode \(String(st.mode & 0o777, radix: 8))); run `chmod 600 \(path)`")
    }
    let file = try FileDescriptor(open: path, flags: O_RDONLY | O_NOFOLLOW)
    let buffer = SecretBytes(count: maxLength + 1)
    var filled = 0
    try buffer.withUnsafeMutableBytes { raw in
        while filled < raw.count {
            let n = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[filled...]))
            if n == 0 { break }
            filled += n
        }
    }
    guard filled <= maxLength else { throw VaultError.keyFile(path: path, reason: "is larger than \(maxLength) bytes; not a key file") }
    return buffer.withUnsafeBytes { SecretBytes(copying: $0[0..<filled]) }
}
