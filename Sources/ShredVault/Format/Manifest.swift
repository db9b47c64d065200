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

    /// The manifest's JSON (vault-format.md §2.4): keys sorted, no whitespace, `/` and non-ASCII as raw UTF-8, `"` and
    /// `\\` escaped, control characters as `\b \t \n \f \r` or `\u00xx` (what `JSONEncoder` with `.sortedKeys` and
    /// `.withoutEscapingSlashes` writes, byte for byte). Written straight into one buffer: a manifest of many thousand
    /// entries costs its own size in memory, not a tree of objects several times larger (issue 15).
    public func encoded() throws -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(128 + entries.count * 176)
        func raw(_ text: StaticString) {
            text.withUTF8Buffer { out.append(contentsOf: $0) }
        }
        func string(_ s: String) {
            out.append(0x22)
            for b in s.utf8 {
                switch b {
                case 0x22: out.append(0x5c); out.append(0x22)
                case 0x5c: out.append(0x5c); out.append(0x5c)
                case 0x08: out.append(0x5c); out.append(UInt8(ascii: "b"))
                case 0x09: out.append(0x5c); out.append(UInt8(ascii: "t"))
                case 0x0a: out.append(0x5c); out.append(UInt8(ascii: "n"))
                case 0x0c: out.append(0x5c); out.append(UInt8(ascii: "f"))
                case 0x0d: out.append(0x5c); out.append(UInt8(ascii: "r"))
                case ..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: [0x5c, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0xf)]])
                default: out.append(b)
                }
            }
            out.append(0x22)
        }
        func integer(_ v: Int64) {
            if v < 0 { out.append(UInt8(ascii: "-")) }
            var magnitude = v.magnitude
            var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                          UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            var count = 0
            withUnsafeMutableBytes(of: &digits) { buffer in
                repeat {
                    buffer[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                    magnitude /= 10
                    count += 1
                } while magnitude > 0
                for i in stride(from: count - 1, through: 0, by: -1) { out.append(buffer[i]) }
            }
        }
        raw("{\"bundleId\":")
        string(bundleId)
        raw(",\"entries\":[")
        for (i, e) in entries.enumerated() {
            raw(i == 0 ? "{\"mode\":" : ",{\"mode\":")
            integer(Int64(e.mode))
            raw(",\"mtime\":")
            integer(e.mtime)
            raw(",\"path\":")
            string(e.path)
            if let sha = e.sha256 {
                raw(",\"sha256\":")
                string(sha)
            }
            raw(",\"size\":")
            integer(e.size)
            raw(",\"type\":")
            string(e.type.rawValue)
            raw("}")
        }
        raw("],\"format\":")
        string(format)
        raw(",\"userId\":")
        string(userId)
        raw("}")
        return out
    }

    public static func decode(_ bytes: [UInt8]) throws -> Manifest {
        var entries: [Entry] = []
        let top = try ManifestParser.parse(bytes) { entries.append($0) }
        var manifest = Manifest(bundleId: top.bundleId, userId: top.userId, entries: entries)
        manifest.format = top.format
        return manifest
    }
}

/// Reads a manifest's JSON (RFC 8259: any whitespace, any key order, escapes including `\uXXXX` surrogate pairs; unknown
/// keys and their values skipped, like `JSONDecoder`) and hands each entry to a callback as soon as it is read, so a
/// reader can check entry by entry without holding a second copy of the list (issue 15: a 9 771-entry manifest cost
/// `JSONDecoder` ~12 MiB). Refuses invalid JSON or UTF-8, a missing or duplicate field, a field of the wrong type, an
/// integer out of range or with a fraction or exponent, and nesting deeper than 64.
struct ManifestParser {
    struct Invalid: Error, CustomStringConvertible {
        let reason: String
        var description: String { reason }
    }

    private let bytes: [UInt8]
    private var at = 0

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    static func parse(_ bytes: [UInt8], entry: (Manifest.Entry) throws -> Void) throws -> (format: String, bundleId: String, userId: String) {
        var parser = ManifestParser(bytes)
        parser.skipWhitespace()
        var format: String?, bundleId: String?, userId: String?
        var sawEntries = false
        try parser.object { parser, key in
            switch key {
            case "format": try parser.once(&format, key) { try $0.string() }
            case "bundleId": try parser.once(&bundleId, key) { try $0.string() }
            case "userId": try parser.once(&userId, key) { try $0.string() }
            case "entries":
                guard !sawEntries else { throw Invalid(reason: "duplicate key 'entries'") }
                sawEntries = true
                try parser.array { parser in try entry(try parser.entry()) }
            default: try parser.skipValue(depth: 1)
            }
        }
        parser.skipWhitespace()
        guard parser.at == bytes.count else { throw Invalid(reason: "bytes after the manifest object") }
        guard let format, let bundleId, let userId, sawEntries else { throw Invalid(reason: "a manifest field is missing") }
        return (format, bundleId, userId)
    }

