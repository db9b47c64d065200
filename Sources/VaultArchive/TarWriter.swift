/// Writes a deterministic POSIX pax tar stream to a sink.
///
/// The output depends only on the calls made: uid and gid are 0, no user or group names, no access or
/// change times, and nothing follows the two-block end-of-archive marker (no padding to a 10240-byte
/// record). Paths are stored as UTF-8, in a pax `path` record when they are not plain short ASCII.
///
/// A file is written as ``beginFile(path:size:mode:mtime:)``, any number of ``writeData(_:)`` calls
/// whose lengths add up to the declared size, then ``endFile()``. Starting another entry or calling
/// ``finish()`` while a file is open ends that file first, with the same size check. After any error
/// the writer is unusable and rethrows that error; using it after ``finish()`` is a programming error.
public final class TarWriter {
    private let archive: TarArchiveWriter
    private var state = StreamState.open
    /// The file whose data is being written, if any.
    private var openFile: (path: String, declared: Int64, remaining: Int64)?

    /// Creates a writer.
    /// - Parameter sink: receives the tar bytes as they are produced (unblocked: each header, each piece of data as
    ///   given to ``writeData(_:)``, each padding); the buffer is only valid during the call. An error it throws
    ///   reaches the caller unchanged.
    public init(sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        archive = try TarArchiveWriter(sink: sink)
    }

    /// Adds a directory entry. `mode` is masked to its permission bits (`0o7777`).
    public func addDirectory(path: String, mode: UInt32, mtime: Int64) throws {
        try perform {
            try endOpenFile()
            try archive.writeHeader(path: Self.validated(path), isDirectory: true, size: 0, mode: mode & 0o7777, mtime: mtime)
        }
    }

    /// Writes the header of a regular file whose data, `size` bytes, follows through ``writeData(_:)``.
    /// `mode` is masked to its permission bits (`0o7777`).
    public func beginFile(path: String, size: Int64, mode: UInt32, mtime: Int64) throws {
        try perform {
            try endOpenFile()
            let path = try Self.validated(path)
            guard size >= 0 else {
                throw ArchiveError.unsupportedEntry("\(path) has a negative size (\(size))")
            }
            try archive.writeHeader(path: path, isDirectory: false, size: size, mode: mode & 0o7777, mtime: mtime)
            openFile = (path, size, size)
        }
    }

    /// Appends data to the open file. Throws ``ArchiveError/sizeMismatch(_:)`` (writing nothing) if this
    /// would exceed the declared size or if no file is open.
    public func writeData(_ bytes: UnsafeRawBufferPointer) throws {
        try perform {
            guard let file = openFile else {
                throw ArchiveError.sizeMismatch("data written while no file is open")
            }
            guard Int64(bytes.count) <= file.remaining else {
                let total = file.declared - file.remaining + Int64(bytes.count)
                throw ArchiveError.sizeMismatch("\(file.path): declared size \(file.declared), got \(total)")
            }
            guard !bytes.isEmpty else { return }
            try archive.writeData(bytes)
            openFile?.remaining -= Int64(bytes.count)
        }
    }

    /// Ends the open file. Throws ``ArchiveError/sizeMismatch(_:)`` if fewer bytes than declared were
    /// written, or if no file is open.
    public func endFile() throws {
        try perform {
            guard openFile != nil else {
                throw ArchiveError.sizeMismatch("endFile() called while no file is open")
            }
            try endOpenFile()
        }
    }

    /// Adds a regular file with the given contents.
    public func addFile(path: String, contents: [UInt8], mode: UInt32, mtime: Int64) throws {
        try beginFile(path: path, size: Int64(contents.count), mode: mode, mtime: mtime)
        try contents.withUnsafeBytes { try writeData($0) }
        try endFile()
    }

    /// Ends any open file, writes the end-of-archive marker and flushes everything to the sink.
    /// Calling it again does nothing.
    public func finish() throws {
        try state.throwIfFailed()
        guard !state.isFinished else { return }
        try perform {
            try endOpenFile()
            try archive.close()
        }
        state = .finished
    }

    /// Runs `body`, making any error it throws sticky.
    private func perform(_ body: () throws -> Void) throws {
        try state.throwIfFailed()
        precondition(!state.isFinished, "TarWriter used after finish()")
        do {
            try body()
        } catch {
            state = .failed(error)
            throw error
        }
    }

    private func endOpenFile() throws {
        guard let file = openFile else { return }
        guard file.remaining == 0 else {
            throw ArchiveError.sizeMismatch("\(file.path): declared size \(file.declared), got \(file.declared - file.remaining)")
        }
        openFile = nil
        try archive.finishEntry()
    }

    /// Rejects paths a tar header cannot carry: empty, or containing NUL (C strings end there).
    private static func validated(_ path: String) throws -> String {
        guard !path.isEmpty else {
            throw ArchiveError.unsupportedEntry("an entry path is empty")
        }
        guard !path.utf8.contains(0) else {
            throw ArchiveError.unsupportedEntry("the path \(path.debugDescription) contains a NUL character")
        }
        return path
    }
}
