#if canImport(Glibc)
import Glibc
#endif
import VaultCrypto

/// The one-line text form of a secret key file, `PREFIX<hex>\n`, handled only in zeroing buffers and decoded
/// without data-dependent branches. Shared by data key files (empty prefix), the restore key and job credentials.
///
/// The form is canonical (vault-format.md §2.6, §3.2): lower-case hex digits and at most one trailing "\n", nothing
/// else, so one key has exactly one file content.
enum SecretKeyText {
    enum Problem: Error {
        /// Not `prefix` followed by the right number of characters.
        case shape
        /// A character that is not a hex digit.
        case notHex
        /// Upper-case hex digits.
        case upperCase
        /// More than one trailing newline, or a carriage return or other character after the key.
        case trailer

        /// What is wrong, for an error line (names no key material).
        var reason: String {
            switch self {
            case .shape: return "is not a key file of the expected form"
            case .notHex: return "contains a character that is not a hexadecimal digit"
            case .upperCase: return "uses upper-case hexadecimal digits; key files hold lower-case hex (0-9, a-f)"
            case .trailer: return "has something after the key (only one trailing newline is allowed: a Windows line end, a blank line or a space?)"
            }
        }
    }

    /// The reason for an error line of a decoding failure.
    static func reason(_ error: any Error) -> String {
        (error as? Problem)?.reason ?? "cannot be read as a key file"
    }

    /// Decodes `prefix ‖ 2·count lower-case hex digits`, optionally followed by one "\n".
    static func decode(_ bytes: UnsafeRawBufferPointer, prefix: [UInt8], count: Int) throws(Problem) -> SecretBytes {
        let end = prefix.count + 2 * count
        guard bytes.count >= end, prefix.indices.allSatisfy({ bytes[$0] == prefix[$0] }) else { throw .shape }
        if bytes.count > end {
            guard bytes.count == end + 1, bytes[end] == 0x0a else {
                // More key-like characters than expected is another shape; line ends and spaces are a trailer.
                let tail = UnsafeRawBufferPointer(rebasing: bytes[end...])
                throw tail.allSatisfy({ $0 == 0x0a || $0 == 0x0d || $0 == 0x20 || $0 == 0x09 }) ? .trailer : .shape
            }
        }
        let key = SecretBytes(count: count)
        var ok: UInt8 = 1
        var lower: UInt8 = 1
        key.withUnsafeMutableBytes { out in
            for i in 0..<count {
                let c1 = bytes[prefix.count + 2 * i], c2 = bytes[prefix.count + 2 * i + 1]
                let hi = nibble(c1), lo = nibble(c2)
                ok &= (hi >> 4 | lo >> 4) == 0 ? 1 : 0
                lower &= isUpperHexLetter(c1) | isUpperHexLetter(c2) == 0 ? 1 : 0
                out[i] = (hi & 0x0f) << 4 | (lo & 0x0f)
            }
        }
        guard ok == 1 else { throw .notHex }
        guard lower == 1 else { throw .upperCase }
        return key
    }

    /// 1 for `A`–`F`, else 0; no branches on the (secret) input.
    static func isUpperHexLetter(_ c: UInt8) -> UInt8 {
        (c &- 0x41) < 6 ? 1 : 0
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
        let file = try FileDescriptor(open: path, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600)
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
