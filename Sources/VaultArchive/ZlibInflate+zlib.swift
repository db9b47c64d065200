import CZlib

/// Owns one `z_stream` set up for inflation; every zlib call made for ``zlibInflate(_:)``.
///
/// The stream lives at a fixed heap address: zlib keeps a pointer back to it and rejects a moved copy.
final class ZlibInflateStream {
    private static let chunkSize = 64 * 1024

    private let stream: UnsafeMutablePointer<z_stream>
    private var initialized = false

    init() throws {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())  // zalloc, zfree, opaque = Z_NULL: zlib's default allocator
        // From here on a throw runs deinit.
        try check(inflateInit_(stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size)), "inflateInit_")
        initialized = true
    }

    deinit {
        if initialized { inflateEnd(stream) }
        stream.deinitialize(count: 1)
        stream.deallocate()
    }

    /// Inflates all of `input`, which must hold exactly one zlib stream.
    func inflate(_ input: [UInt8]) throws -> [UInt8] {
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: Self.chunkSize)
        return try input.withUnsafeBufferPointer { input in
            var fed = 0
            while true {
                // avail_in is 32 bits: feed very large inputs in pieces.
                if stream.pointee.avail_in == 0 && fed < input.count {
                    let piece = min(input.count - fed, Int(UInt32.max))
                    stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress! + fed)
                    stream.pointee.avail_in = UInt32(piece)
                    fed += piece
                }
                let (result, produced) = chunk.withUnsafeMutableBufferPointer { chunk in
                    stream.pointee.next_out = chunk.baseAddress
                    stream.pointee.avail_out = UInt32(chunk.count)
                    let result = CZlib.inflate(stream, Z_NO_FLUSH)
                    return (result, chunk.count - Int(stream.pointee.avail_out))
                }
                output.append(contentsOf: chunk[0..<produced])
                switch result {
                case Z_STREAM_END:
                    let unread = Int(stream.pointee.avail_in) + (input.count - fed)
                    guard unread == 0 else {
                        throw ArchiveError.trailingData("found \(unread) more byte\(unread == 1 ? "" : "s") after the zlib stream")
                    }
                    return output
                case Z_OK:
                    continue
                case Z_BUF_ERROR where stream.pointee.avail_in == 0 && fed == input.count:
                    throw ArchiveError.truncated("the zlib stream ended before its checksum")
                case Z_NEED_DICT:
                    throw ArchiveError.zlib(function: "inflate", message: "the stream needs a preset dictionary")
                default:
                    try check(result, "inflate")
                    throw ArchiveError.zlib(function: "inflate", message: "unexpected result \(result)")
                }
            }
        }
    }

    /// Throws a zlib error naming `function` unless `result` is Z_OK.
    private func check(_ result: Int32, _ function: String) throws {
        guard result != Z_OK else { return }
        let message = stream.pointee.msg.map { String(cString: $0) } ?? String(cString: zError(result))
        throw ArchiveError.zlib(function: function, message: message)
    }
}
