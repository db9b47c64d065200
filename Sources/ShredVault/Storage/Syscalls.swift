#if canImport(Glibc)
import Glibc
#endif
import CPosix
import VaultCrypto

// Every POSIX call of the ShredVault library goes through this file, and every failure becomes
// `VaultError.io(operation:path:errno:)` naming the call.

/// Process-wide memory settings of the jobs.
public enum ProcessMemory {
    /// glibc raises its mmap threshold after large blocks are freed, and then keeps MiB-sized buffers (zstd jobs, the
    /// read and write buffers of every bundle) in its heaps after they are freed: a fixed threshold hands them back,
    /// which keeps the resident memory of the archive of a big user bounded. Advisory: returns false when refused
    /// (only memory use changes).
    @discardableResult
    public static func returnLargeBuffers(threshold: Int32 = 256 << 10) -> Bool {
        shredvault_fix_mmap_threshold(threshold) == 1
    }
}

/// Owns one open file descriptor; closes it in deinit.
final class FileDescriptor {
    let path: String
    private(set) var fd: Int32

    init(open path: String, flags: Int32, mode: mode_t = 0o600) throws {
        self.path = path
        var result: Int32
        repeat { result = Glibc.open(path, flags | O_CLOEXEC, mode) } while result < 0 && errno == EINTR
        guard result >= 0 else { throw VaultError.io(operation: "open", path: path, errno: errno) }
        self.fd = result
    }

    deinit { if fd >= 0 { _ = Glibc.close(fd) } }

    /// Reads up to `buffer.count` bytes; 0 at end of file.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        while true {
            let n = Glibc.read(fd, base, buffer.count)
            if n >= 0 { return n }
            if errno != EINTR { throw VaultError.io(operation: "read", path: path, errno: errno) }
        }
    }


    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw VaultError.io(operation: "write", path: path, errno: errno)
            }
            offset += n
        }
    }

    func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Writes all of `bytes` at `offset` (pwrite: the file position is untouched, so threads may write distinct
    /// ranges of one file at once).
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw VaultError.io(operation: "pwrite", path: path, errno: errno)
            }
            done += n
        }
    }

    func sync() throws {
        guard fsync(fd) == 0 else { throw VaultError.io(operation: "fsync", path: path, errno: errno) }
    }

    /// Starts writeback of the file's dirty pages without waiting (sync_file_range). Advisory: when the kernel
    /// refuses (a file system without support), the later `sync()` simply does all the work; durability comes
    /// only from `sync()`.
    func startWriteback() {
        _ = shredvault_start_writeback(fd)  // advisory, see above: a refusal changes nothing but timing
    }

    /// Reserves the blocks of a file about to be written with `bytes` bytes (fallocate, keeping the size at what
    /// is written). Advisory, like `startWriteback`: where the file system refuses (no support, no space), the
    /// writes that follow allocate as usual and report what is wrong themselves. Returns whether the blocks were
    /// reserved.
    @discardableResult
    func preallocate(_ bytes: Int64) -> Bool {
        guard bytes > 0 else { return false }
        return shredvault_preallocate(fd, bytes) == 0  // advisory, see above: a refusal changes nothing but speed
    }

    func status() throws -> stat {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw VaultError.io(operation: "fstat", path: path, errno: errno) }
        return st
    }

    func setPermissions(_ mode: UInt32) throws {
        guard fchmod(fd, mode_t(mode)) == 0 else { throw VaultError.io(operation: "fchmod", path: path, errno: errno) }
    }

    func setModificationTime(_ seconds: Int64) throws {
        var times = [timespec(tv_sec: Int(seconds), tv_nsec: 0), timespec(tv_sec: Int(seconds), tv_nsec: 0)]
        guard futimens(fd, &times) == 0 else { throw VaultError.io(operation: "futimens", path: path, errno: errno) }
    }

    func close() throws {
        let result = Glibc.close(fd)
        fd = -1
        guard result == 0 else { throw VaultError.io(operation: "close", path: path, errno: errno) }
    }
}

/// A file that was written and renamed into place without fsync, its writeback already started. Jobs that
/// write many files collect these and make them durable together (`sync()`: fsync, then close) before they
/// commit anything that relies on them; until then the catalog still marks them as unfinished.
final class PendingSync: @unchecked Sendable {
    private let file: FileDescriptor

    init(_ file: FileDescriptor) {
        self.file = file
        file.startWriteback()
    }

    func sync() throws {
        try file.sync()
        try file.close()
    }
}

