import Foundation
import XCTest
@testable import ShredVault

/// The manifest's own writer and reader (issue 15: `JSONEncoder`/`JSONDecoder` cost ~12–16 MiB for a 9 771-entry
/// manifest). The writer must give `JSONEncoder`'s bytes exactly (every bundle ever written has them); the reader must
/// read any valid JSON of the format and refuse what is not.
final class ManifestCodingTests: XCTestCase {
    static func referenceEncoding(_ m: Manifest) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(m))
    }

    static func edgeManifest() -> Manifest {
        var weird = ""
        for v in 1..<0x20 { weird.unicodeScalars.append(Unicode.Scalar(v)!) }
        weird += "\"\\/\u{7f}\u{80}é\u{2028}\u{2029}\u{FEFF}😀 K\u{212A}e\u{301}"
        return Manifest(bundleId: String(repeating: "ab", count: 16), userId: "u0100037", entries: [
            .init(path: "calls", type: .dir, size: 0, mode: 0o755, mtime: 1_700_000_000, sha256: nil),
            .init(path: "calls/" + weird, type: .file, size: Int64.max, mode: 0o777, mtime: Int64.min, sha256: String(repeating: "0f", count: 32)),
            .init(path: "z", type: .file, size: 0, mode: 0, mtime: -1, sha256: ""),
            .init(path: "ü/ß", type: .dir, size: 0, mode: 0o700, mtime: 0, sha256: nil),
        ])
    }

    func testEncodingIsJSONEncodersByteForByte() throws {
        let empty = Manifest(bundleId: "b", userId: "u\"\\", entries: [])
        for m in [Self.edgeManifest(), empty] {
            XCTAssertEqual(try m.encoded(), try Self.referenceEncoding(m))
            XCTAssertEqual(try Manifest.decode(try m.encoded()), m)
        }
        // Many generated entries: every byte value in names, sizes and times of every magnitude.
        var entries: [Manifest.Entry] = []
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in 0..<2_000 {
            x = x &* 6364136223846793005 &+ 1442695040888963407
            let scalar = Unicode.Scalar(UInt32(x >> 40) % 0xD000 + 1)!
            entries.append(.init(path: "d\(i)/" + String(Character(scalar)), type: i % 3 == 0 ? .dir : .file,
                                 size: Int64(bitPattern: x) >> (x % 63), mode: UInt32(x % 0o1000), mtime: Int64(bitPattern: x &* 31) >> (x % 40),
                                 sha256: i % 3 == 0 ? nil : String(x, radix: 16)))
        }
        let big = Manifest(bundleId: "c", userId: "u", entries: entries)
        XCTAssertEqual(try big.encoded(), try Self.referenceEncoding(big))
        XCTAssertEqual(try Manifest.decode(try big.encoded()), big)
    }

    func testReaderAcceptsAnyValidJSONOfTheFormat() throws {
        let m = Self.edgeManifest()
        // Whitespace everywhere, keys in another order, escapes JSONEncoder does not write, an unknown key of every kind.
        let text = """
         { "userId" : "u0100037" , "unknown": {"a": [1, -2.5e+3, true, false, null, "x", {}, []]},
           "entries" : [ {"type":"dir","path":"calls","size":0,"mode":493,"mtime":1700000000, "sha256": null},
           {"sha256":"\(String(repeating: "0f", count: 32))","size":9223372036854775807,"type":"file","mode":511,"mtime":-9223372036854775808,
            "path":"calls/\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000B\\f\\r\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f\\"\\\\\\/\\u007f\\u0080\\u00e9\\u2028\\u2029\\ufeff\\ud83d\\ude00 K\\u212Ae\\u0301"},
           {"path":"z","type":"file","size":0,"mode":0,"mtime":-1,"sha256":""},
           {"path":"\\u00fc/\\u00df","type":"dir","size":0,"mode":448,"mtime":0} ],
           "bundleId":"\(String(repeating: "ab", count: 16))", "format" : "shredvault-manifest/v1" }\r\n
        """
        XCTAssertEqual(try Manifest.decode(Array(text.utf8)), m)
    }

    func testReaderRefusesWhatIsNotAManifest() throws {
        let good = String(decoding: try Manifest(bundleId: "b", userId: "u", entries: [
            .init(path: "f", type: .file, size: 1, mode: 0o644, mtime: 5, sha256: "aa"),
        ]).encoded(), as: UTF8.self)
        XCTAssertNoThrow(try Manifest.decode(Array(good.utf8)))
        let bad: [(String, String)] = [
            ("empty", ""),
            ("not an object", "[]"),
            ("truncated", String(good.dropLast())),
            ("trailing bytes", good + "x"),
            ("two objects", good + good),
            ("duplicate top key", good.replacingOccurrences(of: "\"userId\":\"u\"", with: "\"userId\":\"u\",\"userId\":\"u\"")),
            ("duplicate entry key", good.replacingOccurrences(of: "\"size\":1", with: "\"size\":1,\"size\":1")),
            ("missing entries", good.replacingOccurrences(of: "\"entries\"", with: "\"entrieZ\"")),
            ("missing path", good.replacingOccurrences(of: "\"path\"", with: "\"pathZ\"")),
            ("unknown type", good.replacingOccurrences(of: "\"file\"", with: "\"link\"")),
            ("fraction", good.replacingOccurrences(of: "\"size\":1", with: "\"size\":1.0")),
            ("exponent", good.replacingOccurrences(of: "\"size\":1", with: "\"size\":1e0")),
            ("leading zero", good.replacingOccurrences(of: "\"size\":1", with: "\"size\":01")),
            ("size out of range", good.replacingOccurrences(of: "\"size\":1", with: "\"size\":9223372036854775808")),
            ("mode out of range", good.replacingOccurrences(of: "\"mode\":420", with: "\"mode\":-1")),
            ("size as a string", good.replacingOccurrences(of: "\"size\":1", with: "\"size\":\"1\"")),
            ("raw control character", good.replacingOccurrences(of: "\"path\":\"f\"", with: "\"path\":\"f\u{01}\"")),
            ("bad escape", good.replacingOccurrences(of: "\"path\":\"f\"", with: "\"path\":\"f\\x\"")),
            ("lone high surrogate", good.replacingOccurrences(of: "\"path\":\"f\"", with: "\"path\":\"\\ud83d\"")),
            ("lone low surrogate", good.replacingOccurrences(of: "\"path\":\"f\"", with: "\"path\":\"\\ude00x\"")),
            ("single quotes", good.replacingOccurrences(of: "\"path\":\"f\"", with: "\"path\":'f'")),
            ("deep unknown value", good.replacingOccurrences(of: "{\"bundleId\"", with: "{\"x\":" + String(repeating: "[", count: 100)
                + String(repeating: "]", count: 100) + ",\"bundleId\"")),
        ]
        for (what, text) in bad {
            XCTAssertThrowsError(try Manifest.decode(Array(text.utf8)), what)
        }
        // Invalid UTF-8 inside a string.
        var bytes = Array(good.utf8)
        bytes[bytes.firstIndex(of: UInt8(ascii: "f"))!] = 0xff
        XCTAssertThrowsError(try Manifest.decode(bytes), "invalid UTF-8")
    }
}
