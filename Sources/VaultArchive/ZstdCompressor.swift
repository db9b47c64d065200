/// Compresses a byte stream into exactly one standard zstd frame that ends with a content checksum.
///
/// Output goes to `sink` as it is produced; memory use depends on the compression level only, never on
/// the amount of data. The frame is complete only after ``finish()``.
public final class ZstdCompressor {
    private let context: ZstdCompressionContext
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    private var state = StreamState.open

    /// Creates a compressor.
    /// - Parameters:
    ///   - level: the zstd compression level (1...19 are the usual levels; 3 is zstd's default).
    ///   - sink: receives compressed bytes; the buffer is only valid during the call. An error it throws
    ///     reaches the caller of ``write(_:)`` or ``finish()`` unchanged.
    ///   - workers: zstd worker threads (0, the default: compress on the calling thread). With workers, the
    ///     output is still one standard frame, but its bytes differ from single-threaded output, and memory
    ///     grows by about 3 × (workers + 2) × jobSize (bounded, independent of the input size).
    ///   - jobSize: bytes per parallel job when `workers` > 0 (zstd enforces at least 512 KiB).
    public init(level: Int32 = 3, workers: Int32 = 0, jobSize: Int32 = 2 << 20,
                sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        context = try ZstdCompressionContext(level: level, workers: workers, jobSize: jobSize)
        self.sink = sink
    }

    /// Whether ``changeLevel(_:)`` takes effect within the frame (worker threads: `workers` > 0 and a libzstd with
    /// threads). Without workers libzstd keeps the frame's first level.
    public var canChangeLevel: Bool { context.multithreaded }

    /// Compresses the bytes written after this call at `level`, within the same frame (the current zstd job ends
    /// here; see ``canChangeLevel``). The frame stays one standard frame any reader decodes. `fewMatches` tunes the
    /// match finder for data with few repeats (audio samples): a smaller hash table and longer minimum matches, faster
    /// at the cost of a fraction of a percent in size; without it the level's own match finder.
    public func changeLevel(_ level: Int32, fewMatches: Bool = false) throws {
        try state.throwIfFailed()
        precondition(!state.isFinished, "ZstdCompressor.changeLevel(_:) called after finish()")
        do {
            try context.changeLevel(level, fewMatches: fewMatches, sink: sink)
        } catch {
            state = .failed(error)
            throw error
        }
    }

    /// Compresses `bytes`; output may be held back inside zstd until later calls.
    ///
    /// After any error the compressor is unusable and rethrows that error. Calling this after
    /// ``finish()`` is a programming error.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try state.throwIfFailed()
        precondition(!state.isFinished, "ZstdCompressor.write(_:) called after finish()")
        guard !bytes.isEmpty else { return }
        do {
            try context.compress(bytes, endingFrame: false, sink: sink)
        } catch {
            state = .failed(error)
            throw error
        }
    }

    /// Flushes everything and writes the end of the frame with its checksum. Calling it again does nothing.
    public func finish() throws {
        try state.throwIfFailed()
        guard !state.isFinished else { return }
        do {
            try context.compress(UnsafeRawBufferPointer(start: nil, count: 0), endingFrame: true, sink: sink)
            state = .finished
        } catch {
            state = .failed(error)
            throw error
        }
    }
}
