/// How one entry is stored in the tar stream: facts about its raw header blocks, which libarchive folds into one
/// entry (an old-style NUL or contiguous-file `7` typeflag and a GNU sparse `S` entry all read as regular files).
/// Readers that accept only what a particular writer emits judge these facts; ``TarReader`` only reports them.
public struct TarEntryEncoding: Equatable, Sendable {
    /// The typeflag byte of each header block of the entry, in stream order: extension headers first (`x`, `g`,
    /// `L`, …), the entry's own header last.
    public var typeflags: [UInt8]
    /// Whether every one of those header blocks carries the POSIX ustar magic and version (`"ustar\0"`, `"00"`).
    public var isPOSIXUstar: Bool
    /// The keywords of the records of its pax extended headers (`x`), in order.
    public var paxKeywords: [String]
    /// Whether libarchive read a sparse map for it.
    public var isSparse: Bool

    /// The typeflag of the entry's own header (the last block).
    public var typeflag: UInt8 { typeflags.last ?? 0 }

    public init(typeflags: [UInt8], isPOSIXUstar: Bool, paxKeywords: [String], isSparse: Bool) {
        self.typeflags = typeflags
        self.isPOSIXUstar = isPOSIXUstar
        self.paxKeywords = paxKeywords
        self.isSparse = isSparse
    }

    /// A typeflag for messages: `'7'` when printable ASCII, else its hex value (`0x00`).
    public static func describe(_ typeflag: UInt8) -> String {
        (0x21...0x7e).contains(typeflag)
            ? "'" + String(UnicodeScalar(typeflag)) + "'"
            : "0x" + (typeflag < 16 ? "0" : "") + String(typeflag, radix: 16)
    }
}

/// Parses the raw header blocks of one entry (everything from its first header block to the end of its own
/// header, as libarchive consumed them).
struct TarHeaderBlocks {
    static let blockSize = 512

    var encoding: TarEntryEncoding
    /// The exact bytes of the path that a pax extended header stores (`GNU.sparse.name` over `path`, the last record
    /// winning, as libarchive applies them); nil when the path is only in the ustar header.
    var paxPath: [UInt8]?

    /// `bytes` starts at the entry's first header block; parsing stops at the first block that is not an extension
    /// header (the entry's own header). Throws when the blocks do not fit in `bytes` or a pax record is malformed.
    init(_ bytes: [UInt8], isSparse: Bool) throws {
        var typeflags: [UInt8] = []
        var ustar = true
        var keywords: [String] = []
        var path: [UInt8]?
        var sparseName: [UInt8]?
        var offset = 0
        while true {
            guard offset + Self.blockSize <= bytes.count else {
                throw ArchiveError.unsupportedEntry("the header blocks of an entry could not be re-read")
            }
            let block = bytes[offset..<(offset + Self.blockSize)]
            let typeflag = block[offset + 156]
            typeflags.append(typeflag)
            if !block[(offset + 257)..<(offset + 265)].elementsEqual(Self.posixMagic) { ustar = false }
            let bodySize: Int
            switch typeflag {
            case UInt8(ascii: "x"), UInt8(ascii: "X"), UInt8(ascii: "g"), UInt8(ascii: "L"), UInt8(ascii: "K"), UInt8(ascii: "A"):
                guard let size = Self.number(block[(offset + 124)..<(offset + 136)]), size <= bytes.count else {
                    throw ArchiveError.unsupportedEntry("an extension header's size field cannot be read")
                }
                bodySize = size
            case UInt8(ascii: "V"):
                bodySize = 0  // libarchive skips a GNU volume header without a body
            default:
                self.encoding = TarEntryEncoding(typeflags: typeflags, isPOSIXUstar: ustar, paxKeywords: keywords, isSparse: isSparse)
                self.paxPath = sparseName ?? path
                return
            }
            let bodyStart = offset + Self.blockSize
            guard bodyStart + bodySize <= bytes.count else {
                throw ArchiveError.unsupportedEntry("the header blocks of an entry could not be re-read")
            }
            if typeflag == UInt8(ascii: "x") || typeflag == UInt8(ascii: "X") {
                for (key, value) in try Self.paxRecords(Array(bytes[bodyStart..<(bodyStart + bodySize)])) {
                    keywords.append(String(decoding: key, as: UTF8.self))
                    if key.elementsEqual("path".utf8) { path = value }
                    if key.elementsEqual("GNU.sparse.name".utf8) { sparseName = value }
                }
            }
            offset = bodyStart + (bodySize + Self.blockSize - 1) / Self.blockSize * Self.blockSize
        }
    }

    private static let posixMagic = Array("ustar\u{0}00".utf8)

    /// A numeric header field: octal digits (leading spaces, ending at NUL or space), or base-256 (high bit set).
    static func number(_ field: ArraySlice<UInt8>) -> Int? {
        guard let first = field.first else { return nil }
        if first & 0x80 != 0 {
            guard first == 0x80 else { return nil }  // negative or over 2^63: never a valid size
            var value = 0
            for byte in field.dropFirst() {
                guard value <= (Int.max >> 8) else { return nil }
                value = value << 8 | Int(byte)
            }
            return value
        }
        var value = 0
        var digits = 0
        var ended = false
        for byte in field {
            if byte == 0x20 && digits == 0 && !ended { continue }
            if byte == 0 || byte == 0x20 { ended = true; continue }
            guard !ended, (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(byte), value <= (Int.max >> 3) else { return nil }
            value = value << 3 | Int(byte - UInt8(ascii: "0"))
            digits += 1
        }
        return value
    }

    /// The `LENGTH KEY=VALUE\n` records of a pax extended header (POSIX.1-2017 pax, "pax Extended Header"). Like
    /// libarchive, a NUL byte where a record would start ends the list.
    static func paxRecords(_ body: [UInt8]) throws -> [(key: ArraySlice<UInt8>, value: [UInt8])] {
        var records: [(ArraySlice<UInt8>, [UInt8])] = []
        var start = 0
        while start < body.count, body[start] != 0 {
            var cursor = start
            var length = 0
            while cursor < body.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(body[cursor]), length <= body.count {
                length = length * 10 + Int(body[cursor] - UInt8(ascii: "0"))
                cursor += 1
            }
            let end = start + length
            guard cursor > start, cursor < body.count, body[cursor] == 0x20, end <= body.count, end > cursor + 1,
                  body[end - 1] == 0x0a, let equals = body[(cursor + 1)..<(end - 1)].firstIndex(of: UInt8(ascii: "=")),
                  equals > cursor + 1
            else { throw ArchiveError.unsupportedEntry("a pax extended header record is malformed") }
            records.append((body[(cursor + 1)..<equals], Array(body[(equals + 1)..<(end - 1)])))
            start = end
        }
        return records
    }
}
