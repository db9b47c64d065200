#if canImport(Glibc)
import Glibc
#endif
import Foundation
import VaultArchive
import VaultCrypto

/// How a bundle's zstd frame is compressed (vault-format.md §2.4: readers rely on one standard frame with a checksum,
/// never on a level).
public enum BundleCompression: Sendable, Equatable {
    /// Every byte at this level.
    case fixed(Int32)
    /// Per file: a sample of each file of at least ``BundleWriter/sampleThreshold`` bytes is compressed at level 1;
    /// a file whose sample does not shrink to under half (recorded or compressed audio, media, random data) is
    /// compressed at ``BundleWriter/fastLevel``, everything else at `level` (one frame: the level changes between zstd
    /// jobs, which needs zstd worker threads; small files ride along at the current level).
    case adaptive(level: Int32)

    public static let automatic = BundleCompression.adaptive(level: 3)
}

/// What the compression of one bundle did (reported per job by `archive`).
public struct CompressionReport: Sendable, Codable, Equatable {
    /// "adaptive" or "fixed".
    public var mode: String
    /// The fixed level, or the adaptive level for compressible files.
    public var level: Int32
    /// Adaptive: bytes of the files compressed at the fast level (their sample barely compressed); 0 when fixed.
    public var fastFileBytes: Int64 = 0
    /// Bytes into zstd (the tar stream) and out of it (the frame).
    public var tarBytes: Int64 = 0
    public var frameBytes: Int64 = 0

    /// frame / tar: 0.75 means the frame is 75% of the tar stream.
    public var ratio: Double { tarBytes > 0 ? Double(frameBytes) / Double(tarBytes) : 1 }
}

/// What `BundleWriter.seal` produced.
public struct SealedBundle: Sendable {
    public var path: String
    public var header: BundleHeader
    public var manifest: Manifest
    /// Size of the bundle file in bytes.
    public var fileSize: UInt64
    /// SHA-256 of the whole bundle file as written (the catalog stores it; `check` compares it).
    public var fileSHA256: [UInt8]
    public var compression: CompressionReport
    /// Set when sealed with `deferSync`: the file is in place but not yet durable.
    var pendingSync: PendingSync? = nil
    /// With `verifyPipelined`: what the verifier read back from the file as it was written (decrypted with the data
    /// key, decompressed, untarred, every file's SHA-256 checked against the bundle's own manifest). `fileSHA256` is
    /// then the hash of the bytes the verifier read from the file, and `head` their first
    /// `BundleReader.signedPrefixMaxLength` bytes (fewer for a shorter file).
    var verified: (header: BundleHeader, manifest: Manifest)? = nil
    var head: [UInt8] = []
}

/// Streams a directory tree into a bundle: pax tar → zstd (checksum) → Cobblestone-256 (vault-format.md §2).
/// Memory use is bounded by a few buffers, independent of the size of the tree.
public enum BundleWriter {
    static let readBufferSize = 1 << 20
    /// Trees of at least this many file bytes are compressed by two zstd worker threads (when there are cores).
    static let parallelCompressionThreshold: Int64 = 64 << 20
    /// Bytes per parallel compression job (zstd's minimum is 512 KiB; memory grows with it: with 1 MiB jobs the
    /// 2 GiB user of tools/bench peaks at ~43 MiB resident with one worker, ~47 MiB with two).
    static let parallelJobSize = 1 << 20
    /// Adaptive compression: files of at least this size are sampled (smaller ones keep the current level).
    public static let sampleThreshold: Int64 = 64 << 10
    /// Adaptive compression: bytes sampled from the start of a file (four slices spread over its first MiB).
    static let sampleBytes = 64 << 10
    /// Adaptive compression: a sample that compresses at level 1 to this fraction or more is "barely compressible".
    static let fastRatio = 0.5
    /// Adaptive compression: the level of barely compressible files (level 1: 3 to 4 times level 3's speed on audio,
    /// 2 to 3 % larger output; negative levels do not shrink PCM at all).
    public static let fastLevel: Int32 = 1

