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
        return try raw.withUnsafeBytes { bytes -> P256PrivateKey in
            let prefix = Array(restorePrefix.utf8)
            var end = bytes.count
            while end > 0, bytes[end - 1] == 0x0a || bytes[end - 1] == 0x0d { end -= 1 }
            guard end == prefix.count + 64, Array(bytes[0..<prefix.count]) == prefix else {
                throw VaultError.keyFile(path: path, reason: "is not a ShredVault restore key (expected one line '\(restorePrefix)<64 hex>')")
            }
            let scalar = SecretBytes(count: 32)
            var ok = true
            scalar.withUnsafeMutableBytes { out in
                for i in 0..<32 {
                    let hi = hexNibble(bytes[prefix.count + 2 * i]), lo = hexNibble(bytes[prefix.count + 2 * i + 1])
                    ok = ok && hi < 16 && lo < 16
                    out[i] = (hi & 0x0f) << 4 | (lo & 0x0f)
                }
            }
            guard ok else { throw VaultError.keyFile(path: path, reason: "contains a character that is not hexadecimal") }
            do { return try P256PrivateKey(rawScalar: scalar) } catch {
                throw VaultError.keyFile(path: path, reason: "does not hold a valid P-256 private key")
            }
        }
    }

    /// Creates a new master key pair, writing the restore key to a new 0600 file (never overwriting).
    public static func createRestoreKey(_ path: String) throws -> P256PrivateKey {
        if Posix.exists(path) { throw VaultError.targetExists(path: path) }
        let key = try P256PrivateKey.generate()
        let scalar = try key.rawScalar()
        let line = SecretBytes(count: restorePrefix.utf8.count + 65)
        line.withUnsafeMutableBytes { out in
            let prefix = Array(restorePrefix.utf8)
            for (i, b) in prefix.enumerated() { out[i] = b }
            let digits = Array("0123456789abcdef".utf8)
            scalar.withUnsafeBytes { s in
                for i in 0..<32 {
                    out[prefix.count + 2 * i] = digits[Int(s[i] >> 4)]
                    out[prefix.count + 2 * i + 1] = digits[Int(s[i] & 0x0f)]
                }
            }
            out[prefix.count + 64] = 0x0a
        }
        let file = try FileDescriptor(open: path, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        do {
            try line.withUnsafeBytes { try file.write($0) }
            try file.sync()
            try file.close()
            try Posix.syncDirectory(Posix.directoryName(path))
        } catch {
            _ = unlink(path)
            throw error
        }
        return key
    }

    public static func encodeArchiveKey(_ key: P256PublicKey) -> String {
        archivePrefix + Hex.encode(key.x963Representation) + "\n"
    }

    public static func decodeArchiveKey(_ text: String, path: String) throws -> P256PublicKey {
        let line = text.trimmingCharacters(in: "\n\r ")
        guard line.hasPrefix(archivePrefix), let bytes = Hex.decode(line.dropFirst(archivePrefix.count)),
              let key = try? P256PublicKey(x963Representation: bytes)
        else { throw VaultError.keyFile(path: path, reason: "is not a ShredVault archive key ('\(archivePrefix)<130 hex>')") }
        return key
    }
}

/// Branch-free hex digit decode for secret text; 16+ means invalid.
func hexNibble(_ c: UInt8) -> UInt8 {
    let isDigit = (c &- 0x30) < 10 ? UInt8(1) : 0
    let lower = c | 0x20
    let isHex = (lower &- 0x61) < 6 ? UInt8(1) : 0
    return isDigit &* (c &- 0x30) | isHex &* (lower &- 0x61 &+ 10) | (1 &- (isDigit | isHex)) &* 0xff
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
