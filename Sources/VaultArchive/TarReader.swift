/// Reads a tar stream (ustar, pax or GNU tar) pulled from a source, through libarchive.
///
/// The source supplies the uncompressed tar bytes; no decompression is attempted. Reading is strict:
/// the stream must end with the two-block end-of-archive marker (``ArchiveError/truncated(_:)``
/// otherwise), header warnings from libarchive are errors, and ``finish()`` checks that only zero
/// bytes follow the marker. Errors thrown by the source reach the caller unchanged; every error is
/// sticky.
///
/// Paths are reported as stored, byte for byte; the reader does not judge them (absolute paths and `..`
/// components are the extracting code's concern), nor the header types libarchive folds into regular files
/// (``entryEncoding`` reports them). An entry whose header blocks (extension headers included) do not fit in the
/// reader's two 64 KiB read buffers cannot be re-read for ``entryEncoding`` and is refused.
public final class TarReader {
    private enum Position {
        case beforeFirstEntry
        case inEntry
        case atEndOfArchive
    }

    private let archive: TarArchiveReader
    private var state = StreamState.open
    private var position = Position.beforeFirstEntry

    /// How the entry that ``nextEntry()`` last returned is stored (its raw header blocks); nil before the first
    /// entry and at the end of the archive.
    public private(set) var entryEncoding: TarEntryEncoding?

    /// Creates a reader; libarchive reads the first block from `source` to recognise the format.
    /// - Parameter source: fills the buffer with up to `buffer.count` bytes and returns the count, 0 at
    ///   the end of the stream; short reads are fine.
    public init(source: @escaping (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        archive = try TarArchiveReader(source: source)
    }

    /// Reads the next header, skipping any unread data of the current entry; `nil` at the end of the
    /// archive (and on every later call).
    public func nextEntry() throws -> TarEntryHeader? {
        try state.throwIfFailed()
        if state.isFinished || position == .atEndOfArchive { return nil }
        return try perform {
            entryEncoding = nil
            guard let (header, encoding) = try archive.nextHeader() else {
                position = .atEndOfArchive
                return nil
            }
            position = .inEntry
            entryEncoding = encoding
            return header
        }
    }

    /// Reads the current entry's data into `buffer` (which must not be empty); 0 at the end of the
    /// entry's data, or when there is no current entry.
    public func readData(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try state.throwIfFailed()
        guard position == .inEntry, !state.isFinished else { return 0 }
        precondition(!buffer.isEmpty, "TarReader.readData(into:) needs a non-empty buffer")
        return try perform { try archive.readData(into: buffer) }
    }

    /// The next piece of the current entry's data where the reader holds it, without a copy: valid only until the
    /// next call on this reader. Empty at the end of the entry's data, or when there is no current entry.
    public func readDataBlock() throws -> UnsafeRawBufferPointer {
        try state.throwIfFailed()
        guard position == .inEntry, !state.isFinished else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return try perform { try archive.readDataBlock() }
    }

    /// After ``nextEntry()`` returned `nil`: reads the source to its end and throws
    /// ``ArchiveError/trailingData(_:)`` if any byte after the end-of-archive marker is not zero.
    /// Calling it again does nothing; calling it before the end of the archive is a programming error.
    public func finish() throws {
        try state.throwIfFailed()
        guard !state.isFinished else { return }
        precondition(position == .atEndOfArchive, "TarReader.finish() called before nextEntry() returned nil")
        try perform {
            try archive.requireZeroUnconsumedBytes()
            try archive.drainRequiringZeros()
        }
        state = .finished
    }

    /// Runs `body`, making any error it throws sticky.
    private func perform<Result>(_ body: () throws -> Result) throws -> Result {
        do {
            return try body()
        } catch {
            state = .failed(error)
            throw error
        }
    }
}
