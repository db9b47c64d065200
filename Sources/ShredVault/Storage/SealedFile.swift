#if canImport(Glibc)
import Glibc
#endif
import VaultCrypto

/// Seals an in-memory image with Cobblestone-256 into a file and opens it back into memory (keystore snapshots):
/// the plaintext never touches a file.
enum SealedFile {
    /// Writes `header ‖ Cobblestone-256(key, context = header, contents)` to a new file at `output`
    /// (temporary name, fsync, rename without replacing, directory fsync).
    static func write(contents: SecretBytes, header: [UInt8], key: SecretBytes, to output: String) throws -> UInt64 {
        if Posix.exists(output) { throw VaultError.targetExists(path: output) }
        let directory = Posix.directoryName(output)
        guard let st = try Posix.status(directory), st.kind == .directory else { throw VaultError.notFound(path: directory, what: "directory") }
        let temporary = directory + "/." + Posix.baseName(output) + ".partial-" + Hex.encode(try SecureRandom.bytes(count: 6))
        let out = try FileDescriptor(open: temporary, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600)
        do {
            let buffered = BufferedOutput(out)
            try header.withUnsafeBytes { try buffered.write($0) }
            let encryptor = try CobblestoneEncryptor(inputKey: key, context: header) { try buffered.write($0) }
            try contents.withUnsafeBytes { all in
                var offset = 0
                while offset < all.count {
                    let n = min(1 << 20, all.count - offset)
                    try encryptor.write(UnsafeRawBufferPointer(rebasing: all[offset..<(offset + n)]))
                    offset += n
                }
            }
            try encryptor.finish()
            try buffered.flush()
            try out.sync()
            try out.close()
            try Posix.renameNoReplace(temporary, output)
            try Posix.syncDirectory(directory)
            return buffered.bytesWritten
        } catch {
            _ = unlink(temporary)
            throw error
        }
    }

    /// Decrypts the payload after the header of `input` into memory (at most `limit` bytes: the file's size bounds
    /// it); any authentication failure or truncation throws before anything is returned.
    static func decrypt(input: FileDescriptor, header: [UInt8], key: SecretBytes, limit: Int) throws -> SecretBytes {
        do {
            let buffered = BufferedInput(input)
            let decryptor = try CobblestoneDecryptor(inputKey: key, context: header) { try buffered.read(into: $0) }
            let image = SecretBytes(count: max(limit, 1))
            var filled = 0
            try image.withUnsafeMutableBytes { all in
                while true {
                    guard filled < all.count else {
                        // Larger than the file it came from: impossible for a valid message.
                        throw VaultError.corruptBundle(path: input.path, reason: "plaintext longer than the file")
                    }
                    let n = try decryptor.read(into: UnsafeMutableRawBufferPointer(rebasing: all[filled...]))
                    if n == 0 { break }
                    filled += n
                }
            }
            let exact = SecretBytes(count: filled)
            exact.withUnsafeMutableBytes { out in image.withUnsafeBytes { out.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<filled])) } }
            return exact
        } catch {
            throw VaultError.fromPayload(error, path: input.path)
        }
    }
}