/// A file written through a large buffer (bundle output).
final class BufferedOutput {
    let file: FileDescriptor
    private var buffer: UnsafeMutableRawBufferPointer
    private var used = 0
    private(set) var bytesWritten: UInt64 = 0
    /// Bytes handed to `write(2)` so far (`bytesWritten` less what is still buffered).
    private(set) var bytesFlushed: UInt64 = 0
    /// Called after every `write(2)` with `bytesFlushed`: those bytes are in the file (the archive's verifier reads
    /// the file up to there while the rest is being produced).
    var onFlushed: ((UInt64) throws -> Void)?
    /// When not 0: start the file's writeback (advisory, `startWriteback`) every time this many more bytes were
    /// written, so a big file goes to the disk while it is produced instead of all at its fsync.
    var writebackEvery: UInt64 = 0
    private var writebackAt: UInt64 = 0

    init(_ file: FileDescriptor, capacity: Int = 1 << 20) {
        self.file = file
        self.buffer = BufferPool.take(capacity)
    }

    deinit { BufferPool.give(buffer) }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        bytesWritten += UInt64(bytes.count)
        if bytes.count >= buffer.count {
            try flush()
            try file.write(bytes)
            try flushed(bytes.count)
            return
        }
        if used + bytes.count > buffer.count { try flush() }
        UnsafeMutableRawBufferPointer(rebasing: buffer[used..<(used + bytes.count)]).copyMemory(from: bytes)
        used += bytes.count
    }

    func flush() throws {
        guard used > 0 else { return }
        try file.write(UnsafeRawBufferPointer(rebasing: buffer[0..<used]))
        let count = used
        used = 0
        try flushed(count)
    }

    private func flushed(_ count: Int) throws {
        bytesFlushed += UInt64(count)
        try onFlushed?(bytesFlushed)
        pace()
    }

    private func pace() {
        guard writebackEvery > 0, bytesWritten >= writebackAt + writebackEvery else { return }
        writebackAt = bytesWritten
        file.startWriteback()
    }
}

/// Bytes read in order from a file or anything like one (a bundle being written, `BundleWriter`'s verifier);
/// `path` names it in errors. `read(into:)` returns 0 only at the end.
protocol ByteSource: AnyObject {
    var path: String { get }
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

extension ByteSource {
    /// Reads until `count` bytes or the end.
    func read(upTo count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var filled = 0
        try out.withUnsafeMutableBytes { raw in
            while filled < count {
                let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: raw[filled...]))
                if n == 0 { break }
                filled += n
            }
        }
        out.removeSubrange(filled...)
        return out
    }
}

extension FileDescriptor: ByteSource {}

/// A source that hashes every byte it reads (the bundle file's SHA-256) and can instead lend a read to its hasher
/// (`SHA256.lend`), so that the bytes are hashed later, paired with the plaintext hashed on the same thread.
protocol LendingSource: ByteSource {
    /// The hasher of the bytes read.
    var hasher: SHA256 { get }
    /// Reads like `read(into:)` without hashing: `read(into:)` and `readLending(into:)` hash what it returns.
    func readUnhashed(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

extension LendingSource {
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try read(into: buffer, lending: false)
    }

    /// Reads like `read(into:)`, but lends the bytes to `hasher` instead of hashing them at once. Before it reads,
    /// it settles what was lent before; the caller keeps `buffer` unchanged until its next read from this source or
    /// `hasher.settle()`.
    func readLending(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try read(into: buffer, lending: true)
    }

    private func read(into buffer: UnsafeMutableRawBufferPointer, lending: Bool) throws -> Int {
        // Bytes lent by the previous read may be in `buffer`: hash them before it is overwritten.
        try hasher.settle()
        let n = try readUnhashed(into: buffer)
        let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
        if lending { try hasher.lend(chunk) } else { try hasher.update(chunk) }
        return n
    }
}

/// A file read through a large buffer (bundle input).
final class BufferedInput {
    let file: any ByteSource
    private let lending: (any LendingSource)?
    private var buffer: UnsafeMutableRawBufferPointer
    private var start = 0
    private var end = 0

    /// - Parameter lend: when `file` is a `LendingSource`, lend every buffer it fills to its hasher
    ///   (`lender`): the bytes stay in the buffer until the next fill, and are settled before that fill and when
    ///   this input goes away.
    init(_ file: any ByteSource, capacity: Int = 1 << 18, lend: Bool = false) {
        self.file = file
        self.lending = lend ? file as? any LendingSource : nil
        self.buffer = BufferPool.take(capacity)
    }