    /// Seals `source` (a directory) into a new bundle file at `output`, which must not exist.
    /// The file is written beside `output` under a temporary name, fsynced, then renamed into place
    /// without replacing anything, and the directory is fsynced (unless `syncDirectory` is false: the caller
    /// then fsyncs it before relying on the bundle). On any error nothing is left behind.
    /// - Parameter salt: Cobblestone salt; nil (the default) draws a random one. Only known-answer vectors inject it.
    public static func seal(
        source: String, header: BundleHeader, dataKey: SecretBytes, to output: String,
        compressionLevel: Int32 = 3, salt: [UInt8]? = nil, syncDirectory: Bool = true
    ) throws -> SealedBundle {
        try seal(source: source, header: header, dataKey: dataKey, to: output, compression: .fixed(compressionLevel), salt: salt,
                 syncDirectory: syncDirectory, deferSync: false)
    }

    /// Test hooks of the archive's verification: flip one bit of the compressed stream at this offset before it is
    /// encrypted (a compressor or memory fault), or of the bundle file at this offset once the block holding it was
    /// written (a write lost or corrupted on its way to the file, or in the page cache). The verifier must catch both.
    struct Fault: Sendable {
        var flipCompressedByteAt: Int64?
        var flipFileByteAt: Int64?
    }

    /// - Parameter deferSync: skip the fsyncs; the bundle is renamed into place with its writeback started and
    ///   returned in `pendingSync` (the archive job syncs many bundles together before committing any of them).
    /// - Parameter verifyPipelined: a second thread reads the file as it is written (through its own descriptor, only
    ///   bytes whose `write(2)` returned), decrypts, decompresses, untars and hashes them; its result is in `verified`,
    ///   `fileSHA256` and `head`, and a failure there fails the seal (vault-format.md §4 G4).
    /// - Parameter parallelThreshold: trees with at least this many file bytes use zstd worker threads (tests lower it).
    static func seal(
        source: String, header: BundleHeader, dataKey: SecretBytes, to output: String,
        compression: BundleCompression = .fixed(3), salt: [UInt8]? = nil, syncDirectory: Bool, deferSync: Bool,
        verifyPipelined: Bool = false, fault: Fault? = nil,
        parallelThreshold: Int64 = parallelCompressionThreshold
    ) throws -> SealedBundle {
        guard let st = try Posix.status(source) else { throw VaultError.notFound(path: source, what: "source directory") }
        guard st.kind == .directory else { throw VaultError.invalidSource(path: source, reason: "not a directory") }
        if Posix.exists(output) { throw VaultError.targetExists(path: output) }

        let directory = Posix.directoryName(output)
        let temporary = directory + "/." + Posix.baseName(output) + ".partial-" + Hex.encode(try SecureRandom.bytes(count: 6))
        let file = try FileDescriptor(open: temporary, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600)
        do {
            var sealed = try write(
                source: source, header: header, dataKey: dataKey, to: file, path: output,
                compression: compression, salt: salt, verifyPipelined: verifyPipelined, fault: fault,
                parallelThreshold: parallelThreshold)
            sealed.path = output
            if deferSync {
                try Posix.renameNoReplace(temporary, output)
                sealed.pendingSync = PendingSync(file)
                return sealed
            }
            try file.sync()
            try file.close()
            try Posix.renameNoReplace(temporary, output)
            // Callers sealing many bundles into one directory pass false and fsync the directory once.
            if syncDirectory { try Posix.syncDirectory(directory) }
            return sealed
        } catch {
            _ = unlink(temporary)
            throw error
        }
    }

