import CArchive

/// libarchive's `AE_IF*` file types. The header defines them as cast macros, which Swift cannot import.
enum TarFileType {
    static let mask: UInt32 = 0o170000
    static let regular: UInt32 = 0o100000
    static let directory: UInt32 = 0o040000
    static let symlink: UInt32 = 0o120000
}

/// `archive_error_string`, or a placeholder naming the errno when libarchive set no message.
func archiveErrorMessage(_ archive: OpaquePointer) -> String {
    guard let message = archive_error_string(archive) else {
        return "no message (errno \(archive_errno(archive)))"
    }
    return String(cString: message)
}
