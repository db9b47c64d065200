#if canImport(Glibc)
import Glibc
#endif
import VaultArchive
import VaultCrypto

/// Reads bundles: the header without any key, and the payload with the data key, verifying as it goes
/// (vault-format.md §2.5). Nothing reaches the caller's target until the final chunk, the zstd checksum and
/// every manifest entry verified.
public enum BundleReader {
    /// Whether the payload is read by a pipeline of threads: decrypt ‖ decompress ‖ tar, hash and write, with
    /// bounded read-ahead between the stages (`ReadAhead`, 2 × 4 MiB in 1 MiB slots; 256 KiB and smaller slots
    /// measured slower, their hand-offs cost more CPU). The result, the errors and what reaches the target are the
    /// same either way; only the speed and the number of threads differ.
    public enum Pipeline: Sendable {
        /// Threads for bundles of `automaticMinimumSize` or more (below that, starting threads costs more than it
        /// saves).
        case automatic
        /// Always (tests run small bundles through the threads with this).
        case always
        /// One thread: the caller's (`restore --all-held` uses this while other users keep every core busy).
        case never

        func enabled(bundleSize: Int64) -> Bool {
            switch self {
            case .automatic: return bundleSize >= BundleReader.automaticMinimumSize
            case .always: return true
            case .never: return false
            }
        }
    }

    /// Bundle size from which `Pipeline.automatic` uses threads.
    static let automaticMinimumSize: Int64 = 4 << 20

    /// Reads and strictly parses the header. Needs no key.
    public static func readHeader(path: String) throws -> (header: BundleHeader, bytes: [UInt8]) {
        let file = try openBundle(path)
        return try readHeader(file)
    }

    /// The header and the signed prefix of a bundle (header ‖ salt ‖ commitment, vault-format.md §3.10).
    public static func readSignedPrefix(path: String) throws -> (header: BundleHeader, prefix: [UInt8]) {
        let file = try openBundle(path)
        let (header, bytes) = try readHeader(file)
        let rest = try file.read(upTo: 56)
        guard rest.count == 56 else { throw VaultError.corruptBundle(path: path, reason: "file ends inside the salt or commitment") }
        return (header, bytes + rest)
    }

    /// `readSignedPrefix` of a bundle's first bytes (at least `signedPrefixMaxLength` of them, or the whole bundle
    /// when shorter), as a ranged read of an object returns them; `path` names the bundle in errors.
    public static func signedPrefix(of bytes: [UInt8], path: String) throws -> (header: BundleHeader, prefix: [UInt8]) {
        if bytes.count < 8 || Array(bytes[0..<8]) != BundleHeader.magic { throw VaultError.notABundle(path: path) }
        guard bytes.count >= BundleHeader.prefixLength else {
            throw VaultError.malformedHeader(path: path, reason: "file ends inside the header")
        }
        let length = try BundleHeader.headerLength(fromPrefix: Array(bytes[0..<BundleHeader.prefixLength]), path: path)
        guard bytes.count >= length else { throw VaultError.malformedHeader(path: path, reason: "file ends inside the header") }
        let header = try BundleHeader.decode(Array(bytes[0..<length]), path: path)
        guard bytes.count >= length + 56 else { throw VaultError.corruptBundle(path: path, reason: "file ends inside the salt or commitment") }
        return (header, Array(bytes[0..<length + 56]))
    }

    /// The most bytes `signedPrefix(of:path:)` needs: the longest header, the salt and the key commitment (§3.10).
    public static let signedPrefixMaxLength = BundleHeader.maxLength + 56

