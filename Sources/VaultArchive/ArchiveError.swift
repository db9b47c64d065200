/// Every failure reported by VaultArchive.
///
/// Errors thrown by caller-supplied sinks and sources are never wrapped in this type: they reach the
/// caller unchanged.
public enum ArchiveError: Error, Equatable, CustomStringConvertible {
    /// A libarchive call failed; `message` is `archive_error_string`.
    case libarchive(function: String, message: String)
    /// A zstd call failed; `message` is `ZSTD_getErrorName`.
    case zstd(function: String, message: String)
    /// A zlib call failed; `message` is the stream's `msg` or a description of the return code.
    case zlib(function: String, message: String)
    /// The compressed stream or archive ended before its end marker.
    case truncated(String)
    /// Bytes follow the single zstd frame, or non-zero bytes follow the tar end-of-archive marker.
    case trailingData(String)
    /// An entry cannot be written or read faithfully (for example a path that is not valid UTF-8).
    case unsupportedEntry(String)
    /// A file's data is longer or shorter than the size declared in its header.
    case sizeMismatch(String)
    /// The compressed stream is not one standard zstd frame with a content checksum (a legacy or skippable frame,
    /// no checksum, a dictionary).
    case unsupportedFrame(String)

    /// One sentence saying what failed.
    public var description: String {
        switch self {
        case let .libarchive(function, message):
            return "libarchive \(function) failed: \(Self.clause(message))."
        case let .zstd(function, message):
            return "zstd \(function) failed: \(Self.clause(message))."
        case let .zlib(function, message):
            return "zlib \(function) failed: \(Self.clause(message))."
        case let .truncated(detail):
            return "The data is truncated: \(Self.clause(detail))."
        case let .trailingData(detail):
            return "Unexpected data follows the end of the stream: \(Self.clause(detail))."
        case let .unsupportedEntry(detail):
            return "The archive entry is not supported: \(Self.clause(detail))."
        case let .sizeMismatch(detail):
            return "The file data does not match its declared size: \(Self.clause(detail))."
        case let .unsupportedFrame(detail):
            return "The compressed data is not a standard zstd frame with a content checksum: \(Self.clause(detail))."
        }
    }

    /// Drops trailing periods and whitespace so the detail fits inside one sentence.
    private static func clause(_ text: String) -> String {
        var clause = Substring(text)
        while let last = clause.last, last == "." || last.isWhitespace {
            clause = clause.dropLast()
        }
        return clause.isEmpty ? "no details" : String(clause)
    }
}