    private static func write(
        source: String, header: BundleHeader, dataKey: SecretBytes, to file: FileDescriptor, path: String,
        compression: BundleCompression, salt: [UInt8]?, verifyPipelined: Bool, fault: Fault?, parallelThreshold: Int64
    ) throws -> SealedBundle {
        let output = BufferedOutput(file)
        output.writebackEvery = 8 << 20
        // The verifier reads the file behind this thread, on another core; the file's SHA-256 is computed there, over
        // the bytes read back. Without it, over the bytes as they are written.
        let verifier = verifyPipelined ? try FileVerifier(reading: file.path, as: path, dataKey: dataKey) : nil
        let fileHash = verifier == nil ? try SHA256() : nil
        var flushedBefore: UInt64 = 0
        output.onFlushed = { flushed in
            if let at = fault?.flipFileByteAt, at >= 0, UInt64(at) >= flushedBefore, UInt64(at) < flushed {
                try flipByte(file.path, at: at)
            }
            flushedBefore = flushed
            verifier?.reader.advance(to: flushed)
        }
        var report = CompressionReport(mode: "fixed", level: 3)
        do {
            let headerBytes = header.encoded()
            try headerBytes.withUnsafeBytes { try fileHash?.update($0); try output.write($0) }

            let encryptor = try CobblestoneEncryptor(inputKey: dataKey, context: headerBytes, salt: salt) { bytes in
                try fileHash?.update(bytes)
                try output.write(bytes)
            }
            // The tree is listed (and every entry checked) before anything is written; its size picks the compression.
            let plan = try TreeWalker.plan(root: source)
            let level: Int32
            var adaptive = false
            switch compression {
            case .fixed(let l): level = l
            case .adaptive(let l):
                level = l
                adaptive = plan.largestFile >= sampleThreshold
                report.mode = "adaptive"
            }
            report.level = level
            // A big tree is compressed by zstd worker threads while this thread reads, hashes, encrypts and writes (one
            // frame all the same; a few MiB more memory, fixed), so one large user keeps every core busy. Adaptive
            // compression needs one worker to change levels; otherwise small trees, the common case, compress on this
            // thread (the archive job runs one per core).
            let cores = ProcessInfo.processInfo.activeProcessorCount
            let workers: Int32 = plan.fileBytes >= parallelThreshold ? Int32(max(1, min(2, cores - 1))) : (adaptive ? 1 : 0)
            var frameOffset: Int64 = 0
            let compressor = try ZstdCompressor(level: level, workers: workers, jobSize: Int32(parallelJobSize)) { bytes in
                if let at = fault?.flipCompressedByteAt, at >= frameOffset, at < frameOffset + Int64(bytes.count) {
                    var copy = [UInt8](bytes)
                    copy[Int(at - frameOffset)] ^= 0x01
                    try copy.withUnsafeBytes { try encryptor.write($0) }
                } else {
                    try encryptor.write(bytes)
                }
                frameOffset += Int64(bytes.count)
            }
            var tarBytes: Int64 = 0
            let tar = try TarWriter { bytes in
                tarBytes += Int64(bytes.count)
                try compressor.write(bytes)
            }

            let walker = TreeWalker(root: source, tar: tar)
            if adaptive, compressor.canChangeLevel {
                let sampler = try ZstdSampler(capacity: sampleBytes)
                var current = level
                var fastBytes: Int64 = 0
                walker.chooseLevel = { size, head in
                    guard size >= sampleThreshold else { return }
                    let wanted = try sampleRatio(sampler, head) >= fastRatio ? fastLevel : level
                    if wanted == fastLevel { fastBytes += size }
                    if wanted != current {
                        // Barely compressible files have few repeats: the fast level with a match finder tuned for that.
                        try compressor.changeLevel(wanted, fewMatches: wanted == fastLevel)
                        current = wanted
                    }
                }
                try walker.write(plan.entries)
                report.fastFileBytes = fastBytes
                if current != level { try compressor.changeLevel(level) }  // the manifest: text
            } else {
                try walker.write(plan.entries)
            }
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
            report.tarBytes = tarBytes
            report.frameBytes = frameOffset
            if let verifier {
                let readBack = try verifier.finish()
                return SealedBundle(path: path, header: header, manifest: manifest, fileSize: output.bytesWritten,
                                    fileSHA256: readBack.sha256, compression: report,
                                    verified: (readBack.header, readBack.manifest), head: readBack.head)
            }
            return SealedBundle(path: path, header: header, manifest: manifest, fileSize: output.bytesWritten,
                                fileSHA256: try fileHash!.finalize(), compression: report)
        } catch {
            verifier?.abandon()
            throw error
        }
    }

    /// Tests only (`Fault.flipFileByteAt`): flips one bit of a file, as a disk or page-cache fault would.
    static func flipByte(_ path: String, at offset: Int64) throws {
        let file = try FileDescriptor(open: path, flags: O_RDWR)
        var byte: UInt8 = 0
        guard pread(file.fd, &byte, 1, off_t(offset)) == 1 else { throw VaultError.io(operation: "pread", path: path, errno: errno) }
        byte ^= 0x01
        guard pwrite(file.fd, &byte, 1, off_t(offset)) == 1 else { throw VaultError.io(operation: "pwrite", path: path, errno: errno) }
    }

