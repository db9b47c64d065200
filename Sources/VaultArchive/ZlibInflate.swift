/// Decompresses one complete RFC 1950 zlib stream held in memory.
///
/// Throws ``ArchiveError/truncated(_:)`` if `data` ends before the stream's Adler-32 trailer,
/// ``ArchiveError/trailingData(_:)`` if bytes follow it, and ``ArchiveError/zlib(function:message:)``
/// for corrupt data (including a wrong checksum) or a stream that needs a preset dictionary.
public func zlibInflate(_ data: [UInt8]) throws -> [UInt8] {
    try ZlibInflateStream().inflate(data)
}
