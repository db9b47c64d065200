/// Decompresses exactly one zstd frame pulled from a source, verifying its content checksum.
///
/// Memory use is bounded by the frame's window size (at most zstd's default limit of 128 MiB,
/// 2 MiB at level 3), never by the amount of data.
public final class ZstdDecompressor {
    private let context: ZstdDecompressionContext
    private let source: (UnsafeMutableRawBufferPointer) throws -> Int
    private var state = StreamState.open
    private var frameComplete = false
    private var sourceExhausted = false

    /// Creates a decompressor.
    /// - Parameter source: fills the buffer with up to `buffer.count` bytes and returns the count, 0 at
    ///   the end of the stream; short reads are fine. An error it throws reaches the caller of
    ///   ``read(into:)`` unchanged.
    public init(source: @escaping (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        context = try ZstdDecompressionContext()
        self.source = source
    }

    /// Decompresses into `buffer` (which must not be empty) and returns the number of bytes written.
    ///
    /// Returns 0 only after exactly one complete frame was decoded, its checksum verified, and the
    /// source reported its end. Throws ``ArchiveError/truncated(_:)`` if the source ends inside the
    /// frame and ``ArchiveError/trailingData(_:)`` if any byte follows the frame. Errors are sticky.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try state.throwIfFailed()
        if state.isFinished { return 0 }
        precondition(!buffer.isEmpty, "ZstdDecompressor.read(into:) needs a non-empty buffer")
        do {
            let count = try decompress(into: buffer)
            if count == 0 { state = .finished }
            return count
        } catch {
            state = .failed(error)
            throw error
        }
    }

    private func decompress(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            if frameComplete {
                try requireEndOfSource()
                return 0
            }
            if context.bufferedInputCount == 0 && !sourceExhausted {
                sourceExhausted = try context.refill(from: source) == 0
            }
            let step = try context.decompress(into: buffer)
            frameComplete = step.frameComplete
            if step.produced > 0 {
                return step.produced
            }
            if !frameComplete && sourceExhausted && context.bufferedInputCount == 0 {
                throw ArchiveError.truncated("the zstd stream ended before the end of its frame")
            }
        }
    }

    /// After the frame: the rest of the buffered input and the source must be empty.
    private func requireEndOfSource() throws {
        var extra = context.bufferedInputCount
        if extra == 0 && !sourceExhausted {
            extra = try context.refill(from: source)
            sourceExhausted = extra == 0
        }
        if extra > 0 {
            throw ArchiveError.trailingData("found \(extra) more byte\(extra == 1 ? "" : "s") after the zstd frame")
        }
    }
}