    /// Decrypts and checks the whole bundle without writing anything; returns its manifest.
    /// - Parameter expectedSHA256: as for `extract`: when given, the file's SHA-256, computed in the same read (paired
    ///   with the files' hashes), must equal it; otherwise `bundleMismatch`, whatever failed first (`check --read-data`).
    @discardableResult
    public static func verify(path: String, dataKey: SecretBytes, pipeline: Pipeline = .never,
                              expectedSHA256: [UInt8]? = nil) throws -> (header: BundleHeader, manifest: Manifest) {
        let opened = try openBundle(path)
        let file: any ByteSource = try expectedSHA256.map { try HashingSource(opened, expected: $0) } ?? opened
        let (header, bytes) = try readHeader(file)
        let manifest = try walkPayload(file, bundleSize: Int64(try opened.status().st_size), header: header, headerBytes: bytes,
                                       dataKey: dataKey, path: path, sink: DiscardSink(), pipeline: pipeline)
        return (header, manifest)
    }

    /// `verify` of a bundle read from a stream (the archive's verifier reads the bundle file while it is being
    /// written); `source.path` names the bundle in errors.
    static func verify(stream source: any ByteSource, dataKey: SecretBytes) throws -> (header: BundleHeader, manifest: Manifest) {
        let (header, bytes) = try readHeader(source)
        let manifest = try walkPayload(source, bundleSize: 0, header: header, headerBytes: bytes, dataKey: dataKey, path: source.path,
                                       sink: DiscardSink(), pipeline: .never)
        return (header, manifest)
    }

    /// Extracts the bundle into `target`, which must not exist. Files are written into a private temporary
    /// directory beside `target`, which is renamed to `target` only after everything verified; on any failure
    /// the temporary directory is removed and `target` is never created.
    /// - Parameters:
    ///   - syncParent: fsync the parent directory after the rename (callers extracting many bundles into one
    ///     staging directory pass false and sync it once).
    ///   - pipeline: whether to read with a pipeline of threads (`Pipeline`).
    ///   - expectedSHA256: when given, the SHA-256 of every byte of the file, computed as it is read and decrypted,
    ///     must equal it before `target` appears (`restore`, vault-format.md §3.10); otherwise `bundleMismatch`, also
    ///     when the payload failed to decrypt or parse first (the file is then read to its end to tell).
    @discardableResult
    public static func extract(path: String, dataKey: SecretBytes, to target: String, syncParent: Bool = true,
                               pipeline: Pipeline = .automatic, expectedSHA256: [UInt8]? = nil) throws -> (header: BundleHeader, manifest: Manifest) {
        let target = target.count > 1 && target.hasSuffix("/") ? String(target.dropLast()) : target
        if Posix.exists(target) { throw VaultError.targetExists(path: target) }
        let opened = try openBundle(path)
        let file: any ByteSource = try expectedSHA256.map { try HashingSource(opened, expected: $0) } ?? opened
        let (header, bytes) = try readHeader(file)
        let parent = Posix.directoryName(target)
        guard let parentStatus = try Posix.status(parent), parentStatus.kind == .directory else {
            throw VaultError.notFound(path: parent, what: "parent directory")
        }
        let temporary = parent + "/." + Posix.baseName(target) + ".partial-" + Hex.encode(try SecureRandom.bytes(count: 6))
        try Posix.makeDirectory(temporary, mode: 0o700)
        do {
            let sink = ExtractSink(root: temporary)
            let manifest = try walkPayload(file, bundleSize: Int64(try opened.status().st_size), header: header, headerBytes: bytes,
                                           dataKey: dataKey, path: path, sink: sink, pipeline: pipeline)
            try sink.applyDirectoryMetadata()
            try Posix.renameNoReplace(temporary, target)
            if syncParent { try Posix.syncDirectory(parent) }
            return (header, manifest)
        } catch {
            try? Posix.removeTree(temporary)
            throw error
        }
    }

    // MARK: - Internals

    static func openBundle(_ path: String) throws -> FileDescriptor {
        guard let st = try Posix.status(path) else { throw VaultError.notFound(path: path, what: "bundle") }
        guard st.kind == .regular else { throw VaultError.notABundle(path: path) }
        return try FileDescriptor(open: path, flags: O_RDONLY)
    }