    private mutating func entry() throws -> Manifest.Entry {
        var path: String?, type: Manifest.Kind?, size: Int64?, mode: Int64?, mtime: Int64?, sha256: String?
        var sawSHA = false
        try object { parser, key in
            switch key {
            case "path": try parser.once(&path, key) { try $0.string() }
            case "type":
                try parser.once(&type, key) { parser in
                    guard let kind = Manifest.Kind(rawValue: try parser.string()) else { throw Invalid(reason: "unknown entry type") }
                    return kind
                }
            case "size": try parser.once(&size, key) { try $0.integer() }
            case "mode": try parser.once(&mode, key) { try $0.integer() }
            case "mtime": try parser.once(&mtime, key) { try $0.integer() }
            case "sha256":
                guard !sawSHA else { throw Invalid(reason: "duplicate key 'sha256'") }
                sawSHA = true
                if parser.literal("null") { sha256 = nil } else { sha256 = try parser.string() }
            default: try parser.skipValue(depth: 3)
            }
        }
        guard let path, let type, let size, let mode, let mtime else { throw Invalid(reason: "an entry field is missing") }
        guard let mode32 = UInt32(exactly: mode) else { throw Invalid(reason: "mode out of range") }
        return Manifest.Entry(path: path, type: type, size: size, mode: mode32, mtime: mtime, sha256: sha256)
    }

    private mutating func once<T>(_ slot: inout T?, _ key: String, _ read: (inout ManifestParser) throws -> T) throws {
        guard slot == nil else { throw Invalid(reason: "duplicate key '\(key)'") }
        slot = try read(&self)
    }

    private mutating func skipWhitespace() {
        while at < bytes.count, bytes[at] == 0x20 || bytes[at] == 0x09 || bytes[at] == 0x0a || bytes[at] == 0x0d { at += 1 }
    }

    private mutating func expect(_ byte: UInt8) throws {
        skipWhitespace()
        guard at < bytes.count, bytes[at] == byte else { throw Invalid(reason: "expected '\(Character(Unicode.Scalar(byte)))' at byte \(at)") }
        at += 1
    }

    /// Consumes `word` (after whitespace) if it is next.
    private mutating func literal(_ word: StaticString) -> Bool {
        skipWhitespace()
        let n = word.utf8CodeUnitCount
        guard at + n <= bytes.count else { return false }
        let matches = word.withUTF8Buffer { w in (0..<n).allSatisfy { bytes[at + $0] == w[$0] } }
        if matches { at += n }
        return matches
    }

    private mutating func object(_ member: (inout ManifestParser, String) throws -> Void) throws {
        try expect(UInt8(ascii: "{"))
        skipWhitespace()
        if at < bytes.count, bytes[at] == UInt8(ascii: "}") { at += 1; return }
        while true {
            let key = try string()
            try expect(UInt8(ascii: ":"))
            try member(&self, key)
            skipWhitespace()
            guard at < bytes.count else { throw Invalid(reason: "the manifest ends inside an object") }
            if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
            if bytes[at] == UInt8(ascii: "}") { at += 1; return }
            throw Invalid(reason: "expected ',' or '}' at byte \(at)")
        }
    }

    private mutating func array(_ element: (inout ManifestParser) throws -> Void) throws {
        try expect(UInt8(ascii: "["))
        skipWhitespace()
        if at < bytes.count, bytes[at] == UInt8(ascii: "]") { at += 1; return }
        while true {
            try element(&self)
            skipWhitespace()
            guard at < bytes.count else { throw Invalid(reason: "the manifest ends inside an array") }
            if bytes[at] == UInt8(ascii: ",") { at += 1; continue }
            if bytes[at] == UInt8(ascii: "]") { at += 1; return }
            throw Invalid(reason: "expected ',' or ']' at byte \(at)")
        }
    }

