import CZstd

/// Owns one `ZSTD_DCtx` and its reusable input buffer; every zstd call made for ``ZstdDecompressor``.
///
/// Released contexts go back to a small process-wide pool and are reused, reset to a new frame
/// (`ZSTD_reset_session_only`, which also clears any error): verifying or restoring many bundles does not allocate
/// and fault in a fresh window for each (issue 15).
final class ZstdDecompressionContext {
    private let dctx: OpaquePointer
    private let input: UnsafeMutableRawBufferPointer
    /// Unread input is `input[inputStart..<inputEnd]`.
    private var inputStart = 0
    private var inputEnd = 0

    private struct Pooled: @unchecked Sendable {
        var dctx: OpaquePointer
        var input: UnsafeMutableRawBufferPointer
    }

    /// At most 4 idle contexts are kept.
    private static let pool = IdlePool<Pooled>(limit: 4)

    init() throws {
        if let reused = Self.pool.take() {
            dctx = reused.dctx
            input = reused.input
            try checkZstd(ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only), "ZSTD_DCtx_reset")
            return
        }
        guard let dctx = ZSTD_createDCtx() else {
            throw ArchiveError.zstd(function: "ZSTD_createDCtx", message: "could not allocate a decompression context")
        }
        self.dctx = dctx
        input = .allocate(byteCount: ZSTD_DStreamInSize(), alignment: 16)
    }

    deinit {
        if Self.pool.keep(Pooled(dctx: dctx, input: input)) { return }
        ZSTD_freeDCtx(dctx)
        input.deallocate()
    }

    /// Input bytes read from the source but not yet given to zstd.
    var bufferedInputCount: Int { inputEnd - inputStart }

    /// The buffered input not yet given to zstd (valid until the next refill or decompress).
    var bufferedInput: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: input[inputStart..<inputEnd])
    }

    /// Before anything was given to zstd: reads from the source until at least `count` bytes are buffered or the
    /// source ends; returns whether it ended.
    func fill(atLeast count: Int, from source: (UnsafeMutableRawBufferPointer) throws -> Int) throws -> Bool {
        precondition(inputStart == 0 && count <= input.count, "fill(atLeast:) is only for the first bytes of the stream")
        while inputEnd < count {
            let n = try source(UnsafeMutableRawBufferPointer(rebasing: input[inputEnd...]))
            precondition((0...(input.count - inputEnd)).contains(n), "source returned \(n) for a \(input.count - inputEnd)-byte buffer")
            if n == 0 { return true }
            inputEnd += n
        }
        return false
    }

    /// Replaces the (fully consumed) input buffer with the source's next bytes; returns their count.
    func refill(from source: (UnsafeMutableRawBufferPointer) throws -> Int) throws -> Int {
        let count = try source(input)
        precondition((0...input.count).contains(count), "source returned \(count) for a \(input.count)-byte buffer")
        inputStart = 0
        inputEnd = count
        return count
    }

    /// Runs `ZSTD_decompressStream` once on the buffered input.
    func decompress(into output: UnsafeMutableRawBufferPointer) throws -> (produced: Int, frameComplete: Bool) {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: inputEnd, pos: inputStart)
        var outBuffer = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
        let hint = ZSTD_decompressStream(dctx, &outBuffer, &inBuffer)
        try checkZstd(hint, "ZSTD_decompressStream")
        inputStart = inBuffer.pos
        return (outBuffer.pos, hint == 0)
    }
}