    static func readHeader(_ file: any ByteSource) throws -> (BundleHeader, [UInt8]) {
        let prefix = try file.read(upTo: BundleHeader.prefixLength)
        if prefix.count < 8 || Array(prefix[0..<8]) != BundleHeader.magic { throw VaultError.notABundle(path: file.path) }
        guard prefix.count == BundleHeader.prefixLength else {
            throw VaultError.malformedHeader(path: file.path, reason: "file ends inside the header")
        }
        let length = try BundleHeader.headerLength(fromPrefix: prefix, path: file.path)
        let rest = try file.read(upTo: length - prefix.count)
        guard rest.count == length - prefix.count else {
            throw VaultError.malformedHeader(path: file.path, reason: "file ends inside the header")
        }
        let bytes = prefix + rest
        return (try BundleHeader.decode(bytes, path: file.path), bytes)
    }

    private static func walkPayload(
        _ file: any ByteSource, bundleSize: Int64, header: BundleHeader, headerBytes: [UInt8], dataKey: SecretBytes, path: String,
        sink: EntrySink, pipeline: Pipeline
    ) throws -> Manifest {
        // Threads, when used, are cancelled and joined before this returns or throws: none outlives the call.
        var stages: [ReadAhead] = []
        defer {
            for stage in stages { stage.cancel() }
            for stage in stages { stage.join() }
        }
        do {
            let threaded = pipeline.enabled(bundleSize: bundleSize)
            // On one thread, the file's hash (restore, the archive's verifier) is computed paired with the files'
            // hashes: each buffer read is lent to it and hashed together with the plaintext that follows.
            let input = BufferedInput(file, lend: !threaded)
            let decryptor = try CobblestoneDecryptor(
                inputKey: dataKey, context: headerBytes, view: { try input.view(upTo: $0) }, source: { try input.read(into: $0) })
            // The commitment is checked here, on the caller's thread, before any thread starts.
            try decryptor.verifyCommitment()
            /// Runs `source` on a thread of its own when `threaded`; each stage sees the same bytes and errors.
            func ahead(_ name: String, _ source: @escaping (UnsafeMutableRawBufferPointer) throws -> Int)
                -> (UnsafeMutableRawBufferPointer) throws -> Int {
                guard threaded else { return source }
                let stage = ReadAhead(name: name, source: source)
                stages.append(stage)
                stage.start()
                return { try stage.read(into: $0) }
            }
            // Stage 1 reads and authenticates chunks, stage 2 decompresses, the caller parses, hashes and writes.
            let plaintext = ahead("sv-decrypt") { try decryptor.read(into: $0) }
            let decompressor = try ZstdDecompressor(source: plaintext)
            let tarBytes = ahead("sv-unzstd") { try decompressor.read(into: $0) }
            let tar = try TarReader(source: tarBytes)
            var walker = PayloadWalker(path: path, tar: tar, sink: sink, lender: input.lender)
            let manifestBytes = try walker.walkEntries()
            try tar.finish()
            if let hashing = file as? HashingSource { try hashing.finish() }
            return try walker.checkManifest(manifestBytes, header: header)
        } catch {
            // A file that is not the one the catalog names is reported as such, whatever failed first in it.
            if let hashing = file as? HashingSource {
                for stage in stages { stage.cancel() }
                for stage in stages { stage.join() }
                stages = []
                try hashing.finish()
            }
            throw VaultError.fromPayload(error, path: path)
        }
    }
}

/// A bundle file read through a SHA-256: `finish()` reads whatever is left and requires the hash of the whole file to
/// equal `expected` (restore checks the file against the catalog while it decrypts it, vault-format.md §3.10).
final class HashingSource: LendingSource {
    private let file: FileDescriptor
    let hasher: SHA256
    private let expected: [UInt8]
    private var outcome: Result<Void, Error>?
    var path: String { file.path }

    init(_ file: FileDescriptor, expected: [UInt8]) throws {
        self.file = file
        self.expected = expected
        hasher = try SHA256()
    }

