import Foundation
import XCTest

/// Deletion receipts (vault-format.md §6.3), driven through the binary: a data-protection officer exports a
/// receipt, and the user verifies it with nothing but the file and a copy of the vault's trust record.
/// Day 0 = 2026-11-29.
final class ReceiptCLITests: XCTestCase {
    /// `shredvault receipt verify FILE --trust TRUST …` with no vault and no key in sight.
    func verify(_ file: String, trust: String, _ extra: [String] = []) throws -> CLI.Result {
        try runShredvault(["receipt", "verify", file, "--trust", trust] + extra)
    }

    func testAReceiptVerifiesOfflineAndOneEditedByteFails() throws {
        let s = try Scenario(self)
        try s.writeSource([SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 21)),
                           SourceUser(id: "ub", lastActive: inactiveDate, files: sampleFiles(seed: 22))])
        try s.initVault()
        assertSuccess(try s.sv(["archive", "--source", s.source], day: 0), "archive")

        // ub is under a legal hold: its request is recorded, blocked, and has no receipt.
        assertSuccess(try s.svk(["hold", "place", "ub", "--case", "HR-1", "--reason", "claim"], day: 1), "hold ub")
        XCTAssertEqual(try s.sv(["delete", "ub", "--request-id", "DSR-B"], day: 1).status, 10)
        assertOneLineError(try s.sv(["receipt", "show", "DSR-B"], day: 1), exit: 66, ["DSR-B", "waits for legal hold HR-1"], "blocked request")

        // ua is deleted: the request completes with a receipt.
        let deletion = try s.sv(["delete", "ua", "--request-id", "DSR-A", "--received", SimDay.now(1, "08:00:00")], day: 2)
        assertSuccess(deletion, "delete ua")
        XCTAssertEqual(deletion.json?["receipt"] as? Bool, true, deletion.stdout)
        let list = try s.sv(["receipt", "list"], day: 2)
        assertSuccess(list, "receipt list")
        XCTAssertEqual(jsonLines(list.stdout).map { "\($0["requestId"] as? String ?? "?") \(($0["valid"] as? Bool).map { "\($0)" } ?? "?")" },
                       ["DSR-A true"], list.stdout)
        let shown = try s.sv(["receipt", "show", "DSR-A"], day: 2)
        assertSuccess(shown, "receipt show")
        let receipt = try XCTUnwrap(shown.json?["receipt"] as? [String: Any], shown.stdout)
        XCTAssertEqual(receipt["userId"] as? String, "ua")
        XCTAssertEqual(receipt["received"] as? String, SimDay.now(1, "08:00:00"))
        XCTAssertEqual(receipt["completed"] as? String, SimDay.now(2))
        XCTAssertEqual(receipt["onTime"] as? Bool, true)
        XCTAssertEqual((receipt["destroyedKeys"] as? [String])?.count, 1)

        // The officer's hand-over: the receipt file and a copy of the trust record, in a directory of their own.
        let handover = s.dir + "/handover"
        try FileManager.default.createDirectory(atPath: handover, withIntermediateDirectories: false)
        let file = handover + "/DSR-A.receipt", trust = handover + "/trust"
        assertSuccess(try s.sv(["receipt", "export", "DSR-A", "--out", file], day: 2), "receipt export")
        try FileManager.default.copyItem(atPath: s.vault + "/trust", toPath: trust)
        assertOneLineError(try s.sv(["receipt", "export", "DSR-A", "--out", file], day: 2), exit: 73, [file], "export over an existing file")
        let stdout = try s.sv(["receipt", "export", "DSR-A"], day: 2, json: false)
        XCTAssertEqual(Data(stdout.stdout.utf8), try Data(contentsOf: URL(fileURLWithPath: file)), "export to stdout writes the same file")
        let shownTrust = try s.sv(["trust", "show"], day: 2)
        let masterKeyId = try XCTUnwrap(shownTrust.json?["masterKeyId"] as? String, shownTrust.stdout)

        // The user's side: no vault at all.
        try FileManager.default.removeItem(atPath: s.vault)
        let ok = try verify(file, trust: trust, ["--master-key-id", masterKeyId])
        assertSuccess(ok, "receipt verify")
        XCTAssertTrue(ok.stdout.hasPrefix("receipt valid: \(file)\n"), ok.stdout)
        XCTAssertTrue(ok.stdout.contains("deletion request DSR-A of user ua: completed \(SimDay.now(2)), on time"), ok.stdout)
        let okJSON = try verify(file, trust: trust, ["--json"])
        assertSuccess(okJSON, "receipt verify --json")
        XCTAssertEqual(okJSON.json?["valid"] as? Bool, true)
        XCTAssertEqual((okJSON.json?["receipt"] as? [String: Any])?["requestId"] as? String, "DSR-A")

        // One edited byte fails: in the user id, a date, the signed text's structure, the signature.
        let original = try Data(contentsOf: URL(fileURLWithPath: file))
        let text = String(decoding: original, as: UTF8.self)
        let edited = handover + "/edited.receipt"
        var positions: [Int] = []
        for needle in ["\\\"userId\\\":\\\"ua", "\\\"completed\\\":\\\"", "\\\"onTime\\\":true", "\\\"destroyedKeys\\\":[\\\"", "\"signature\":\""] {
            let range = try XCTUnwrap(text.range(of: needle), needle)
            positions.append(text.utf8.distance(from: text.utf8.startIndex, to: range.upperBound))
        }
        positions += [0, original.count / 2, original.count - 2, original.count - 1]
        for i in positions {
            var bytes = original
            bytes[i] = bytes[i] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
            try bytes.write(to: URL(fileURLWithPath: edited))
            assertOneLineError(try verify(edited, trust: trust), exit: 65, [edited, "does not verify"], "byte \(i) edited")
        }

        // Another vault's trust record, a wrong pin, an edited trust record.
        let other = try Scenario(self)
        try other.initVault()
        assertOneLineError(try verify(file, trust: other.vault + "/trust"), exit: 65, ["does not verify", "not by vault"], "another vault")
        assertOneLineError(try verify(file, trust: trust, ["--master-key-id", String(repeating: "0", count: 32)]), exit: 65,
                           ["not the pinned"], "wrong pin")
        let trustText = try String(contentsOfFile: trust, encoding: .utf8)
        try trustText.replacingOccurrences(of: "\\\"serial\\\":1", with: "\\\"serial\\\":7").write(toFile: handover + "/trust-edited", atomically: true, encoding: .utf8)
        assertOneLineError(try verify(file, trust: handover + "/trust-edited"), exit: 65, ["signature does not verify"], "edited trust record")

        // Usage and missing files.
        XCTAssertEqual(try runShredvault(["receipt", "verify", file]).status, 64, "--trust is required")
        XCTAssertEqual(try verify(file, trust: trust, ["--master-key-id", "xyz"]).status, 64, "a malformed pin")
        assertOneLineError(try verify(handover + "/missing.receipt", trust: trust), exit: 66, ["missing.receipt"], "missing receipt file")
    }

    func testTheHeldRequestGetsItsReceiptWhenTheHoldIsReleased() throws {
        let s = try Scenario(self)
        try s.writeSource([SourceUser(id: "ub", lastActive: inactiveDate, files: sampleFiles(seed: 23))])
        try s.initVault()
        assertSuccess(try s.sv(["archive", "--source", s.source], day: 0), "archive")
        assertSuccess(try s.svk(["hold", "place", "ub", "--case", "HR-1", "--reason", "claim"], day: 1), "hold ub")
        XCTAssertEqual(try s.sv(["delete", "ub", "--request-id", "DSR-B"], day: 1).status, 10)
        let before = try s.sv(["receipt", "list"], day: 1)
        assertSuccess(before, "receipt list")
        XCTAssertEqual(before.stdout, "", "no receipt while the hold lasts")
        assertSuccess(try s.svk(["hold", "release", "ub", "--case", "HR-1"], day: 9), "release")
        let shown = try s.sv(["receipt", "show", "DSR-B"], day: 9, json: false)
        assertSuccess(shown, "receipt show")
        XCTAssertTrue(shown.stdout.contains("deletion request DSR-B of user ub: completed \(SimDay.now(9)), LATE"), shown.stdout)
        let file = s.dir + "/DSR-B.receipt"
        assertSuccess(try s.sv(["receipt", "export", "DSR-B", "--out", file], day: 9), "export")
        assertSuccess(try verify(file, trust: s.vault + "/trust"), "verify")
    }
}
