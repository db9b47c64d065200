import CZstd

/// Owns one `ZSTD_CCtx` and its reusable output buffer; every zstd call made for ``ZstdCompressor``.
///
/// Contexts are reused: when one is released its `ZSTD_CCtx` goes back to a small process-wide pool (keyed by its
/// worker count and job size, the parameters that shape its memory) and the next context with the same shape takes
/// it, reset to a new frame (`ZSTD_reset_session_only`) with its level set again. A `ZSTD_CCtx` with workers keeps
/// its threads and job buffers between frames, so an archive of many bundles does not allocate, zero and fault in
/// fresh buffers for every one (issue 15: ~40% of the archive's page faults came from new contexts).
final class ZstdCompressionContext {
    private let cctx: OpaquePointer
    private let output: UnsafeMutableRawBufferPointer
    private let shape: Shape

    /// Worker threads were accepted: only then does a level set mid-frame take effect (libzstd 1.5.4 accepts
    /// `ZSTD_c_compressionLevel` mid-frame with nbWorkers = 0 too, but ignores it until the next frame).
    private(set) var multithreaded = false
    /// Set when a call failed: such a context is freed, never pooled.
    private var failed = false

    private struct Shape: Equatable {
        var workers: Int32
        var jobSize: Int32
    }

    /// An idle context and its output buffer (the pool owns both).
    private struct Pooled: @unchecked Sendable {
        var cctx: OpaquePointer
        var output: UnsafeMutableRawBufferPointer
        var shape: Shape
        var multithreaded: Bool
    }

    /// At most 4 idle contexts are kept (one per archive worker on a small machine; more are freed).
    private static let pool = IdlePool<Pooled>(limit: 4)

