#if canImport(Glibc)
import Glibc
#endif
import VaultCrypto

/// The one-line text form of a secret key file, `PREFIX<hex>\n`, handled only in zeroing buffers and decoded
/// without data-dependent branches. Shared by data key files (empty prefix) and the restore key.
enum SecretKeyText {
    enum Problem: Error { case shape, notHex }

    /// Decodes `prefix ‖ 2·count hex digits`, optionally followed by newlines.
    static func decode(_ bytes: UnsafeRawBufferPointer, prefix: [UInt8], count: Int) throws(Problem) -> SecretBytes {
        var end = bytes.count
        while end > 0, bytes[end - 1] == 0x0a || bytes[end - 1] == 0x0d { end -= 1 }
        guard end == prefix.count + 2 * count, prefix.indices.allSatisfy({ bytes[$0] == prefix[$0] }) else { throw .shape }
        let key = SecretBytes(count: count)
        var ok = true
        key.withUnsafeMutableBytes { out in
            for i in 0..<count {
                let hi = nibble(bytes[prefix.count + 2 * i]), lo = nibble(bytes[prefix.count + 2 * i + 1])
                ok = ok && hi < 16 && lo < 16
                out[i] = (hi & 0x0f) << 4 | (lo & 0x0f)
            }
        }
        guard ok else { throw .notHex }
        return key
    }

    /// `prefix ‖ hex(secret) ‖ "\n"` in a zeroing buffer.
    static func encode(_ secret: SecretBytes, prefix: [UInt8]) -> SecretBytes {
        let line = SecretBytes(count: prefix.count + 2 * secret.count + 1)
        let digits = Array("0123456789abcdef".utf8)
        line.withUnsafeMutableBytes { out in
            for (i, b) in prefix.enumerated() { out[i] = b }
            secret.withUnsafeBytes { s in
                for i in 0..<s.count {
                    out[prefix.count + 2 * i] = digits[Int(s[i] >> 4)]
                    out[prefix.count + 2 * i + 1] = digits[Int(s[i] & 0x0f)]
                }
            }
            out[out.count - 1] = 0x0a
        }
        return line
    }

    /// Writes `text` to a new file with mode 0600 (never overwriting), fsyncs it and its directory; on failure
    /// nothing is left behind.
    static func writeNewFile(_ path: String, _ text: SecretBytes) throws {
        if Posix.exists(path) { throw VaultError.targetExists(path: path) }
        let file = try FileDescriptor(open: path, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        do {
            try text.withUnsafeBytes { try file.write($0) }
            try file.sync()
            try file.close()
            try Posix.syncDirectory(Posix.directoryName(path))
        } catch {
            _ = unlink(path)
            throw error
        }
    }

    /// Hex digit value; 16 or more means not a hex digit. No branches on the (secret) input.
    static func nibble(_ c: UInt8) -> UInt8 {
        let isDigit = (c &- 0x30) < 10 ? UInt8(1) : 0
        let lower = c | 0x20
        let isHex = (lower &- 0x61) < 6 ? UInt8(1) : 0
        return isDigit &* (c &- 0x30) | isHex &* (lower &- 0x61 &+ 10) | (1 &- (isDigit | isHex)) &* 0xff
    }
}