    func readUnhashed(into buffer: UnsafeMutableRawBufferPointer) throws -> Int { try file.read(into: buffer) }

    /// Reads to the end of the file; throws `bundleMismatch` unless the SHA-256 of all of it is `expected`. Later calls
    /// give the same outcome.
    func finish() throws {
        if outcome == nil {
            outcome = Result {
                let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
                defer { scratch.deallocate() }
                while try read(into: scratch) > 0 {}
                guard try hasher.finalize() == expected else {
                    throw VaultError.bundleMismatch(path: path, reason: "its SHA-256 differs from the catalog (modified or replaced)")
                }
            }
        }
        try outcome!.get()
    }
}

/// Receives verified-so-far entries while the payload is walked.
protocol EntrySink {
    func makeDirectory(_ rel: String, mode: UInt32, mtime: Int64) throws
    /// `size` is what the entry's header says the file holds.
    func beginFile(_ rel: String, size: Int64) throws
    func write(_ bytes: UnsafeRawBufferPointer) throws
    func endFile(mode: UInt32, mtime: Int64) throws
}

/// `verify`: reads everything, keeps nothing.
struct DiscardSink: EntrySink {
    func makeDirectory(_ rel: String, mode: UInt32, mtime: Int64) {}
    func beginFile(_ rel: String, size: Int64) {}
    func write(_ bytes: UnsafeRawBufferPointer) {}
    func endFile(mode: UInt32, mtime: Int64) {}
}

/// `extract`: writes into a private temporary directory; directory modes/mtimes are applied last.
final class ExtractSink: EntrySink {
    let root: String
    private var current: FileDescriptor?
    private var directories: [(path: String, mode: UInt32, mtime: Int64)] = []

    init(root: String) { self.root = root }

    func makeDirectory(_ rel: String, mode: UInt32, mtime: Int64) throws {
        let full = root + "/" + rel
        try Posix.makeDirectory(full, mode: 0o700)
        directories.append((full, mode, mtime))
    }

    func beginFile(_ rel: String, size: Int64) throws {
        let file = try FileDescriptor(open: root + "/" + rel, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600)
        // The blocks in one go instead of page by page as the data comes (the header's size is authenticated with
        // the rest of the bundle; a short entry fails the restore, whose directory is then removed).
        file.preallocate(size)
        current = file
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws { try current!.write(bytes) }

    func endFile(mode: UInt32, mtime: Int64) throws {
        guard let file = current else { return }
        try file.setPermissions(mode)
        try file.setModificationTime(mtime)
        try file.close()
        current = nil
    }

    /// Deepest first, so setting a parent's mtime is not undone by changes inside it.
    func applyDirectoryMetadata() throws {
        for d in directories.reversed() {
            try Posix.setModificationTime(d.path, d.mtime)
            try Posix.setPermissions(d.path, d.mode)
        }
    }
}

/// Applies the tar rules of vault-format.md §2.4 entry by entry. Paths and ids are compared as UTF-8 bytes, never
/// as Swift Strings (whose equality is Unicode canonical equivalence: "é" and "e\u{301}", "K" and the Kelvin sign
/// would be one name).
private struct PayloadWalker {
    let path: String
    let tar: TarReader
    let sink: EntrySink
    /// The hasher that lent the bytes last read from the file, on this thread (`BufferedInput.lender`): each file's
    /// SHA-256 is computed paired with them.
    let lender: SHA256?
    var seen: [Manifest.Entry] = []
    var seenPaths: Set<[UInt8]> = []
    var directories: Set<[UInt8]> = []

    /// The pax extended header records the writer emits (libarchive's restricted pax: a long or non-ASCII path, a
    /// size of 8 GiB or more, an mtime outside the ustar range).
    static let paxKeywords: Set<String> = ["path", "size", "mtime"]

