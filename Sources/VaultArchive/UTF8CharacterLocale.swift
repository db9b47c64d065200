#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs libarchive calls with a UTF-8 `LC_CTYPE` on the current thread only.
///
/// libarchive converts every path between UTF-8 and the thread's locale charset. Under the C/POSIX
/// locale that conversion fails for any non-ASCII path, and libarchive 3.6.2's pax writer then crashes
/// (strlen of a NULL pathname). `uselocale` switches only the calling thread, so other threads and the
/// process-wide locale are untouched; the previous thread locale is restored before returning.
enum UTF8CharacterLocale {
    /// Created once and kept for the life of the process; never freed, so it can never dangle.
    nonisolated(unsafe) private static let locale: locale_t? = newlocale(LC_CTYPE_MASK, "C.UTF-8", nil)

    /// Calls `body` with the thread's `LC_CTYPE` set to C.UTF-8.
    static func run<Result>(_ body: () throws -> Result) throws -> Result {
        guard let locale else {
            throw ArchiveError.libarchive(function: "newlocale", message: "the C.UTF-8 locale is not available")
        }
        guard let previous = uselocale(locale) else {
            throw ArchiveError.libarchive(function: "uselocale", message: "could not switch to the C.UTF-8 locale")
        }
        defer { uselocale(previous) }
        return try body()
    }
}
