/// The type of a tar entry.
public enum TarEntryKind: Equatable, Sendable {
    case file
    case directory
    case symlink
    /// A hard link to an earlier entry; ``TarEntryHeader/linkTarget`` names it.
    case hardlink
    /// Any other type, as libarchive's raw `AE_IF*` file type (character or block device, FIFO, socket).
    case other(UInt32)
}

/// The metadata of one tar entry, as read by ``TarReader``.
public struct TarEntryHeader: Equatable, Sendable {
    /// The UTF-8 path as stored. A directory's trailing `/` (added by tar writers) is removed, so a
    /// directory written as `"docs"` reads back as `"docs"`.
    public var path: String
    /// The entry type.
    public var kind: TarEntryKind
    /// The size of the entry's data in bytes (0 when the header declares none).
    public var size: Int64
    /// Permission bits only (`0o7777`); the type is in ``kind``.
    public var mode: UInt32
    /// Modification time in seconds since the Unix epoch.
    public var mtime: Int64
    /// The target of a symlink or hard link; `nil` for other kinds.
    public var linkTarget: String?

    /// Creates a header.
    public init(path: String, kind: TarEntryKind, size: Int64, mode: UInt32, mtime: Int64, linkTarget: String? = nil) {
        self.path = path
        self.kind = kind
        self.size = size
        self.mode = mode
        self.mtime = mtime
        self.linkTarget = linkTarget
    }
}