    /// Level-1 ratio of up to four 16 KiB slices spread over `head` (the first read of a file: at most 1 MiB).
    private static func sampleRatio(_ sampler: ZstdSampler, _ head: UnsafeRawBufferPointer) throws -> Double {
        if head.count <= sampleBytes { return try sampler.ratio(head, level: 1) }
        let slice = sampleBytes / 4
        var sample = [UInt8]()
        sample.reserveCapacity(sampleBytes)
        for i in 0..<4 {
            let start = (head.count - slice) * i / 3
            sample.append(contentsOf: UnsafeRawBufferPointer(rebasing: head[start..<(start + slice)]))
        }
        return try sample.withUnsafeBytes { try sampler.ratio($0, level: 1) }
    }
}

/// The archive's verification on another core (vault-format.md §4 G4): a thread runs `BundleReader.verify` over the
/// bundle file as it is written, read through its own descriptor (`FollowingReader`), and hashes every byte it reads.
private final class FileVerifier: @unchecked Sendable {
    let reader: FollowingReader
    private let dataKey: SecretBytes
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<(header: BundleHeader, manifest: Manifest), Error>?
    private var joined = false

    /// - Parameters: `file` is the path being written, `path` the bundle's name in errors.
    init(reading file: String, as path: String, dataKey: SecretBytes) throws {
        reader = try FollowingReader(reading: file, as: path, keepingFirst: BundleReader.signedPrefixMaxLength)
        self.dataKey = dataKey
        let thread = Thread { [self] in
            result = Result {
                let verified = try BundleReader.verify(stream: reader, dataKey: self.dataKey)
                // The reader stops after the final chunk; a valid bundle has nothing after it.
                let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
                defer { scratch.deallocate() }
                if try reader.read(into: scratch) > 0 {
                    throw VaultError.corruptBundle(path: path, reason: "bytes after the final chunk")
                }
                return verified
            }
            done.signal()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Every byte is written: waits for the verifier; its result, the file's SHA-256 and first bytes.
    func finish() throws -> (header: BundleHeader, manifest: Manifest, sha256: [UInt8], head: [UInt8]) {
        reader.end()
        join()
        let (header, manifest) = try result!.get()
        return (header, manifest, try reader.finalize(), reader.head)
    }

    /// The write failed (or `finish` threw): stop the reader and wait for the thread, ignoring its result.
    func abandon() {
        reader.cancel()
        join()
    }

    private func join() {
        if !joined { done.wait() }
        joined = true
    }
}

/// Reads a file that another thread is writing, in order, never past what the writer reported written
/// (`advance(to:)`): a read waits for more bytes, and returns 0 only once the writer called `end()` and every byte was
/// read. What it reads is hashed (SHA-256) and its first bytes kept.
final class FollowingReader: LendingSource, @unchecked Sendable {
    struct Cancelled: Error {}

    let path: String
    private let file: FileDescriptor
    private let condition = NSCondition()
    // Guarded by `condition`:
    private var available: UInt64 = 0
    private var ended = false
    private var cancelled = false
    // Reader only:
    private var offset: UInt64 = 0
    let hasher: SHA256
    private let keep: Int
    private(set) var head: [UInt8] = []

    init(reading file: String, as path: String, keepingFirst keep: Int) throws {
        self.file = try FileDescriptor(open: file, flags: O_RDONLY | O_NOFOLLOW)
        self.path = path
        self.keep = keep
        hasher = try SHA256()
    }

    /// Writer: the first `count` bytes of the file are written.
    func advance(to count: UInt64) {
        condition.lock()
        available = max(available, count)
        condition.broadcast()
        condition.unlock()
    }

    /// Writer: nothing more will be written.
    func end() {
        condition.lock()
        ended = true
        condition.broadcast()
        condition.unlock()
    }

    /// Writer: stop; a waiting or later read throws `Cancelled`.
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    /// Hashed by `LendingSource`'s `read(into:)` and `readLending(into:)`.
    func readUnhashed(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        condition.lock()
        while available == offset && !ended && !cancelled { condition.wait() }
        let limit = available
        let stop = cancelled
        condition.unlock()
        if stop { throw Cancelled() }
        if limit == offset { return 0 }
        let n = Int(min(UInt64(buffer.count), limit - offset))
        var done = 0
        while done < n {
            let r = pread(file.fd, base + done, n - done, off_t(offset) + off_t(done))
            if r < 0 {
                if errno == EINTR { continue }
                throw VaultError.io(operation: "pread", path: path, errno: errno)
            }
            // Shorter than what was written: the file was truncated under the writer.
            if r == 0 { throw VaultError.corruptBundle(path: path, reason: "the file is shorter than what was written to it") }
            done += r
        }
        if head.count < keep { head += UnsafeRawBufferPointer(rebasing: buffer[0..<n]).prefix(keep - head.count) }
        offset += UInt64(n)
        return n
    }

    /// SHA-256 of every byte read.
    func finalize() throws -> [UInt8] { try hasher.finalize() }
}

/// Depth-first walk in byte order of names: `plan` lists and checks every entry (symlinks, devices, FIFOs and
/// sockets are refused, never followed), `write` then adds each directory and regular file to the tar and records
/// its manifest entry.
private final class TreeWalker {
    struct Planned {
        var relative: String
        var status: FileStatus
    }

    let root: String
    let tar: TarWriter
    var entries: [Manifest.Entry] = []
    /// Adaptive compression: called with each file's size and its first read (at most 1 MiB) before its tar entry.
    var chooseLevel: ((Int64, UnsafeRawBufferPointer) throws -> Void)?
    private let buffer = BufferPool.take(BundleWriter.readBufferSize)

    init(root: String, tar: TarWriter) {
        self.root = root
        self.tar = tar
    }

    deinit { BufferPool.give(buffer) }

    /// Every entry below `root` in write order, and the bytes of its regular files (lstat sizes).
    static func plan(root: String) throws -> (entries: [Planned], fileBytes: Int64, largestFile: Int64) {
        var entries: [Planned] = []
        var fileBytes: Int64 = 0, largestFile: Int64 = 0
        func visit(_ relative: String?) throws {
            let directory = relative.map { root + "/" + $0 } ?? root
            for name in try readingSource({ try Posix.listDirectory(directory) }) {
                let rel = relative.map { $0 + "/" + name } ?? name
                let full = root + "/" + rel
                if let problem = EntryPath.problem(rel) { throw VaultError.invalidSource(path: full, reason: problem) }
                guard let st = try readingSource({ try Posix.status(full) }) else { throw disappeared(full) }
                switch st.kind {
                case .directory:
                    entries.append(Planned(relative: rel, status: st))
                    try visit(rel)
                case .regular:
                    entries.append(Planned(relative: rel, status: st))
                    fileBytes += st.size
                    largestFile = max(largestFile, st.size)
                case .symlink:
                    throw VaultError.invalidSource(path: full, reason: "is a symbolic link; bundles hold only regular files and directories")
                case .other:
                    throw VaultError.invalidSource(path: full, reason: "is a device, FIFO or socket; bundles hold only regular files and directories")
                }
            }
        }
        try visit(nil)
        return (entries, fileBytes, largestFile)
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
                try addFile(entry.relative, full: root + "/" + entry.relative)
            }
        }
    }

