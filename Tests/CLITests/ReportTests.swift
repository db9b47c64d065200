import Foundation
import XCTest

/// The compliance report (`shredvault report`): its JSON states the facts the vault's own commands report, its HTML
/// page is self-contained (no script, nothing loaded from elsewhere, every value escaped) and headless Chromium (Debian
/// `chromium`) renders it to a PNG that is not blank, without a console message or a blocked resource.
final class ReportTests: XCTestCase {
    func testTheReportStatesTheVaultsFactsAndRendersInChromium() throws {
        let s = try Scenario(self)
        try s.writeSource([
            SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 31)),
            SourceUser(id: "ub", lastActive: inactiveDate, files: sampleFiles(seed: 32)),
            SourceUser(id: "uc", lastActive: inactiveDate, files: sampleFiles(seed: 33)),
        ])
        try s.initVault()
        assertSuccess(try s.sv(["archive", "--source", s.source], day: 0), "archive")
        assertSuccess(try s.svk(["hold", "place", "ua", "--case", "CASE-7", "--reason", "litigation"], day: 1), "hold place")
        assertSuccess(try s.sv(["delete", "ub", "--request-id", "DSR-1"], day: 2), "delete")
        let blocked = try s.sv(["delete", "ua", "--request-id", "DSR-<2>&\"x\""], day: 2)
        XCTAssertEqual(blocked.status, 10, blocked.stderr)
        assertSuccess(try s.sv(["keystore", "backup", "--to", s.dir + "/ks.svks"], day: 3), "keystore backup")
        let out = try temporaryDirectory(self) + "/report"  // outside the scenario, which must not change
        try assertChangesNothing(s, "report") {
            assertSuccess(try s.sv(["report", "--to", out], day: 4), "report")
        }
        let again = try s.sv(["report", "--to", out], day: 4, json: false)
        XCTAssertEqual(again.status, 73, "an existing report is never overwritten: \(again.stderr)")

        // The JSON states what the vault's own commands say.
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/report.json"))) as? [String: Any])
        XCTAssertEqual(json["format"] as? String, "shredvault-report/v1")
        XCTAssertEqual(json["liveUsers"] as? Int, 2)
        XCTAssertEqual(json["heldBundles"] as? Int, 1)
        let summary = try XCTUnwrap(json["deletionSummary"] as? [String: Int])
        XCTAssertEqual(summary["total"], 2)
        XCTAssertEqual(summary["done"], 1)
        XCTAssertEqual(summary["onTime"], 1)
        XCTAssertEqual(summary["blocked"], 1)
        XCTAssertEqual(summary["overdue"], 0)
        let requests = try XCTUnwrap(json["deletionRequests"] as? [[String: Any]])
        XCTAssertEqual(requests.map { $0["requestId"] as? String }, ["DSR-1", "DSR-<2>&\"x\""])
        XCTAssertEqual(requests[0]["receipt"] as? Bool, true)
        XCTAssertEqual(requests[0]["onTime"] as? Bool, true)
        XCTAssertEqual(requests[1]["state"] as? String, "blocked")
        let calendar = try XCTUnwrap(json["expiryCalendar"] as? [[String: Any]])
        XCTAssertEqual(calendar.count, 90)
        XCTAssertEqual(calendar.map { $0["bundles"] as? Int ?? 0 }.reduce(0, +), 1, "one unheld live bundle (uc) expires within 90 days")
        let destructions = try XCTUnwrap(json["keyDestructions"] as? [[String: Any]])
        XCTAssertEqual(destructions.map { $0["subject"] as? String }, ["ub"], "the deleted user's key")
        XCTAssertEqual((json["backupEpochs"] as? [[String: Any]])?.count, 1)
        XCTAssertEqual((json["check"] as? [String: Any])?["ok"] as? Bool, true)
        XCTAssertEqual((json["audit"] as? [String: Any])?["chainOk"] as? Bool, true)
        XCTAssertNotNil((json["audit"] as? [String: Any])?["headSeq"] as? Int, "the latest signed head")

        // The page is self-contained and escapes what it shows.
        let html = try String(contentsOfFile: out + "/report.html", encoding: .utf8)
        XCTAssertFalse(html.lowercased().contains("<script"), "no script")
        XCTAssertFalse(html.contains("http://") && !html.contains("http://www.w3.org/2000/svg"), "nothing loaded from elsewhere")
        XCTAssertFalse(html.contains("https://"))
        XCTAssertTrue(html.contains("Content-Security-Policy"))
        XCTAssertTrue(html.contains("DSR-&lt;2&gt;&amp;&quot;x&quot;"), "the request id is escaped")
        XCTAssertFalse(html.contains("DSR-<2>"))
        XCTAssertEqual(html.components(separatedBy: "<svg").count - 1, 2, "two charts")

        // Chromium renders it: a PNG that is not blank, and no console message or refused resource.
        let png = s.dir + "/report.png"
        let chromium = try CLI.execute("/usr/bin/chromium", ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                                              "--enable-logging=stderr", "--v=0", "--screenshot=" + png,
                                                              "--window-size=1200,2200", "file://" + out + "/report.html"])
        XCTAssertEqual(chromium.status, 0, chromium.stderr)
        for line in chromium.stderr.split(separator: "\n") {
            XCTAssertFalse(line.contains("CONSOLE") || line.contains("Refused to") || line.contains("Content Security Policy"), String(line))
        }
        let check = try CLI.execute("/usr/bin/python3", ["-c", Self.pngInk, png])
        XCTAssertEqual(check.status, 0, check.stderr)
        let ink = Double(check.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        XCTAssertGreaterThan(ink, 0.01, "share of non-white pixels in the screenshot: \(check.stdout)")
    }

    /// Python (standard library only): decodes an 8-bit RGB/RGBA PNG (all five filter types) and prints the share of
    /// pixels that are not white.
    static let pngInk = #"""
    import struct, sys, zlib
    data = open(sys.argv[1], "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8]); body = data[pos + 8:pos + 8 + n]; pos += 12 + n
        if kind == b"IHDR": w, h, depth, color = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT": idat += body
    assert depth == 8 and color in (2, 6), (depth, color)
    bpp = 3 if color == 2 else 4
    raw, stride, prev, ink = zlib.decompress(idat), w * bpp, bytearray(w * bpp), 0
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0; b = prev[i]; c = prev[i - bpp] if i >= bpp else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        ink += sum(1 for x in range(0, stride, bpp) if line[x:x + 3] != b"\xff\xff\xff")
        prev = line
    print(ink / (w * h))
    """#
}