    /// The hasher whose lent bytes are in this input's buffer, if any: hash plaintext with
    /// `update(_:pairedWith: lender)` on the thread that reads this input.
    var lender: SHA256? { lending?.hasher }

    deinit {
        // Hash what is still lent before the buffer is zeroed; a failure here stays in the hasher and fails its
        // digest (csha256.h), so it is never lost.
        try? lending?.hasher.settle()
        BufferPool.give(buffer)
    }

    func read(into out: UnsafeMutableRawBufferPointer) throws -> Int {
        if start == end {
            if out.count >= buffer.count { return try file.read(into: out) }
            guard try fill() else { return 0 }
        }
        let n = min(out.count, end - start)
        out.baseAddress!.copyMemory(from: buffer.baseAddress! + start, byteCount: n)
        start += n
        return n
    }

    /// The next bytes, at most `count`, in place in this input's buffer, consumed as `read` would consume them:
    /// valid until the next `read` or `view` (which may refill the buffer). Empty only at the end of the file.
    func view(upTo count: Int) throws -> UnsafeRawBufferPointer {
        if start == end {
            guard try fill() else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        }
        let n = min(count, end - start)
        defer { start += n }
        return UnsafeRawBufferPointer(start: buffer.baseAddress! + start, count: n)
    }

    /// Refills the (fully consumed) buffer; false at the end of the file.
    private func fill() throws -> Bool {
        start = 0
        if let lending {
            end = try lending.readLending(into: buffer)
        } else {
            end = try file.read(into: buffer)
        }
        return end > 0
    }
}

enum FileKind { case regular, directory, symlink, other }

struct FileStatus {
    var kind: FileKind
    var size: Int64
    var mode: UInt32
    var mtime: Int64
}

enum Posix {
    /// lstat; nil when the path does not exist.
    static func status(_ path: String) throws -> FileStatus? {
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return nil }
            throw VaultError.io(operation: "lstat", path: path, errno: errno)
        }
        return FileStatus(st)
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    /// Entry names of a directory (without `.` and `..`), sorted by their UTF-8 bytes.
    static func listDirectory(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else { throw VaultError.io(operation: "opendir", path: path, errno: errno) }
        defer { closedir(dir) }
        var names = [String]()
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 { throw VaultError.io(operation: "readdir", path: path, errno: errno) }
                break
            }
            let name = try withUnsafeBytes(of: entry.pointee.d_name) { raw -> String? in
                let bytes = Array(raw.prefix { $0 != 0 })
                if bytes == [0x2e] || bytes == [0x2e, 0x2e] { return nil }
                guard let s = String(validating: bytes, as: UTF8.self) else {
                    throw VaultError.invalidSource(path: path, reason: "a file name in this directory is not valid UTF-8; rename it")
                }
                return s
            }
            if let name { names.append(name) }
        }
        return names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }

    static func makeDirectory(_ path: String, mode: UInt32) throws {
        guard mkdir(path, mode_t(mode)) == 0 else { throw VaultError.io(operation: "mkdir", path: path, errno: errno) }
    }

    /// Atomically moves `from` to `to`, failing with `targetExists` instead of replacing anything.
    static func renameNoReplace(_ from: String, _ to: String) throws {
        guard shredvault_rename_noreplace(AT_FDCWD, from, AT_FDCWD, to) == 0 else {
            if errno == EEXIST || errno == ENOTEMPTY { throw VaultError.targetExists(path: to) }
            throw VaultError.io(operation: "renameat2", path: to, errno: errno)
        }
    }

    static func unlinkFile(_ path: String) throws {
        guard unlink(path) == 0 else { throw VaultError.io(operation: "unlink", path: path, errno: errno) }
    }

    /// unlink; false when the file did not exist.
    static func unlinkIfPresent(_ path: String) throws -> Bool {
        if unlink(path) == 0 { return true }
        if errno == ENOENT { return false }
        throw VaultError.io(operation: "unlink", path: path, errno: errno)
    }

    static func setPermissions(_ path: String, _ mode: UInt32) throws {
        guard chmod(path, mode_t(mode)) == 0 else { throw VaultError.io(operation: "chmod", path: path, errno: errno) }
    }

    static func setModificationTime(_ path: String, _ seconds: Int64) throws {
        var times = [timespec(tv_sec: Int(seconds), tv_nsec: 0), timespec(tv_sec: Int(seconds), tv_nsec: 0)]
        guard utimensat(AT_FDCWD, path, &times, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw VaultError.io(operation: "utimensat", path: path, errno: errno)
        }
    }

    /// fsync of a directory, making renames and creations in it durable.
    static func syncDirectory(_ path: String) throws {
        let dir = try FileDescriptor(open: path, flags: O_RDONLY | O_DIRECTORY)
        try dir.sync()
    }

    /// Removes a tree that this process created (temporary extraction directories), making read-only
    /// directories writable first. Symlinks are removed, never followed.
    static func removeTree(_ path: String) throws {
        guard let st = try status(path) else { return }
        if st.kind == .directory {
            try setPermissions(path, 0o700)
            for name in try listDirectory(path) { try removeTree(path + "/" + name) }
            guard rmdir(path) == 0 else { throw VaultError.io(operation: "rmdir", path: path, errno: errno) }
        } else {
            try unlinkFile(path)
        }
    }

    static var currentUnixTime: Int64 { Int64(time(nil)) }

    /// Directory part of a path ("." when it has none).
    static func directoryName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func baseName(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// The canonical absolute path (realpath(3): symbolic links, `.` and `..` resolved); nil when it does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// The first `count` bytes of a file (fewer if it is shorter).
    static func readPrefix(_ path: String, count: Int) throws -> [UInt8] {
        let file = try FileDescriptor(open: path, flags: O_RDONLY)
        return try file.read(upTo: count)
    }
}

