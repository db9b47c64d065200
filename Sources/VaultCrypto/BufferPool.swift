import Synchronization

/// Large I/O buffers (a bundle's chunk, read and write buffers, 256 KiB to 1 MiB each), kept for reuse instead of
/// being returned to the allocator when a bundle is done: glibc hands buffers this big out as fresh mappings, and
/// every bundle of an archive or restore would otherwise fault in and zero its buffers anew (issue 15: ~100 000 page
/// faults on a 145-user archive). A buffer is zeroed before it is kept (it held plaintext), and at most
/// `limitPerSize` buffers of each size are kept; the rest are freed.
public enum BufferPool {
    private static let limitPerSize = 8
    private struct Kept: @unchecked Sendable {
        var buffer: UnsafeMutableRawBufferPointer
    }
    private static let kept = Mutex<[Int: [Kept]]>([:])

    /// A buffer of exactly `size` bytes (16-byte aligned), contents unspecified. Give it back with `give`.
    public static func take(_ size: Int) -> UnsafeMutableRawBufferPointer {
        if let reused = kept.withLock({ $0[size]?.popLast() }) { return reused.buffer }
        return .allocate(byteCount: size, alignment: 16)
    }

    /// Zeroes `buffer` and keeps it for the next `take` of its size (or frees it when enough are kept).
    public static func give(_ buffer: UnsafeMutableRawBufferPointer) {
        cleanse(buffer)
        let entry = Kept(buffer: buffer)
        let keptIt = kept.withLock { all -> Bool in
            guard (all[buffer.count]?.count ?? 0) < limitPerSize else { return false }
            all[buffer.count, default: []].append(entry)
            return true
        }
        if !keptIt { buffer.deallocate() }
    }
}
