import CArchive

/// Owns one libarchive read handle (tar format only, no filters) and the buffers its read callback
/// fills from the source; every libarchive call made for ``TarReader``.
///
/// The handle is its own callback context: libarchive gets it as unretained client data, which is
/// safe because the handle frees the archive in `deinit`, before it goes away itself.
///
/// Every read callback but the last hands libarchive a full 64 KiB buffer. At the end of the archive
/// libarchive has usually read past the end-of-archive marker, and ``requireZeroUnconsumedBytes()``
/// must check those bytes. Two buffers alternate so that bytes from the previous read are still there
/// if a look-ahead straddled two reads (with tar they normally all lie in the latest one).
final class TarArchiveReader {
    private static let bufferSize = 64 * 1024
    /// The end-of-archive marker: two 512-byte blocks of zeros.
    private static let endMarkerSize: Int64 = 1024

    private let archive: OpaquePointer
    private let source: (UnsafeMutableRawBufferPointer) throws -> Int
    private let buffers: UnsafeMutableRawBufferPointer
    /// For each buffer, the stream offset and length of what it holds.
    private var windows: [(offset: Int64, count: Int)] = [(0, 0), (0, 0)]
    private var nextBuffer = 0
    /// Bytes handed to libarchive so far.
    private var handedOut: Int64 = 0
    private var sourceExhausted = false
    /// The source's error, kept here while libarchive unwinds with ARCHIVE_FATAL, then rethrown as is.
    private var sourceError: (any Error)?

    init(source: @escaping (UnsafeMutableRawBufferPointer) throws -> Int) throws {
        guard let archive = archive_read_new() else {
            throw ArchiveError.libarchive(function: "archive_read_new", message: "could not allocate a read handle")
        }
        self.archive = archive
        self.source = source
        buffers = .allocate(byteCount: 2 * Self.bufferSize, alignment: 16)
        // From here on a throw runs deinit, which frees the handle and the buffers.
        try UTF8CharacterLocale.run {
            try check(archive_read_support_format_tar(archive), "archive_read_support_format_tar")
            let client = Unmanaged.passUnretained(self).toOpaque()
            let result = archive_read_open(archive, client, nil, { _, client, buffer in
                let reader = Unmanaged<TarArchiveReader>.fromOpaque(client!).takeUnretainedValue()
                return reader.supply(buffer!)
            }, nil)
            try rethrowSourceError()
            if result != ARCHIVE_OK && sourceExhausted && handedOut < Self.endMarkerSize {
                throw ArchiveError.truncated("the tar stream is only \(handedOut) bytes long")
            }
            try check(result, "archive_read_open")
        }
    }

    deinit {
        // No callbacks run from here: closing a read handle calls only the close callback (none).
        archive_read_free(archive)
        buffers.deallocate()
    }

