/// Decompresses exactly one zstd frame pulled from a source, verifying its content checksum.
///
/// Only a standard RFC 8878 frame is read, and it must carry a content checksum: before zstd sees any byte, the
/// frame's magic number and header descriptor are checked here, so legacy (pre-1.0) frames that libzstd would
/// still decode, skippable frames, frames without a checksum and frames that need a dictionary are refused with
/// ``ArchiveError/unsupportedFrame(_:)``.
///
/// Memory use is bounded by the frame's window size (at most zstd's default limit of 128 MiB,
/// 2 MiB at level 3), never by the amount of data.
public final class ZstdDecompressor {
    private let context: ZstdDecompressionContext
    private let source: (UnsafeMutableRawBufferPointer) throws -> Int
    private var state = StreamState.open
    private var frameComplete = false
    private var frameHeaderChecked = false
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
        if !frameHeaderChecked {
            try checkFrameHeader()
            frameHeaderChecked = true
        }
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

    /// RFC 8878 §3.1.1: Magic_Number (4 bytes, little-endian 0xFD2FB528), then Frame_Header_Descriptor, whose bit 2
    /// is Content_Checksum_flag, bit 3 reserved (0) and bits 0–1 Dictionary_ID_flag (0: no dictionary).
    private func checkFrameHeader() throws {
        sourceExhausted = try context.fill(atLeast: 5, from: source)
        let head = context.bufferedInput
        guard head.count >= 5 else {
            throw ArchiveError.truncated("the zstd stream ended before the end of its frame")
        }
        let magic = UInt32(head[0]) | UInt32(head[1]) << 8 | UInt32(head[2]) << 16 | UInt32(head[3]) << 24
        let hex = "0x" + String(magic, radix: 16)
        guard magic == Self.frameMagic else {
            if magic & 0xFFFF_FFF0 == Self.skippableMagic {
                throw ArchiveError.unsupportedFrame("it starts with a skippable frame (magic \(hex))")
            }
            if magic & 0xFFFF_FF00 == Self.frameMagic & 0xFFFF_FF00 {
                throw ArchiveError.unsupportedFrame("it starts with the magic number of a legacy (pre-RFC 8878) zstd format, \(hex)")
            }
            throw ArchiveError.unsupportedFrame("it does not start with the zstd magic number 0xfd2fb528")
        }
        let descriptor = head[4]
        if descriptor & 0x08 != 0 { throw ArchiveError.unsupportedFrame("its frame header sets the reserved bit") }
        if descriptor & 0x04 == 0 { throw ArchiveError.unsupportedFrame("its frame header declares no content checksum") }
        if descriptor & 0x03 != 0 { throw ArchiveError.unsupportedFrame("its frame header names a dictionary") }
    }

    private static let frameMagic: UInt32 = 0xFD2F_B528
    /// Skippable frames: 0x184D2A50 ... 0x184D2A5F.
    private static let skippableMagic: UInt32 = 0x184D_2A50

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
