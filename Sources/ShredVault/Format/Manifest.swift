import Foundation

/// The manifest: the last tar entry of every bundle (`manifest.json`, vault-format.md §2.4).
/// It lists every user file and directory with its size, mode, mtime and SHA-256.
public struct Manifest: Codable, Equatable, Sendable {
    public static let formatName = "shredvault-manifest/v1"
    /// Tar path of the manifest entry.
    public static let entryPath = "manifest.json"
    /// Tar path prefix of user data.
    public static let dataPrefix = "files/"
    /// Readers refuse larger manifests (about a million files).
    public static let maxEncodedSize = 256 << 20

    public enum Kind: String, Codable, Sendable { case file, dir }

    public struct Entry: Codable, Equatable, Sendable {
        /// Relative path below the user's directory, `/`-separated, no `.`/`..`/empty components.
        public var path: String
        public var type: Kind
        /// Bytes (files only; 0 for directories).
        public var size: Int64
        /// Permission bits (0...0o777).
        public var mode: UInt32
        /// Unix seconds.
        public var mtime: Int64
        /// Lower-case hex SHA-256 of the contents (files only).
        public var sha256: String?

        /// Equal when every field is: the path and hash byte for byte (Swift String equality would make canonically
        /// equivalent spellings of one name equal, vault-format.md §2.4).
        public static func == (a: Entry, b: Entry) -> Bool {
            a.path.utf8.elementsEqual(b.path.utf8) && a.type == b.type && a.size == b.size && a.mode == b.mode
                && a.mtime == b.mtime && a.sha256.map { Array($0.utf8) } == b.sha256.map { Array($0.utf8) }
        }
    }

    public var format: String
    public var bundleId: String
    public var userId: String
    public var entries: [Entry]

    public init(bundleId: String, userId: String, entries: [Entry]) {
        self.format = Self.formatName
        self.bundleId = bundleId
        self.userId = userId
        self.entries = entries
    }

    /// Equal when every field is, the strings byte for byte.
    public static func == (a: Manifest, b: Manifest) -> Bool {
        a.format.utf8.elementsEqual(b.format.utf8) && a.bundleId.utf8.elementsEqual(b.bundleId.utf8)
            && a.userId.utf8.elementsEqual(b.userId.utf8) && a.entries == b.entries
    }

    public var fileCount: Int { entries.reduce(0) { $0 + ($1.type == .file ? 1 : 0) } }
    public var totalFileBytes: Int64 { entries.reduce(0) { $0 + $1.size } }

    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self))
    }

    public static func decode(_ bytes: [UInt8]) throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(bytes))
    }
}

/// Path rules shared by writer and reader (vault-format.md §2.4).
enum EntryPath {
    static let maxLength = 4096
    static let maxComponentLength = 255

    /// nil if `path` is a safe relative path; otherwise the reason it is not.
    static func problem(_ path: String) -> String? {
        let bytes = Array(path.utf8)
        if bytes.isEmpty { return "empty path" }
        if bytes.count > maxLength { return "path longer than \(maxLength) bytes" }
        if bytes.first == UInt8(ascii: "/") { return "absolute path" }
        if bytes.contains(0) { return "NUL byte in path" }
        for component in bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            if component.isEmpty { return "empty path component" }
            if component.count > maxComponentLength { return "path component longer than \(maxComponentLength) bytes" }
            if component.elementsEqual([UInt8(ascii: ".")]) || component.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) {
                return "'.' or '..' path component"
            }
        }
        return nil
    }

    static func parent(_ path: String) -> String? {
        let bytes = Array(path.utf8)
        guard let slash = bytes.lastIndex(of: UInt8(ascii: "/")) else { return nil }
        return String(decoding: bytes[..<slash], as: UTF8.self)
    }
}
