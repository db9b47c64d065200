#if canImport(Glibc)
import Glibc
#endif
import VaultCrypto

/// The master key pair (vault-format.md §3.2). The private half is the **restore key**: it lives outside the
/// vault in a 0600 file named by `--master-key-file` / `SHREDVAULT_MASTER_KEY_FILE`; only restore-side jobs
/// read it. The public half is the **archive key**, stored in the vault as `master.pub`.
public enum MasterKey {
    static let restorePrefix = "shredvault-restore-key-v1:"
    static let archivePrefix = "shredvault-archive-key-v1:"

    /// Reads the restore key: the file must be a regular file with no group/other permission bits.
    public static func readRestoreKey(_ path: String) throws -> P256PrivateKey {
        let raw = try readSecretFile(path, maxLength: 512)
        let scalar: SecretBytes
        do {
            scalar = try raw.withUnsafeBytes { bytes in
                try SecretKeyText.decode(bytes, prefix: Array(restorePrefix.utf8), count: 32)
            }
        } catch SecretKeyText.Problem.shape {
            throw VaultError.keyFile(path: path, reason: "is not a ShredVault restore key (expected one line '\(restorePrefix)<64 hex>')")
        } catch {
            throw VaultError.keyFile(path: path, reason: SecretKeyText.reason(error))
        }
        do { return try P256PrivateKey(rawScalar: scalar) } catch {
            throw VaultError.keyFile(path: path, reason: "does not hold a valid P-256 private key")
        }
    }

    /// Creates a new master key pair, writing the restore key to a new 0600 file (never overwriting).
    public static func createRestoreKey(_ path: String) throws -> P256PrivateKey {
        if Posix.exists(path) { throw VaultError.targetExists(path: path) }
        let key = try P256PrivateKey.generate()
        try SecretKeyText.writeNewFile(path, SecretKeyText.encode(try key.rawScalar(), prefix: Array(restorePrefix.utf8)))
        return key
    }

    public static func encodeArchiveKey(_ key: P256PublicKey) -> String {
        archivePrefix + Hex.encode(key.x963Representation) + "\n"
    }

    /// Decodes `master.pub`: exactly `shredvault-archive-key-v1:` and 130 lower-case hex digits, optionally followed by
    /// one "\n" (vault-format.md §3.2), holding a valid uncompressed P-256 point.
    public static func decodeArchiveKey(_ text: String, path: String) throws -> P256PublicKey {
        var bytes = Array(text.utf8)
        if bytes.last == 0x0a { bytes.removeLast() }
        let prefix = Array(archivePrefix.utf8)
        guard bytes.starts(with: prefix) else {
            throw VaultError.keyFile(path: path, reason: "is not a ShredVault archive key ('\(archivePrefix)<130 hex>')")
        }
        let digits = bytes.dropFirst(prefix.count)
        guard digits.count == 130 else {
            throw VaultError.keyFile(path: path, reason: "has \(digits.count) characters after '\(archivePrefix)', not 130 hex digits and at most one newline")
        }
        guard digits.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            throw VaultError.keyFile(path: path, reason: "holds a character that is not a lower-case hexadecimal digit")
        }
        guard let point = Hex.decode(String(decoding: digits, as: UTF8.self)), let key = try? P256PublicKey(x963Representation: point) else {
            throw VaultError.keyFile(path: path, reason: "does not hold a valid P-256 public key")
        }
        return key
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s = s.dropFirst() }
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