    /// A JSON integer: `-?(0|[1-9][0-9]*)` within Int64.
    private mutating func integer() throws -> Int64 {
        skipWhitespace()
        let negative = at < bytes.count && bytes[at] == UInt8(ascii: "-")
        if negative { at += 1 }
        let start = at
        var value: Int64 = 0
        while at < bytes.count, (0x30...0x39).contains(bytes[at]) {
            let digit = Int64(bytes[at] - 0x30)
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (v, o2) = negative ? m.subtractingReportingOverflow(digit) : m.addingReportingOverflow(digit)
            guard !o1, !o2 else { throw Invalid(reason: "integer out of range at byte \(start)") }
            value = v
            at += 1
        }
        guard at > start else { throw Invalid(reason: "expected an integer at byte \(start)") }
        guard !(bytes[start] == 0x30 && at - start > 1) else { throw Invalid(reason: "integer with a leading zero at byte \(start)") }
        if at < bytes.count, bytes[at] == UInt8(ascii: ".") || bytes[at] == UInt8(ascii: "e") || bytes[at] == UInt8(ascii: "E") {
            throw Invalid(reason: "expected an integer at byte \(start)")
        }
        return value
    }

    /// A JSON string as valid UTF-8.
    private mutating func string() throws -> String {
        try expect(0x22)
        var out = [UInt8]()
        func hex4() throws -> UInt32 {
            guard at + 4 <= bytes.count else { throw Invalid(reason: "the manifest ends inside an escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[at]
                let d: UInt8
                switch c {
                case 0x30...0x39: d = c - 0x30
                case 0x61...0x66: d = c - 0x61 + 10
                case 0x41...0x46: d = c - 0x41 + 10
                default: throw Invalid(reason: "bad \\u escape at byte \(at)")
                }
                v = v << 4 | UInt32(d)
                at += 1
            }
            return v
        }
        while true {
            guard at < bytes.count else { throw Invalid(reason: "the manifest ends inside a string") }
            let b = bytes[at]
            at += 1
            switch b {
            case 0x22:
                guard let s = String(validating: out, as: UTF8.self) else { throw Invalid(reason: "a string is not valid UTF-8") }
                return s
            case 0x5c:
                guard at < bytes.count else { throw Invalid(reason: "the manifest ends inside an escape") }
                let e = bytes[at]
                at += 1
                switch e {
                case 0x22, 0x5c, 0x2f: out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0c)
                case UInt8(ascii: "n"): out.append(0x0a)
                case UInt8(ascii: "r"): out.append(0x0d)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard at + 2 <= bytes.count, bytes[at] == 0x5c, bytes[at + 1] == UInt8(ascii: "u") else {
                            throw Invalid(reason: "unpaired surrogate in a string")
                        }
                        at += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw Invalid(reason: "unpaired surrogate in a string") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw Invalid(reason: "unpaired surrogate in a string")
                    }
                    out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
                default: throw Invalid(reason: "bad escape at byte \(at - 1)")
                }
            case ..<0x20: throw Invalid(reason: "control character in a string at byte \(at - 1)")
            default: out.append(b)
            }
        }
    }

    /// Skips any JSON value (an unknown key's).
    private mutating func skipValue(depth: Int) throws {
        guard depth <= 64 else { throw Invalid(reason: "nested deeper than 64") }
        skipWhitespace()
        guard at < bytes.count else { throw Invalid(reason: "the manifest ends before a value") }
        switch bytes[at] {
        case UInt8(ascii: "{"): try object { parser, _ in try parser.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["): try array { parser in try parser.skipValue(depth: depth + 1) }
        case 0x22: _ = try string()
        case UInt8(ascii: "-"), 0x30...0x39:
            // A number: integer part, then an optional fraction and exponent.
            if bytes[at] == UInt8(ascii: "-") { at += 1 }
            let start = at
            while at < bytes.count, (0x30...0x39).contains(bytes[at]) { at += 1 }
            guard at > start else { throw Invalid(reason: "bad number at byte \(start)") }
            if at < bytes.count, bytes[at] == UInt8(ascii: ".") {
                at += 1
                let f = at
                while at < bytes.count, (0x30...0x39).contains(bytes[at]) { at += 1 }
                guard at > f else { throw Invalid(reason: "bad number at byte \(start)") }
            }
            if at < bytes.count, bytes[at] == UInt8(ascii: "e") || bytes[at] == UInt8(ascii: "E") {
                at += 1
                if at < bytes.count, bytes[at] == UInt8(ascii: "+") || bytes[at] == UInt8(ascii: "-") { at += 1 }
                let e = at
                while at < bytes.count, (0x30...0x39).contains(bytes[at]) { at += 1 }
                guard at > e else { throw Invalid(reason: "bad number at byte \(start)") }
            }
        default:
            guard literal("true") || literal("false") || literal("null") else { throw Invalid(reason: "bad value at byte \(at)") }
        }
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
