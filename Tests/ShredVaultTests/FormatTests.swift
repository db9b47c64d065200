import XCTest
@testable import ShredVault

final class FormatTests: XCTestCase {
    func testCivilDayRoundTripAndValidation() {
        XCTAssertEqual(CivilDay(iso: "1970-01-01")?.daysSinceEpoch, 0)
        XCTAssertEqual(CivilDay(iso: "2027-02-26")?.daysSinceEpoch, 20_875)
        XCTAssertEqual(CivilDay(iso: "2024-02-29")?.iso, "2024-02-29")
        for bad in ["2026-02-29", "2026-13-01", "2026-00-10", "2026-1-01", "26-01-01", "2026/01/01", "2026-01-32", ""] {
            XCTAssertNil(CivilDay(iso: bad), bad)
        }
        var d = CivilDay(iso: "1999-12-25")!
        for _ in 0..<20_000 {
            XCTAssertEqual(CivilDay(iso: d.iso), d)
            d = d.adding(days: 1)
        }
        XCTAssertEqual(CivilDay(iso: "2026-11-30")!.weekdayIndex, 0) // Monday
        XCTAssertEqual(CivilDay(iso: "2026-11-29")!.weekdayIndex, 6) // Sunday
        XCTAssertEqual(CivilDay(unixSeconds: -1).iso, "1969-12-31")
    }

    func testTimestampParsing() {
        XCTAssertEqual(Timestamp.parse("2026-11-29"), 1_795_910_400)
        XCTAssertEqual(Timestamp.parse("2026-11-29T00:00:00Z"), 1_795_910_400)
        XCTAssertEqual(Timestamp.parse("2026-11-29T01:30:00+01:30"), 1_795_910_400)
        XCTAssertEqual(Timestamp.parse("2026-11-28T23:00:00.123-01:00"), 1_795_910_400)
        XCTAssertEqual(Timestamp.parse("2026-11-29T03:04"), 1_795_910_400 + 3 * 3600 + 240)
        for bad in ["2026-11-29T", "2026-11-29T25:00:00Z", "2026-11-29T10:00:00Q", "yesterday", "2026-11-29T10:00:00+0100"] {
            XCTAssertNil(Timestamp.parse(bad), bad)
        }
        XCTAssertEqual(Timestamp.format(1_795_910_400 + 3723), "2026-11-29T01:02:03Z")
        // Times read from files (a header's created-at, a snapshot's taken-at) may be any Int64 (found by tools/fuzz).
        XCTAssertEqual(CivilDay(unixSeconds: -86_400).iso, "1969-12-31")
        XCTAssertEqual(CivilDay(unixSeconds: -86_401).iso, "1969-12-30")
        XCTAssertEqual(Timestamp.format(-1), "1969-12-31T23:59:59Z")
        XCTAssertEqual(CivilDay(unixSeconds: .min).daysSinceEpoch, -106_751_991_167_301)
        XCTAssertTrue(Timestamp.format(.min).hasSuffix("T08:29:52Z"))  // Int64.min = day -106751991167301 + 30592 s
        XCTAssertTrue(Timestamp.format(.max).hasSuffix("T15:30:07Z"))
    }

    func testUserIDSyntax() {
        for good in ["u0100037", "A", "a.b_c-d", String(repeating: "x", count: 128)] { XCTAssertNotNil(UserID(good), good) }
        for bad in ["", ".hidden", "-x", "a/b", "..", "ü", "a b", String(repeating: "x", count: 129)] { XCTAssertNil(UserID(bad), bad) }
    }

    func testHeaderEncodingIsTheSpecifiedLayout() throws {
        let h = testHeader(user: "u0000001", bundleId: Hex.decode("00112233445566778899aabbccddeeff")!)
        let bytes = h.encoded()
        XCTAssertEqual(bytes.count, 100)
        XCTAssertEqual(Hex.encode(bytes[0..<16]), "535642554e444c0a" + "0001" + "0001" + "0064" + "08" + "00")
        XCTAssertEqual(Hex.encode(bytes[48..<60]), "000000006b0b6b00" + "0000518b")
        XCTAssertEqual(Array(bytes[92...]), Array("u0000001".utf8))
        XCTAssertEqual(try BundleHeader.decode(bytes, path: "x"), h)
    }

    func testHeaderRejections() throws {
        let good = testHeader().encoded()
        func expect(_ mutate: (inout [UInt8]) -> Void, _ check: (VaultError) -> Bool, line: UInt = #line) {
            var b = good
            mutate(&b)
            XCTAssertThrowsError(try BundleHeader.decode(b, path: "x"), line: line) { e in
                XCTAssertTrue(check(e as! VaultError), "\(e)", line: line)
            }
        }
        expect({ $0[0] ^= 1 }) { if case .notABundle = $0 { return true }; return false }
        expect({ $0[9] = 2 }) { $0 == .unsupportedVersion(path: "x", version: 2) }
        expect({ $0[11] = 9 }) { $0 == .unsupportedAlgorithm(path: "x", algorithm: 9) }
        expect({ $0[13] += 1 }) { if case .malformedHeader = $0 { return true }; return false }
        expect({ $0[14] = 0 }) { if case .malformedHeader = $0 { return true }; return false }
        expect({ $0[15] = 1 }) { if case .malformedHeader = $0 { return true }; return false }
        expect({ $0[92] = UInt8(ascii: "/") }) { if case .malformedHeader = $0 { return true }; return false }
        expect({ $0.removeLast() }) { if case .malformedHeader = $0 { return true }; return false }
    }

    func testEntryPathRules() {
        XCTAssertNil(EntryPath.problem("a/b/c.txt"))
        XCTAssertNil(EntryPath.problem("données/日本語 ✓.txt"))
        for bad in ["", "/etc/passwd", "a//b", "a/./b", "../x", "a/..", "a/", String(repeating: "x", count: 256)] {
            XCTAssertNotNil(EntryPath.problem(bad), bad)
        }
    }
}