    init(path: String, tar: TarReader, sink: EntrySink, lender: SHA256?) {
        self.path = path
        self.tar = tar
        self.sink = sink
        self.lender = lender
    }

    func invalid(_ reason: String) -> VaultError { .invalidContents(path: path, reason: reason) }

    /// Walks every entry; returns the manifest bytes (the last entry).
    mutating func walkEntries() throws -> [UInt8] {
        while let entry = try tar.nextEntry() {
            if entry.path.utf8.elementsEqual(Manifest.entryPath.utf8) {
                guard entry.kind == .file else { throw invalid("manifest entry is not a regular file") }
                try checkEncoding(of: Manifest.entryPath, as: UInt8(ascii: "0"))
                guard entry.size <= Int64(Manifest.maxEncodedSize) else { throw invalid("manifest larger than \(Manifest.maxEncodedSize >> 20) MiB") }
                var bytes = [UInt8]()
                bytes.reserveCapacity(Int(entry.size))
                while true {
                    let block = try tar.readDataBlock()
                    if block.isEmpty { break }
                    bytes += block
                }
                guard Int64(bytes.count) == entry.size else { throw invalid("manifest size differs from its tar header") }
                if let extra = try tar.nextEntry() { throw invalid("entry '\(extra.path)' follows the manifest") }
                return bytes
            }
            try walk(entry)
        }
        throw invalid("no manifest (the archive ends without manifest.json)")
    }

    private mutating func walk(_ entry: TarEntryHeader) throws {
        let full = Array(entry.path.utf8)
        let prefix = Array(Manifest.dataPrefix.utf8)
        guard full.starts(with: prefix) else { throw invalid("entry '\(entry.path)' is outside files/") }
        var relBytes = Array(full.dropFirst(prefix.count))
        if entry.kind == .directory && relBytes.last == UInt8(ascii: "/") { relBytes.removeLast() }
        // Valid UTF-8 (the tar path is) with an ASCII prefix removed: still valid UTF-8, byte for byte.
        let rel = String(decoding: relBytes, as: UTF8.self)
        if let problem = EntryPath.problem(rel) { throw invalid("entry '\(entry.path)': \(problem)") }
        guard seenPaths.insert(relBytes).inserted else { throw invalid("duplicate entry '\(rel)'") }
        if let slash = relBytes.lastIndex(of: UInt8(ascii: "/")), !directories.contains(Array(relBytes[..<slash])) {
            throw invalid("entry '\(rel)' comes before its directory '\(String(decoding: relBytes[..<slash], as: UTF8.self))'")
        }
        let mode = entry.mode & 0o777
        switch entry.kind {
        case .directory:
            try checkEncoding(of: rel, as: UInt8(ascii: "5"))
            directories.insert(relBytes)
            try sink.makeDirectory(rel, mode: mode, mtime: entry.mtime)
            seen.append(.init(path: rel, type: .dir, size: 0, mode: mode, mtime: entry.mtime, sha256: nil))
        case .file:
            try checkEncoding(of: rel, as: UInt8(ascii: "0"))
            try sink.beginFile(rel, size: entry.size)
            let hash = try SHA256()
            var total: Int64 = 0
            // Hashed and written where the tar reader holds the bytes: no copy of the file's data.
            while true {
                let chunk = try tar.readDataBlock()
                if chunk.isEmpty { break }
                try hash.update(chunk, pairedWith: lender)
                try sink.write(chunk)
                total += Int64(chunk.count)
            }
            guard total == entry.size else { throw invalid("entry '\(rel)' holds \(total) bytes, its header says \(entry.size)") }
            try sink.endFile(mode: mode, mtime: entry.mtime)
            seen.append(.init(path: rel, type: .file, size: total, mode: mode, mtime: entry.mtime,
                              sha256: Hex.encode(try hash.finalize())))
        case .symlink:
            throw invalid("entry '\(rel)' is a symbolic link; bundles never contain links")
        case .hardlink:
            throw invalid("entry '\(rel)' is a hard link; bundles never contain links")
        case .other:
            throw invalid("entry '\(rel)' is a device, FIFO or socket")
        }
    }

