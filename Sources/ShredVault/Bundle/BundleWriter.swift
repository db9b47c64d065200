#if canImport(Glibc)
import Glibc
#endif
import Foundation
import VaultArchive
import VaultCrypto

/// What `BundleWriter.seal` produced.
public struct SealedBundle: Sendable {
    public var path: String
    public var header: BundleHeader
    public var manifest: Manifest
    /// Size of the bundle file in bytes.
    public var fileSize: UInt64
    /// SHA-256 of the whole bundle file as written (the catalog stores it; `check` compares it).
    public var fileSHA256: [UInt8]
    /// Set when sealed with `deferSync`: the file is in place but not yet durable.
    var pendingSync: PendingSync? = nil
}

/// Streams a directory tree into a bundle: pax tar → zstd (level 3, checksum) → Cobblestone-256 (vault-format.md §2).
/// Memory use is bounded by a few buffers, independent of the size of the tree.
public enum BundleWriter {
    static let readBufferSize = 1 << 20
    /// Trees of at least this many file bytes are compressed by zstd worker threads.
    static let parallelCompressionThreshold: Int64 = 64 << 20
    /// Bytes per parallel compression job (zstd's minimum is 512 KiB; memory grows with it: with 1 MiB jobs the
    /// 2 GiB user of tools/bench peaks at ~43 MiB resident with one worker, ~47 MiB with two).
    static let parallelJobSize = 1 << 20

    /// Seals `source` (a directory) into a new bundle file at `output`, which must not exist.
    /// The file is written beside `output` under a temporary name, fsynced, then renamed into place
    /// without replacing anything, and the directory is fsynced (unless `syncDirectory` is false: the caller
    /// then fsyncs it before relying on the bundle). On any error nothing is left behind.
    /// - Parameter salt: Cobblestone salt; nil (the default) draws a random one. Only known-answer vectors inject it.
    /// - Parameter deferSync: skip the fsyncs; the bundle is renamed into place with its writeback started and
    ///   returned in `pendingSync` (the archive job syncs many bundles together before committing any of them).
    public static func seal(
        source: String, header: BundleHeader, dataKey: SecretBytes, to output: String,
        compressionLevel: Int32 = 3, salt: [UInt8]? = nil, syncDirectory: Bool = true
    ) throws -> SealedBundle {
        try seal(source: source, header: header, dataKey: dataKey, to: output, compressionLevel: compressionLevel, salt: salt,
                 syncDirectory: syncDirectory, deferSync: false)
    }

    /// - Parameter parallelThreshold: trees with at least this many file bytes use zstd worker threads (tests lower it).
    static func seal(
        source: String, header: BundleHeader, dataKey: SecretBytes, to output: String,
        compressionLevel: Int32 = 3, salt: [UInt8]? = nil, syncDirectory: Bool, deferSync: Bool,
        parallelThreshold: Int64 = parallelCompressionThreshold
    ) throws -> SealedBundle {
        guard let st = try Posix.status(source) else { throw VaultError.notFound(path: source, what: "source directory") }
        guard st.kind == .directory else { throw VaultError.invalidSource(path: source, reason: "not a directory") }
        if Posix.exists(output) { throw VaultError.targetExists(path: output) }

        let directory = Posix.directoryName(output)
        let temporary = directory + "/." + Posix.baseName(output) + ".partial-" + Hex.encode(try SecureRandom.bytes(count: 6))
        let file = try FileDescriptor(open: temporary, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600)
        do {
            let (manifest, size, digest) = try write(
                source: source, header: header, dataKey: dataKey, to: file,
                compressionLevel: compressionLevel, salt: salt, parallelThreshold: parallelThreshold)
            if deferSync {
                try Posix.renameNoReplace(temporary, output)
                return SealedBundle(path: output, header: header, manifest: manifest, fileSize: size, fileSHA256: digest,
                                    pendingSync: PendingSync(file))
            }
            try file.sync()
            try file.close()
            try Posix.renameNoReplace(temporary, output)
            // Callers sealing many bundles into one directory pass false and fsync the directory once.
            if syncDirectory { try Posix.syncDirectory(directory) }
            return SealedBundle(path: output, header: header, manifest: manifest, fileSize: size, fileSHA256: digest)
        } catch {
            _ = unlink(temporary)
            throw error
        }
    }

    private static func write(
        source: String, header: BundleHeader, dataKey: SecretBytes, to file: FileDescriptor,
        compressionLevel: Int32, salt: [UInt8]?, parallelThreshold: Int64
    ) throws -> (Manifest, UInt64, [UInt8]) {
        let output = BufferedOutput(file)
        let fileHash = try SHA256()
        let headerBytes = header.encoded()
        try headerBytes.withUnsafeBytes { try fileHash.update($0); try output.write($0) }

        let encryptor = try CobblestoneEncryptor(inputKey: dataKey, context: headerBytes, salt: salt) { bytes in
            try fileHash.update(bytes)
            try output.write(bytes)
        }
        // The tree is listed (and every entry checked) before anything is written; its size picks the compression.
        let plan = try TreeWalker.plan(root: source)
        // A big tree is compressed by zstd worker threads while this thread reads, hashes, encrypts and writes
        // (one frame all the same; a few MiB more memory, fixed), so one large user keeps two or three cores busy.
        // Small trees, the common case, compress on this thread (the archive job runs one per core).
        let workers: Int32 = plan.fileBytes >= parallelThreshold
            ? Int32(max(1, min(2, ProcessInfo.processInfo.activeProcessorCount - 1))) : 0
        let compressor = try ZstdCompressor(level: compressionLevel, workers: workers, jobSize: Int32(parallelJobSize)) {
            try encryptor.write($0)
        }
        let tar = try TarWriter { try compressor.write($0) }

        let walker = TreeWalker(root: source, tar: tar)
        try walker.write(plan.entries)
        let manifest = Manifest(bundleId: header.bundleIdHex, userId: header.userId.rawValue, entries: walker.entries)
        let manifestBytes = try manifest.encoded()
        guard manifestBytes.count <= Manifest.maxEncodedSize else {
            throw VaultError.invalidSource(path: source, reason: "too many files for one bundle (manifest over \(Manifest.maxEncodedSize >> 20) MiB)")
        }
        try tar.addFile(path: Manifest.entryPath, contents: manifestBytes, mode: 0o644, mtime: header.createdAt)
        try tar.finish()
        try compressor.finish()
        try encryptor.finish()
        try output.flush()
        return (manifest, output.bytesWritten, try fileHash.finalize())
    }
}

