import CArchive

/// Owns one libarchive write handle (and the reusable `archive_entry` for headers) configured for a
/// deterministic pax tar; every libarchive call made for ``TarWriter``.
///
/// The handle is its own callback context: libarchive gets it as unretained client data, which is
/// safe because the handle frees the archive in `deinit`, before it goes away itself.
final class TarArchiveWriter {
    /// 0: libarchive writes unblocked, passing each header and each piece of file data to the sink as it comes
    /// instead of copying everything into a block buffer first (one copy of every byte fewer). The bytes of the stream
    /// are the same either way: the last block is not padded (`bytes_in_last_block` 1), and the tar's own 512-byte
    /// records and end-of-archive marker do not depend on the blocking.
    private static let bytesPerBlock: Int32 = 0

    private let archive: OpaquePointer
    private let entry: OpaquePointer
    private let sink: (UnsafeRawBufferPointer) throws -> Void
    /// The sink's error, kept here while libarchive unwinds with ARCHIVE_FATAL, then rethrown as is.
    private var sinkError: (any Error)?
    private var closed = false

    init(sink: @escaping (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let archive = archive_write_new() else {
            throw ArchiveError.libarchive(function: "archive_write_new", message: "could not allocate a write handle")
        }
        guard let entry = archive_entry_new() else {
            archive_write_free(archive)
            throw ArchiveError.libarchive(function: "archive_entry_new", message: "could not allocate an entry")
        }
        self.archive = archive
        self.entry = entry
        self.sink = sink
        // From here on a throw runs deinit, which frees both handles.
        try UTF8CharacterLocale.run {
            try check(archive_write_set_format_pax_restricted(archive), "archive_write_set_format_pax_restricted")
            try check(archive_write_add_filter_none(archive), "archive_write_add_filter_none")
            try check(archive_write_set_bytes_per_block(archive, Self.bytesPerBlock), "archive_write_set_bytes_per_block")
            // 1: the last block is not padded, so the stream ends right after the end-of-archive marker (with blocking).
            try check(archive_write_set_bytes_in_last_block(archive, 1), "archive_write_set_bytes_in_last_block")
            let client = Unmanaged.passUnretained(self).toOpaque()
            let result = archive_write_open2(archive, client, nil, { _, client, buffer, length in
                let writer = Unmanaged<TarArchiveWriter>.fromOpaque(client!).takeUnretainedValue()
                return writer.deliver(UnsafeRawBufferPointer(start: buffer, count: length))
            }, nil, nil)
            try check(result, "archive_write_open2")
        }
    }

    deinit {
        if !closed {
            // Abandoned or failed: mark the handle failed so archive_write_free does not try to close
            // it cleanly, which would write an end-of-archive marker to the sink from inside deinit.
            archive_write_fail(archive)
        }
        archive_write_free(archive)
        archive_entry_free(entry)
    }

    /// The write callback: passes libarchive's output to the sink.
    private func deliver(_ bytes: UnsafeRawBufferPointer) -> Int {
        do {
            try sink(bytes)
            return bytes.count
        } catch {
            sinkError = error
            return Int(ARCHIVE_FATAL)
        }
    }

    /// Writes the header of a directory or regular file. A warning from libarchive (for example a path
    /// it cannot translate) is an error: the stored header would not be the one asked for.
    func writeHeader(path: String, isDirectory: Bool, size: Int64, mode: UInt32, mtime: Int64) throws {
        try UTF8CharacterLocale.run {
            archive_entry_clear(entry)
            // Set as a string of the thread's (UTF-8) locale, not with archive_entry_set_pathname_utf8: libarchive
            // turns a UTF-8-set name into Unicode NFC on its way into the header, so "e\u{301}" would be stored as
            // "\u{e9}". A locale string reaches the pax `path` record and the ustar fields byte for byte.
            path.withCString { archive_entry_copy_pathname(entry, $0) }
            archive_entry_set_filetype(entry, isDirectory ? TarFileType.directory : TarFileType.regular)
            archive_entry_set_perm(entry, mode)
            archive_entry_set_size(entry, size)
            archive_entry_set_mtime(entry, time_t(mtime), 0)
            let result = archive_write_header(archive, entry)
            try rethrowSinkError()
            if result == ARCHIVE_WARN {
                throw ArchiveError.unsupportedEntry("\(path): \(errorMessage())")
            }
            try check(result, "archive_write_header")
        }
    }

    /// Writes data of the current entry; the caller has checked it fits the declared size.
    func writeData(_ bytes: UnsafeRawBufferPointer) throws {
        let written = archive_write_data(archive, bytes.baseAddress, bytes.count)
        try rethrowSinkError()
        guard written >= 0 else {
            throw ArchiveError.libarchive(function: "archive_write_data", message: errorMessage())
        }
        guard written == bytes.count else {
            throw ArchiveError.sizeMismatch("libarchive accepted \(written) of \(bytes.count) bytes")
        }
    }

    /// Completes the current entry (pads its data to the 512-byte block).
    func finishEntry() throws {
        try check(archive_write_finish_entry(archive), "archive_write_finish_entry")
    }

    /// Writes the end-of-archive marker and flushes the last block to the sink.
    func close() throws {
        try UTF8CharacterLocale.run {
            try check(archive_write_close(archive), "archive_write_close")
        }
        closed = true
    }

    private func rethrowSinkError() throws {
        if let sinkError { throw sinkError }
    }

    /// Throws the sink's error if it failed, otherwise a libarchive error unless `result` is ARCHIVE_OK.
    private func check(_ result: Int32, _ function: String) throws {
        try rethrowSinkError()
        guard result == ARCHIVE_OK else {
            throw ArchiveError.libarchive(function: function, message: errorMessage())
        }
    }

    private func errorMessage() -> String {
        archiveErrorMessage(archive)
    }
}
