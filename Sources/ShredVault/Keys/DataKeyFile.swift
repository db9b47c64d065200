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
        do {
            return try raw.withUnsafeBytes { bytes in try SecretKeyText.decode(bytes, prefix: [], count: keyLength) }
        } catch SecretKeyText.Problem.shape {
            throw VaultError.keyFile(path: path, reason: "expected 64 hex characters (a 32-byte key); create one with `shredvault bundle keygen`")
        } catch {
            throw VaultError.keyFile(path: path, reason: SecretKeyText.reason(error))
        }
    }

    /// Writes a fresh random key to a new file with mode 0600; refuses to overwrite.
    @discardableResult
    public static func create(_ path: String) throws -> SecretBytes {
        let key = try SecretBytes.random(count: keyLength)
        try SecretKeyText.writeNewFile(path, SecretKeyText.encode(key, prefix: []))
        return key
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
