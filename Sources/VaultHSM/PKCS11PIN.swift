import VaultCrypto

#if canImport(Glibc)
    import Glibc
#endif

/// Where the token's user PIN comes from: never the command line.
public enum PKCS11PIN {
    /// The environment variable the CLI reads.
    public static let defaultEnvironmentVariable = "SHREDVAULT_PKCS11_PIN"
    /// Longest PIN accepted (PKCS#11 tokens take far shorter ones; this bounds the read).
    public static let maximumLength = 256

    /// The PIN from `file` if one is given (an explicit file wins over the environment), otherwise from the
    /// environment variable. The file must be a regular file (a symbolic link to one is followed) without any
    /// group or other permission bits (mode 0600 or stricter); one trailing newline (`\n` or `\r\n`) is removed.
    /// - Throws: `PKCS11Error.pinFile` naming the problem, `.pinMissing` if neither source gives a PIN.
    public static func load(environmentVariable: String = defaultEnvironmentVariable, file: String?) throws
        -> SecretBytes
    {
        if let file { return try load(file: file) }
        guard let value = getenv(environmentVariable) else {
            throw PKCS11Error.pinMissing(environmentVariable: environmentVariable)
        }
        let length = strlen(value)
        guard length > 0 else { throw PKCS11Error.pinMissing(environmentVariable: environmentVariable) }
        return SecretBytes(copying: UnsafeRawBufferPointer(start: value, count: length))
    }

    /// The PIN in `path` (see `load(environmentVariable:file:)`).
    public static func load(file path: String) throws -> SecretBytes {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)
        guard fd >= 0 else { throw PKCS11Error.pinFile(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            throw PKCS11Error.pinFile(path: path, reason: String(cString: strerror(errno)))
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw PKCS11Error.pinFile(path: path, reason: "not a regular file")
        }
        let groupOther = status.st_mode & 0o077
        guard groupOther == 0 else {
            throw PKCS11Error.pinFile(
                path: path,
                reason: "its mode " + String(status.st_mode & 0o7777, radix: 8)
                    + " gives group or others access; it must be 0600 (chmod 600)")
        }
        // One byte more than the limit, to tell a PIN of the maximum length from a longer one.
        let buffer = SecretBytes(count: maximumLength + 3)
        var total = 0
        try buffer.withUnsafeMutableBytes { bytes in
            while total < bytes.count {
                let count = read(fd, bytes.baseAddress! + total, bytes.count - total)
                if count < 0 {
                    if errno == EINTR { continue }
                    throw PKCS11Error.pinFile(path: path, reason: String(cString: strerror(errno)))
                }
                if count == 0 { break }
                total += count
            }
        }
        return try buffer.withUnsafeBytes { bytes in
            var end = total
            if end > 0, bytes[end - 1] == UInt8(ascii: "\n") {
                end -= 1
                if end > 0, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
            }
            guard end > 0 else { throw PKCS11Error.pinFile(path: path, reason: "it is empty") }
            guard end <= maximumLength, total < bytes.count else {
                throw PKCS11Error.pinFile(path: path, reason: "the PIN is longer than \(maximumLength) bytes")
            }
            return SecretBytes(copying: UnsafeRawBufferPointer(rebasing: bytes[0..<end]))
        }
    }
}