    /// vault-format.md §2.4: an entry is one POSIX ustar header of type `expected` (`0` regular file, `5` directory),
    /// at most one pax extended header (`x`) before it with only the records the writer emits, and no sparse map.
    /// libarchive reads an old-style NUL or a contiguous-file `7` typeflag, a GNU sparse `S` entry and more as
    /// regular files; the raw header says what was stored.
    private func checkEncoding(of name: String, as expected: UInt8) throws {
        guard let encoding = tar.entryEncoding else { throw invalid("entry '\(name)': its tar header was not read") }
        let extensions = encoding.typeflags.dropLast()
        if let other = extensions.first(where: { $0 != UInt8(ascii: "x") }) {
            throw invalid("entry '\(name)' has a tar header of type \(TarEntryEncoding.describe(other)); bundles use only pax extended headers ('x')")
        }
        guard extensions.count <= 1 else { throw invalid("entry '\(name)' has \(extensions.count) pax extended headers; bundles use at most one") }
        guard encoding.typeflag == expected else {
            throw invalid("entry '\(name)' is stored as tar type \(TarEntryEncoding.describe(encoding.typeflag)), not \(TarEntryEncoding.describe(expected)); bundles hold only regular files ('0') and directories ('5')")
        }
        guard encoding.isPOSIXUstar else { throw invalid("entry '\(name)' is not in POSIX ustar format") }
        if let keyword = encoding.paxKeywords.first(where: { !Self.paxKeywords.contains($0) }) {
            throw invalid("entry '\(name)' has the pax record '\(keyword)'; bundles use only path, size and mtime")
        }
        guard !encoding.isSparse else { throw invalid("entry '\(name)' is a sparse file") }
    }

    /// The manifest must list exactly the entries seen, in order, with equal size, mode, mtime and hash. It is read
    /// entry by entry and each compared as it comes (`ManifestParser`), so it is never held decoded beside `seen`; the
    /// manifest returned is the one it spelled out, which then equals what was seen.
    func checkManifest(_ bytes: [UInt8], header: BundleHeader) throws -> Manifest {
        var index = 0
        let top: (format: String, bundleId: String, userId: String)
        do {
            top = try ManifestParser.parse(bytes) { listed in
                guard index < seen.count else { throw invalid("manifest lists '\(listed.path)', which the archive lacks") }
                // Manifest.Entry's == compares paths and hashes as bytes.
                guard listed == seen[index] else {
                    if !listed.path.utf8.elementsEqual(seen[index].path.utf8) {
                        throw invalid("archive entry '\(seen[index].path)' is not where the manifest lists '\(listed.path)'")
                    }
                    throw invalid("entry '\(listed.path)' differs from the manifest (size, mode, mtime or SHA-256)")
                }
                index += 1
            }
        } catch let error as VaultError {
            throw error
        } catch {
            throw invalid("manifest is not valid JSON of \(Manifest.formatName)")
        }
        guard top.format.utf8.elementsEqual(Manifest.formatName.utf8) else { throw invalid("manifest format '\(top.format)' is unknown") }
        guard top.bundleId.utf8.elementsEqual(header.bundleIdHex.utf8), top.userId.utf8.elementsEqual(header.userId.rawValue.utf8) else {
            throw invalid("manifest names bundle \(top.bundleId) of user \(top.userId), not this bundle")
        }
        if seen.count > index {
            throw invalid("entry '\(seen[index].path)' is not listed in the manifest")
        }
        return Manifest(bundleId: top.bundleId, userId: top.userId, entries: seen)
    }
}

extension BundleReader {
    /// Size of a bundle file in bytes.
    public static func fileSize(path: String) throws -> Int64 {
        guard let st = try Posix.status(path) else { throw VaultError.notFound(path: path, what: "bundle") }
        return st.size
    }
}