extension FileStatus {
    init(_ st: stat) {
        switch st.st_mode & S_IFMT {
        case S_IFREG: kind = .regular
        case S_IFDIR: kind = .directory
        case S_IFLNK: kind = .symlink
        default: kind = .other
        }
        size = Int64(st.st_size)
        mode = UInt32(st.st_mode & 0o7777)
        mtime = Int64(st.st_mtim.tv_sec)
    }
}

/// An exclusive advisory lock (flock) on a file, held until released or the process exits.
final class FileLock {
    private let file: FileDescriptor

    /// Waits up to `wait` seconds (0 = don't wait) for the lock; throws `VaultError.locked` when it stays taken.
    /// `shared`: read-only jobs take a shared lock, so they run beside each other but never beside a writer.
    init(path: String, wait: Double, shared: Bool = false) throws {
        // O_NOFOLLOW: a symbolic link planted at the lock's name is refused (ELOOP), never followed to create or lock
        // a file elsewhere.
        file = try FileDescriptor(open: path, flags: O_RDWR | O_CREAT | O_NOFOLLOW, mode: 0o600)
        let deadline = Double(time(nil)) + max(0, wait)
        while flock(file.fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else { throw VaultError.io(operation: "flock", path: path, errno: errno) }
            guard Double(time(nil)) < deadline else { throw VaultError.locked(path: path) }
            usleep(100_000)
        }
    }

    /// A read-only job's shared lock, needing no write access to the vault: the lock file is opened read-only
    /// (`flock` works on any descriptor) and never followed through a symbolic link; it is created only when it is
    /// missing and the directory allows it. Where it cannot be opened at all (a read-only file system that has none, a
    /// lock file this user may not read), the job takes no lock and reads as it finds the vault: the descriptor held is
    /// the vault directory's, locked by nothing.
    init(readOnlyAt path: String, wait: Double) throws {
        func unavailable(_ code: Int32) -> Bool { code == EACCES || code == EPERM || code == EROFS }
        var lockable = true
        do {
            file = try FileDescriptor(open: path, flags: O_RDONLY | O_NOFOLLOW)
        } catch VaultError.io(_, _, let code) where code == ENOENT {
            do {
                file = try FileDescriptor(open: path, flags: O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600)
            } catch VaultError.io(_, _, let code) where code == EEXIST {
                file = try FileDescriptor(open: path, flags: O_RDONLY | O_NOFOLLOW)  // a job made it meanwhile
            } catch VaultError.io(_, _, let code) where unavailable(code) {
                file = try FileDescriptor(open: Posix.directoryName(path), flags: O_RDONLY | O_DIRECTORY)
                lockable = false
            }
        } catch VaultError.io(_, _, let code) where unavailable(code) {
            file = try FileDescriptor(open: Posix.directoryName(path), flags: O_RDONLY | O_DIRECTORY)
            lockable = false
        }
        guard lockable else { return }
        let deadline = Double(time(nil)) + max(0, wait)
        while flock(file.fd, LOCK_SH | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else { throw VaultError.io(operation: "flock", path: path, errno: errno) }
            guard Double(time(nil)) < deadline else { throw VaultError.locked(path: path) }
            usleep(100_000)
        }
    }

