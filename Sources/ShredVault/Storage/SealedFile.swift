#if canImport(Glibc)
import Glibc
#endif
import VaultCrypto

/// Streams a whole file through Cobblestone-256 (keystore snapshots).
enum SealedFile {
    /// Writes `header ‖ Cobblestone-256(key, context = header, contents of input)` to a new file at `output`
    /// (temporary name, fsync, rename without replacing, directory fsync).
    static func write(input: String, header: [UInt8], key: SecretBytes, to output: String) throws -> UInt64 {
        if Posix.exists(output) { throw VaultError.targetExists(path: output) }
        let directory = Posix.directoryName(output)
        guard let st = try Posix.status(directory), st.kind == .directory else { throw VaultError.notFound(path: directory, what: "directory") }
        let temporary = directory + "/." + Posix.baseName(output) + ".partial-" + Hex.encode(try SecureRandom.bytes(count: 6))
        let out = try FileDescriptor(open: temporary, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        do {
            let buffered = BufferedOutput(out)
            try header.withUnsafeBytes { try buffered.write($0) }
            let encryptor = try CobblestoneEncryptor(inputKey: key, context: header) { try buffered.write($0) }
            let source = try FileDescriptor(open: input, flags: O_RDONLY)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let n = try source.read(into: buffer)
                if n == 0 { break }
                try encryptor.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
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

    /// Decrypts the payload after `headerLength` bytes of `input` into a new file `output` (mode 0600);
    /// on any failure (authentication, truncation) the output is removed.
    static func decrypt(input: FileDescriptor, header: [UInt8], key: SecretBytes, to output: String) throws {
        let out = try FileDescriptor(open: output, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        do {
            let buffered = BufferedInput(input)
            let decryptor = try CobblestoneDecryptor(inputKey: key, context: header) { try buffered.read(into: $0) }
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let n = try decryptor.read(into: buffer)
                if n == 0 { break }
                try out.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            }
            try out.sync()
            try out.close()
        } catch {
            _ = unlink(output)
            throw VaultError.fromPayload(error, path: input.path)
        }
    }
}