    private func addFile(_ rel: String, full: String) throws {
        // Listed by `plan`: gone since (ENOENT) is reported as disappeared.
        let file = try Self.readingSource { try FileDescriptor(open: full, flags: O_RDONLY | O_NOFOLLOW) }
        let st = FileStatus(try Self.readingSource { try file.status() })
        guard st.kind == .regular else { throw VaultError.invalidSource(path: full, reason: "is not a regular file") }
        let mode = st.mode & 0o777
        var n = try Self.readingSource { try file.read(into: buffer) }
        try chooseLevel?(st.size, UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        try tar.beginFile(path: Manifest.dataPrefix + rel, size: st.size, mode: mode, mtime: st.mtime)
        let hash = try SHA256()
        var total: Int64 = 0
        while n > 0 {
            total += Int64(n)
            guard total <= st.size else { break }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            try hash.update(chunk)
            try tar.writeData(chunk)
            n = try Self.readingSource { try file.read(into: buffer) }
        }
        guard total == st.size else {
            throw VaultError.invalidSource(path: full, reason: "changed size while being archived; run again")
        }
        try tar.endFile()
        entries.append(.init(path: rel, type: .file, size: st.size, mode: mode, mtime: st.mtime,
                             sha256: Hex.encode(try hash.finalize())))
    }
}