    init(level: Int32, workers: Int32, jobSize: Int32) throws {
        let shape = Shape(workers: workers, jobSize: jobSize)
        self.shape = shape
        if let reused = Self.pool.take(where: { $0.shape == shape }) {
            cctx = reused.cctx
            output = reused.output
            multithreaded = reused.multithreaded
            // From here on a throw runs deinit (failed: freed, not pooled).
            failed = true
            try checkZstd(ZSTD_CCtx_reset(cctx, ZSTD_reset_session_only), "ZSTD_CCtx_reset")
            try setParameter(ZSTD_c_compressionLevel, level)
            // A session reset keeps parameters: a context last used for few-match data goes back to the level's own.
            try setMatchFinder(fewMatches: false)
            failed = false
            return
        }
        guard let cctx = ZSTD_createCCtx() else {
            throw ArchiveError.zstd(function: "ZSTD_createCCtx", message: "could not allocate a compression context")
        }
        self.cctx = cctx
        output = .allocate(byteCount: ZSTD_CStreamOutSize(), alignment: 16)
        // From here on a throw runs deinit, which frees both resources.
        failed = true
        try setParameter(ZSTD_c_compressionLevel, level)
        try setParameter(ZSTD_c_checksumFlag, 1)
        // workers 0: compress on the calling thread. Otherwise zstd's own threads compress jobs of `jobSize`
        // bytes in parallel (still one frame; memory grows with workers × jobSize, not with the input). A
        // libzstd built without threads refuses nbWorkers ≥ 1: then compress on the calling thread.
        if workers > 0, ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, workers)) == 0 {
            try setParameter(ZSTD_c_jobSize, jobSize)
            // A 1 MiB window for frames compressed with workers (vault-format.md §2.4: trees of 64 MiB or more, and
            // adaptive compression, which needs a worker to change levels): less memory for the workers' buffers and
            // for every reader of the bundle. Single-threaded frames keep zstd's own choice (their bytes are the
            // known-answer vectors').
            try setParameter(ZSTD_c_windowLog, 20)
            multithreaded = true
        } else {
            try setParameter(ZSTD_c_nbWorkers, 0)
        }
        failed = false
    }

    deinit {
        if !failed {
            if Self.pool.keep(Pooled(cctx: cctx, output: output, shape: shape, multithreaded: multithreaded)) { return }
        }
        ZSTD_freeCCtx(cctx)
        output.deallocate()
    }

    private func setParameter(_ parameter: ZSTD_cParameter, _ value: Int32) throws {
        try checkZstd(ZSTD_CCtx_setParameter(cctx, parameter, value), "ZSTD_CCtx_setParameter")
    }

    /// Ends the current job here with one `ZSTD_e_flush` step (the job is created from the buffered input with the
    /// current parameters; its output comes later, nothing waits for the workers) and sets `level` for the bytes fed
    /// afterwards: zstd applies it to the next job, within the same frame.
    ///
    /// `fewMatches`: also a 4 KiB match-finder hash table (hashLog 12) and matches of 7 bytes or more (minMatch 7), for
    /// data with few repeats (PCM audio: ~15 % less CPU at level 1, under 0.4 % more output, measured on the
    /// call corpus's WAV files); otherwise both go back to the level's own values (0). libzstd 1.5 applies these, as the
    /// level, to the next job of a frame compressed with workers (`ZSTDMT_updateCParams_whileCompressing` takes every
    /// compression parameter but the window).
    func changeLevel(_ level: Int32, fewMatches: Bool, sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        failed = true
        var inBuffer = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        var outBuffer = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
        try checkZstd(ZSTD_compressStream2(cctx, &outBuffer, &inBuffer, ZSTD_e_flush), "ZSTD_compressStream2")
        if outBuffer.pos > 0 {
            try sink(UnsafeRawBufferPointer(start: output.baseAddress, count: outBuffer.pos))
        }
        try setParameter(ZSTD_c_compressionLevel, level)
        try setMatchFinder(fewMatches: fewMatches)
        failed = false
    }

    private func setMatchFinder(fewMatches: Bool) throws {
        try setParameter(ZSTD_c_hashLog, fewMatches ? 12 : 0)
        try setParameter(ZSTD_c_minMatch, fewMatches ? 7 : 0)
    }

    /// Feeds all of `input` to zstd and hands every produced byte to `sink`. With `endingFrame`, keeps
    /// calling `ZSTD_e_end` until zstd reports the frame epilogue fully written.
    func compress(
        _ input: UnsafeRawBufferPointer,
        endingFrame: Bool,
        sink: (UnsafeRawBufferPointer) throws -> Void
    ) throws {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        let directive = endingFrame ? ZSTD_e_end : ZSTD_e_continue
        // A context that failed mid-frame (zstd or the sink threw) is freed, not pooled.
        failed = true
        while true {
            var outBuffer = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
            let remaining = ZSTD_compressStream2(cctx, &outBuffer, &inBuffer, directive)
            try checkZstd(remaining, "ZSTD_compressStream2")
            if outBuffer.pos > 0 {
                try sink(UnsafeRawBufferPointer(start: output.baseAddress, count: outBuffer.pos))
            }
            if endingFrame ? remaining == 0 : inBuffer.pos == inBuffer.size {
                failed = false
                return
            }
        }
    }
}

/// Turns a zstd `size_t` result into ``ArchiveError/zstd(function:message:)`` when it encodes an error.
func checkZstd(_ result: Int, _ function: String) throws {
    if ZSTD_isError(result) != 0 {
        throw ArchiveError.zstd(function: function, message: String(cString: ZSTD_getErrorName(result)))
    }
}

/// Estimates how well data compresses: one-shot compression of a small sample (no frame checksum) into a fixed buffer.
public final class ZstdSampler {
    private let cctx: OpaquePointer
    private let output: UnsafeMutableRawBufferPointer
    private let capacity: Int

    /// - Parameter capacity: the largest sample, in bytes.
    public init(capacity: Int = 64 << 10) throws {
        guard let cctx = ZSTD_createCCtx() else {
            throw ArchiveError.zstd(function: "ZSTD_createCCtx", message: "could not allocate a compression context")
        }
        self.cctx = cctx
        self.capacity = capacity
        output = .allocate(byteCount: ZSTD_compressBound(capacity), alignment: 16)
    }

    deinit {
        ZSTD_freeCCtx(cctx)
        output.deallocate()
    }

    /// Compressed size / input size of `sample` (at most `capacity` bytes are used) at `level`; 1 for an empty sample.
    public func ratio(_ sample: UnsafeRawBufferPointer, level: Int32) throws -> Double {
        let count = min(sample.count, capacity)
        guard count > 0, let base = sample.baseAddress else { return 1 }
        let n = ZSTD_compressCCtx(cctx, output.baseAddress, output.count, base, count, level)
        try checkZstd(n, "ZSTD_compressCCtx")
        return Double(n) / Double(count)
    }
}