    private func buffer(_ index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: buffers[(index * Self.bufferSize)..<((index + 1) * Self.bufferSize)])
    }

    /// The read callback: fills the next buffer completely from the source (or up to its end).
    private func supply(_ output: UnsafeMutablePointer<UnsafeRawPointer?>) -> Int {
        if sourceError != nil { return Int(ARCHIVE_FATAL) }
        if sourceExhausted { return 0 }
        let target = buffer(nextBuffer)
        var filled = 0
        do {
            while filled < target.count {
                let count = try source(UnsafeMutableRawBufferPointer(rebasing: target[filled...]))
                precondition((0...(target.count - filled)).contains(count), "source returned \(count) for a \(target.count - filled)-byte buffer")
                if count == 0 {
                    sourceExhausted = true
                    break
                }
                filled += count
            }
        } catch {
            sourceError = error
            return Int(ARCHIVE_FATAL)
        }
        // An empty read leaves both windows alone: they may still hold unconsumed bytes.
        guard filled > 0 else { return 0 }
        windows[nextBuffer] = (handedOut, filled)
        handedOut += Int64(filled)
        nextBuffer ^= 1
        output.pointee = UnsafeRawPointer(target.baseAddress)
        return filled
    }

    /// Reads the next header and how it is stored; `nil` after a complete end-of-archive marker.
    func nextHeader() throws -> (header: TarEntryHeader, encoding: TarEntryEncoding)? {
        try UTF8CharacterLocale.run {
            var entry: OpaquePointer?
            let result = archive_read_next_header(archive, &entry)
            dataOffset = 0
            // The source may fail during a look-ahead that libarchive tolerates: check it first.
            try rethrowSourceError()
            switch result {
            case ARCHIVE_OK:
                let blocks = try headerBlocks(isSparse: archive_entry_sparse_count(entry!) > 0)
                return (try header(of: entry!, paxPath: blocks.paxPath), blocks.encoding)
            case ARCHIVE_EOF:
                try requireEndMarker()
                return nil
            case ARCHIVE_WARN:
                let path = entry.flatMap { archive_entry_pathname($0) }.map { String(cString: $0) } ?? "an entry"
                throw ArchiveError.unsupportedEntry("\(path.debugDescription): \(archiveErrorMessage(archive))")
            default:
                throw ArchiveError.libarchive(function: "archive_read_next_header", message: archiveErrorMessage(archive))
            }
        }
    }

    /// libarchive also reports end of archive when the stream simply stops at a header boundary;
    /// require the full two-block marker instead, so a cut stream is not mistaken for a short one.
    private func requireEndMarker() throws {
        let markerStart = archive_read_header_position(archive)
        let consumed = archive_filter_bytes(archive, 0)
        guard markerStart >= 0 else {
            throw ArchiveError.libarchive(function: "archive_read_header_position", message: archiveErrorMessage(archive))
        }
        guard consumed >= markerStart else {
            throw ArchiveError.libarchive(function: "archive_filter_bytes", message: archiveErrorMessage(archive))
        }
        guard consumed - markerStart >= Self.endMarkerSize else {
            throw ArchiveError.truncated("the tar stream ends without its end-of-archive marker")
        }
    }

    /// The raw header blocks of the entry libarchive just read: from the header position it recorded for the entry
    /// to what it has consumed since (extension headers, their bodies, the entry's own header). They lie in the
    /// latest read buffers: libarchive reads ahead only as far as it consumes while reading a header.
    private func headerBlocks(isSparse: Bool) throws -> TarHeaderBlocks {
        let start = archive_read_header_position(archive)
        let end = archive_filter_bytes(archive, 0)
        guard start >= 0, end >= start, end - start <= Int64(2 * Self.bufferSize),
              let bytes = bufferedBytes(from: start, to: end)
        else {
            throw ArchiveError.unsupportedEntry("the header blocks of an entry (bytes \(start)..<\(end)) are not in the read buffers")
        }
        return try TarHeaderBlocks(bytes, isSparse: isSparse)
    }

    /// Stream bytes `start..<end` if both read buffers together still hold them.
    private func bufferedBytes(from start: Int64, to end: Int64) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(Int(end - start))
        var offset = start
        while offset < end {
            guard let index = windows.firstIndex(where: { offset >= $0.offset && offset < $0.offset + Int64($0.count) }) else {
                return nil
            }
            let window = windows[index]
            let from = Int(offset - window.offset)
            let to = Int(min(end, window.offset + Int64(window.count)) - window.offset)
            out += buffer(index)[from..<to]
            offset = window.offset + Int64(to)
        }
        return out
    }

    /// Converts libarchive's entry into a header, requiring valid UTF-8 paths. A path stored in a pax extended header
    /// is taken from the record's bytes, not from libarchive, which converts it to Unicode NFC on the way.
    private func header(of entry: OpaquePointer, paxPath: [UInt8]?) throws -> TarEntryHeader {
        let stored: String?
        if let paxPath {
            stored = paxPath.contains(0) ? nil : String(validating: paxPath, as: UTF8.self)
        } else {
            stored = archive_entry_pathname_utf8(entry).flatMap { String(validatingCString: $0) }
        }
        guard let path = stored else {
            throw ArchiveError.unsupportedEntry("an entry path is not valid UTF-8")
        }
        let fileType = archive_entry_filetype(entry) & TarFileType.mask
        var kind: TarEntryKind
        var linkTarget: String?
        if archive_entry_hardlink(entry) != nil {
            kind = .hardlink
            linkTarget = try utf8(archive_entry_hardlink_utf8(entry), "the hard link target of \(path)")
        } else {
            switch fileType {
            case TarFileType.regular: kind = .file
            case TarFileType.directory: kind = .directory
            case TarFileType.symlink:
                kind = .symlink
                linkTarget = try utf8(archive_entry_symlink_utf8(entry), "the symlink target of \(path)")
            default: kind = .other(fileType)
            }
        }
        var storedPath = path
        // Bytes, not Characters: a trailing "/" followed by a combining mark is not a trailing "/".
        if kind == .directory && storedPath.utf8.count > 1 && storedPath.utf8.last == UInt8(ascii: "/") {
            storedPath = String(storedPath.utf8.dropLast())!
        }
        return TarEntryHeader(
            path: storedPath,
            kind: kind,
            size: archive_entry_size_is_set(entry) != 0 ? archive_entry_size(entry) : 0,
            mode: UInt32(archive_entry_perm(entry)) & 0o7777,
            mtime: Int64(archive_entry_mtime(entry)),
            linkTarget: linkTarget
        )
    }

    private func utf8(_ text: UnsafePointer<CChar>?, _ what: String) throws -> String {
        guard let text, let string = String(validatingCString: text) else {
            throw ArchiveError.unsupportedEntry("\(what) is missing or not valid UTF-8")
        }
        return string
    }

    /// Where the next data block of the current entry must start (entries are read in order, without holes).
    private var dataOffset: Int64 = 0

    /// The next piece of the current entry's data, in place in a read buffer (no copy): valid until the next call
    /// on this reader. Empty at the end of the entry's data.
    func readDataBlock() throws -> UnsafeRawBufferPointer {
        while true {
            var block: UnsafeRawPointer?
            var size = 0
            var offset: la_int64_t = 0
            let result = archive_read_data_block(archive, &block, &size, &offset)
            try rethrowSourceError()
            if result == ARCHIVE_EOF { return UnsafeRawBufferPointer(start: nil, count: 0) }
            guard result == ARCHIVE_OK else {
                throw ArchiveError.libarchive(function: "archive_read_data_block", message: archiveErrorMessage(archive))
            }
            // A hole (a sparse entry) would put the block elsewhere: the data must be one contiguous run.
            guard offset == dataOffset else {
                throw ArchiveError.unsupportedEntry("the entry's data is not contiguous (block at \(offset), expected \(dataOffset))")
            }
            guard size > 0 else { continue }
            guard let block else {
                throw ArchiveError.libarchive(function: "archive_read_data_block", message: "a block of \(size) bytes without an address")
            }
            dataOffset += Int64(size)
            return UnsafeRawBufferPointer(start: block, count: size)
        }
    }

    /// Reads data of the current entry; 0 at its end.
    func readData(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let count = archive_read_data(archive, buffer.baseAddress, buffer.count)
        try rethrowSourceError()
        guard count >= 0 else {
            throw ArchiveError.libarchive(function: "archive_read_data", message: archiveErrorMessage(archive))
        }
        return count
    }

    /// Checks the bytes libarchive read from the source but did not consume (it reads ahead in whole
    /// buffers): after the end-of-archive marker they must all be zero.
    func requireZeroUnconsumedBytes() throws {
        let consumed = archive_filter_bytes(archive, 0)
        guard (0...handedOut).contains(consumed) else {
            throw ArchiveError.libarchive(function: "archive_filter_bytes", message: "consumed \(consumed) of \(handedOut) bytes")
        }
        var offset = consumed
        while offset < handedOut {
            guard let index = windows.firstIndex(where: { offset >= $0.offset && offset < $0.offset + Int64($0.count) }) else {
                throw ArchiveError.libarchive(
                    function: "archive_filter_bytes",
                    message: "bytes after offset \(offset) were read ahead but are no longer buffered")
            }
            let window = windows[index]
            let start = Int(offset - window.offset)
            let bytes = UnsafeRawBufferPointer(rebasing: buffer(index)[start..<window.count])
            if let nonZero = bytes.firstIndex(where: { $0 != 0 }) {
                throw ArchiveError.trailingData(
                    "a non-zero byte at offset \(offset + Int64(nonZero - bytes.startIndex)) follows the end-of-archive marker")
            }
            offset = window.offset + Int64(window.count)
        }
    }

    /// Reads the rest of the source, requiring zeros. Source errors propagate unchanged.
    func drainRequiringZeros() throws {
        let scratch = buffer(0)
        var offset = handedOut
        while !sourceExhausted {
            let count = try source(scratch)
            precondition((0...scratch.count).contains(count), "source returned \(count) for a \(scratch.count)-byte buffer")
            if count == 0 {
                sourceExhausted = true
            } else if let nonZero = scratch[0..<count].firstIndex(where: { $0 != 0 }) {
                throw ArchiveError.trailingData(
                    "a non-zero byte at offset \(offset + Int64(nonZero)) follows the end-of-archive marker")
            }
            offset += Int64(count)
        }
    }

    private func rethrowSourceError() throws {
        if let sourceError { throw sourceError }
    }

    /// Throws the source's error if it failed, otherwise a libarchive error unless `result` is ARCHIVE_OK.
    private func check(_ result: Int32, _ function: String) throws {
        try rethrowSourceError()
        guard result == ARCHIVE_OK else {
            throw ArchiveError.libarchive(function: function, message: archiveErrorMessage(archive))
        }
    }
}