/// Depth-first walk in byte order of names: `plan` lists and checks every entry (symlinks, devices, FIFOs and
/// sockets are refused, never followed), `write` then adds each directory and regular file to the tar and records
/// its manifest entry.
private final class TreeWalker {
    struct Planned {
        var relative: String
        var full: String
        var status: FileStatus
    }

    let root: String
    let tar: TarWriter
    var entries: [Manifest.Entry] = []
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: BundleWriter.readBufferSize, alignment: 16)

    init(root: String, tar: TarWriter) {
        self.root = root
        self.tar = tar
    }

    deinit { buffer.deallocate() }

    /// Every entry below `root` in write order, and the bytes of its regular files (lstat sizes).
    static func plan(root: String) throws -> (entries: [Planned], fileBytes: Int64) {
        var entries: [Planned] = []
        var fileBytes: Int64 = 0
        func visit(_ relative: String?) throws {
            let directory = relative.map { root + "/" + $0 } ?? root
            for name in try readingSource({ try Posix.listDirectory(directory) }) {
                let rel = relative.map { $0 + "/" + name } ?? name
                let full = root + "/" + rel
                if let problem = EntryPath.problem(rel) { throw VaultError.invalidSource(path: full, reason: problem) }
                guard let st = try readingSource({ try Posix.status(full) }) else { throw disappeared(full) }
                switch st.kind {
                case .directory:
                    entries.append(Planned(relative: rel, full: full, status: st))
                    try visit(rel)
                case .regular:
                    entries.append(Planned(relative: rel, full: full, status: st))
                    fileBytes += st.size
                case .symlink:
                    throw VaultError.invalidSource(path: full, reason: "is a symbolic link; bundles hold only regular files and directories")
                case .other:
                    throw VaultError.invalidSource(path: full, reason: "is a device, FIFO or socket; bundles hold only regular files and directories")
                }
            }
        }
        try visit(nil)
        return (entries, fileBytes)
    }

    private static func disappeared(_ full: String) -> VaultError {
        VaultError.invalidSource(path: full, reason: "disappeared while archiving; run again")
    }

    /// Runs one read of the source tree. A system call failing there (a file that cannot be read, a directory that
    /// cannot be listed, an entry gone since it was listed) is a problem of this user's source, reported as
    /// `invalidSource` naming the file, so the archive job fails this user only; errors writing the bundle are not
    /// read here and stay what they are.
    static func readingSource<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch VaultError.io(let operation, let path, let code) {
            if code == ENOENT { throw disappeared(path) }
            throw VaultError.invalidSource(path: path, reason: "cannot be read (\(operation): \(String(cString: strerror(code))))")
        }
    }

    func write(_ plan: [Planned]) throws {
        for entry in plan {
            if entry.status.kind == .directory {
                let mode = entry.status.mode & 0o777
                try tar.addDirectory(path: Manifest.dataPrefix + entry.relative, mode: mode, mtime: entry.status.mtime)
                entries.append(.init(path: entry.relative, type: .dir, size: 0, mode: mode, mtime: entry.status.mtime, sha256: nil))
            } else {
                try addFile(entry.relative, full: entry.full)
            }
        }
    }

    private func addFile(_ rel: String, full: String) throws {
        // Listed by `plan`: gone since (ENOENT) is reported as disappeared.
        let file = try Self.readingSource { try FileDescriptor(open: full, flags: O_RDONLY | O_NOFOLLOW) }
        let st = FileStatus(try Self.readingSource { try file.status() })
        guard st.kind == .regular else { throw VaultError.invalidSource(path: full, reason: "is not a regular file") }
        let mode = st.mode & 0o777
        try tar.beginFile(path: Manifest.dataPrefix + rel, size: st.size, mode: mode, mtime: st.mtime)
        let hash = try SHA256()
        var total: Int64 = 0
        while true {
            let n = try Self.readingSource { try file.read(into: buffer) }
            if n == 0 { break }
            total += Int64(n)
            guard total <= st.size else { break }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            try hash.update(chunk)
            try tar.writeData(chunk)
        }
        guard total == st.size else {
            throw VaultError.invalidSource(path: full, reason: "changed size while being archived; run again")
        }
        try tar.endFile()
        entries.append(.init(path: rel, type: .file, size: st.size, mode: mode, mtime: st.mtime,
                             sha256: Hex.encode(try hash.finalize())))
    }
}