    deinit { _ = flock(file.fd, LOCK_UN) }
}

extension Posix {
    /// A whole file, read into a buffer sized by fstat (plus one byte to notice growth), not by the limit.
    static func readFile(_ path: String, maxLength: Int) throws -> [UInt8] {
        let file = try FileDescriptor(open: path, flags: O_RDONLY)
        let size = Int(try file.status().st_size)
        guard size <= maxLength else { throw VaultError.invalidArgument("\(path) is larger than \(maxLength) bytes") }
        let bytes = try file.read(upTo: size + 1)
        guard bytes.count <= maxLength else { throw VaultError.invalidArgument("\(path) is larger than \(maxLength) bytes") }
        return bytes
    }

    static func readTextFile(_ path: String, maxLength: Int = 64 << 20) throws -> String {
        let bytes = try readFile(path, maxLength: maxLength)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw VaultError.malformedInput(path: path, line: 1, reason: "not valid UTF-8")
        }
        return text
    }

    /// Writes a small file atomically: temporary file, fsync, rename over `path`, fsync of the directory.
    static func writeFileAtomically(_ path: String, _ bytes: [UInt8], mode: UInt32 = 0o600, syncDirectory sync: Bool = true) throws {
        _ = try writeAndRename(path, bytes, mode: mode) { file in
            try file.sync()
            try file.close()
        }
        if sync { try syncDirectory(directoryName(path)) }
    }

    /// `writeFileAtomically` without the fsyncs: the file is renamed into place unsynced and returned for a
    /// grouped `PendingSync.sync()`; the caller fsyncs the directory after that.
    static func writeFileDeferringSync(_ path: String, _ bytes: [UInt8], mode: UInt32 = 0o600) throws -> PendingSync {
        PendingSync(try writeAndRename(path, bytes, mode: mode) { _ in })
    }

    /// Writes `bytes` to a temporary file beside `path`, runs `beforeRename` on it, then renames it over `path`;
    /// on any error the temporary file is removed. Returns the file (open unless `beforeRename` closed it).
    private static func writeAndRename(_ path: String, _ bytes: [UInt8], mode: UInt32,
                                       beforeRename: (FileDescriptor) throws -> Void) throws -> FileDescriptor {
        let temporary = path + ".tmp-" + String(getpid()) + "-" + String(UInt64(pthread_self()) & 0xffff_ffff)
        let file = try createExclusive(temporary, mode: mode)
        do {
            try file.write(bytes)
            try beforeRename(file)
            guard rename(temporary, path) == 0 else { throw VaultError.io(operation: "rename", path: path, errno: errno) }
            return file
        } catch {
            _ = unlink(temporary)
            throw error
        }
    }

    /// Creates a new file with `O_CREAT|O_EXCL|O_NOFOLLOW` (never through a symbolic link, never reusing a file). A
    /// file already at a per-process temporary name (`NAME.tmp-<pid>-<tid>`) can only be left by a dead process whose
    /// pid and thread id this one reuses, or planted: it is unlinked (a link itself, not its target) and the create
    /// retried once.
    static func createExclusive(_ path: String, mode: UInt32) throws -> FileDescriptor {
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW
        do {
            return try FileDescriptor(open: path, flags: flags, mode: mode_t(mode))
        } catch VaultError.io(_, _, EEXIST) {
            guard unlink(path) == 0 || errno == ENOENT else { throw VaultError.io(operation: "unlink", path: path, errno: errno) }
            return try FileDescriptor(open: path, flags: flags, mode: mode_t(mode))
        }
    }

    /// Creates a new empty file with mode 0600 that must not exist (a database about to be created), fsyncing nothing:
    /// the database's own creation syncs.
    static func createPrivateFile(_ path: String) throws {
        try FileDescriptor(open: path, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600).close()
    }

    /// mkdir -p with a mode for each created directory; fsyncs each new directory's parent.
    static func makeDirectories(_ path: String, mode: UInt32) throws {
        if let st = try status(path) {
            guard st.kind == .directory else { throw VaultError.io(operation: "mkdir", path: path, errno: ENOTDIR) }
            return
        }
        let parent = directoryName(path)
        if parent != path { try makeDirectories(parent, mode: mode) }
        if mkdir(path, mode_t(mode)) != 0 && errno != EEXIST { throw VaultError.io(operation: "mkdir", path: path, errno: errno) }
        try syncDirectory(parent)
    }

    static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }
}
