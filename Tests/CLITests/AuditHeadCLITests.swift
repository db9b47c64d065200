import Foundation
import XCTest

/// Signed audit heads through the binary (vault-format.md §6.2): `audit head` exports the signed head, `audit verify
/// --head` catches what an attacker with write access to catalog.db does before it, `status` and `check` show the
/// export's age. The attacker edits the catalog with Python's sqlite3 and hashlib, as anyone could.
final class AuditHeadCLITests: XCTestCase {
    /// A scenario after several jobs (init, archive, hold place, delete, hold release), with the signed head
    /// exported on day 3 to `dir/head.json`, outside the vault.
    func makeScenario() throws -> (Scenario, String) {
        let s = try Scenario(self)
        try s.writeSource([
            SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 1)),
            SourceUser(id: "ub", lastActive: inactiveDate, files: sampleFiles(seed: 2)),
            SourceUser(id: "uc", lastActive: inactiveDate, files: sampleFiles(seed: 3)),
        ])
        try s.initVault()
        assertSuccess(try s.sv(["archive", "--source", s.source], day: 0), "archive")
        assertSuccess(try s.svk(["hold", "place", "ua", "--case", "C1", "--reason", "litigation"], day: 1), "hold place")
        assertSuccess(try s.sv(["delete", "ub", "--request-id", "R1"], day: 2), "delete")
        assertSuccess(try s.svk(["hold", "release", "ua", "--case", "C1"], day: 3), "hold release")
        let head = s.dir + "/head.json"
        let export = try s.sv(["audit", "head", "--out", head], day: 3, json: false)
        assertSuccess(export, "audit head --out")
        XCTAssertTrue(export.stdout.hasPrefix("audit head: record "), export.stdout)
        XCTAssertTrue(export.stdout.contains("written to \(head)"), export.stdout)
        return (s, head)
    }

    /// Runs a Python snippet on the catalog (`con` is an open sqlite3 connection; committed afterwards).
    func attack(_ s: Scenario, _ code: String) throws {
        let script = """
            import hashlib, sqlite3, struct, sys
            con = sqlite3.connect(sys.argv[1])
            def rechain(start):
                prev = bytes(32) if start == 1 else con.execute("SELECT hash FROM audit WHERE seq = ?", (start - 1,)).fetchone()[0]
                for seq, at, action, user, detail in con.execute("SELECT seq, at, action, user_id, detail FROM audit WHERE seq >= ? ORDER BY seq", (start,)).fetchall():
                    h = hashlib.sha256(prev + struct.pack(">QQ", seq, at) + action.encode() + b"\\0" + (user or "").encode() + b"\\0" + detail.encode()).digest()
                    con.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, seq))
                    prev = h
            \(code)
            con.commit()
            con.close()
            """
        let r = try CLI.execute("/usr/bin/env", ["python3", "-c", script, s.catalog])
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    func testExportVerifyAndTheExportsAge() throws {
        let (s, headFile) = try makeScenario()
        let head = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: headFile))) as? [String: Any])
        XCTAssertEqual(head["format"] as? String, "shredvault-audit-head/v1")
        XCTAssertEqual(Set(head.keys), ["format", "vaultId", "seq", "hash", "at", "first", "prevHash", "signer", "signature"])
        let records = try sqliteRows(s.catalog, "SELECT max(seq) FROM audit")
        XCTAssertEqual(records, ["\(head["seq"] as? Int ?? -1)"])
        XCTAssertEqual((head["signature"] as? String)?.count, 160)
        XCTAssertEqual((head["signature"] as? String)?.hasPrefix(head["signer"] as? String ?? "?"), true)

        // To stdout: the same document, one line.
        let printed = try s.sv(["audit", "head"], day: 3, json: false)
        assertSuccess(printed, "audit head")
        XCTAssertEqual(printed.stdout, try String(contentsOfFile: headFile, encoding: .utf8))

        let verify = try s.sv(["audit", "verify", "--head", headFile], day: 3)
        assertSuccess(verify, "audit verify --head")
        XCTAssertEqual(verify.json?["ok"] as? Bool, true, verify.stdout)
        XCTAssertEqual(verify.json?["exportedHeadSeq"] as? Int, head["seq"] as? Int)
        XCTAssertEqual(verify.json?["signedRecords"] as? Int, head["seq"] as? Int)
        XCTAssertEqual(verify.json?["unsignedRecords"] as? Int, 0)
        let text = try s.sv(["audit", "verify", "--head", headFile], day: 3, json: false)
        XCTAssertTrue(text.stdout.contains("hash chain intact") && text.stdout.contains("the exported head of record \(head["seq"] as? Int ?? -1) holds"), text.stdout)

        // A head stored inside the vault is refused: whoever rewrites the vault would rewrite it too.
        assertOneLineError(try s.sv(["audit", "head", "--out", s.vault + "/head.json"], day: 3), exit: 64, ["outside the vault"], "audit head --out inside the vault")

        // status shows the export's age and the records after it; check notes an export older than 7 days, and
        // still passes.
        assertSuccess(try s.sv(["sweep"], day: 400), "sweep")
        let status = try s.sv(["status"], day: 6)
        XCTAssertEqual(status.json?["auditHeadExportAgeSeconds"] as? Int, 3 * 86_400, status.stdout)
        XCTAssertEqual(status.json?["auditHeadExportedSeq"] as? Int, head["seq"] as? Int)
        XCTAssertGreaterThan(status.json?["auditRecordsAfterExportedHead"] as? Int ?? 0, 0)
        let statusText = try s.sv(["status"], day: 6, json: false)
        XCTAssertTrue(statusText.stdout.contains("audit head: last exported \(SimDay.iso(3))T12:00:00Z, 3 days ago (record \(head["seq"] as? Int ?? -1);"),
                      statusText.stdout)
        let fresh = try s.sv(["check"], day: 10)
        assertSuccess(fresh, "check a week after the export")
        XCTAssertEqual((fresh.json?["notices"] as? [[String: Any]])?.count, 0, fresh.stdout)
        let stale = try s.sv(["check"], day: 11, json: false)
        assertSuccess(stale, "check with a stale export")
        XCTAssertTrue(stale.stdout.contains("note: audit-head-stale audit log: the last exported audit head (record \(head["seq"] as? Int ?? -1)) is 8 days old"),
                      stale.stdout)
    }

    func testRechainingTruncatingAndForgingAreCaught() throws {
        let (s, headFile) = try makeScenario()
        let pristine = s.dir + "/pristine-vault"
        try FileManager.default.copyItem(atPath: s.vault, toPath: pristine)
        func reset() throws {
            try FileManager.default.removeItem(atPath: s.vault)
            try FileManager.default.copyItem(atPath: pristine, toPath: s.vault)
        }
        let heads = try sqliteRows(s.catalog, "SELECT first_seq, last_seq FROM audit_heads ORDER BY first_seq").map {
            $0.split(separator: "\t").compactMap { Int($0) }
        }
        let archive = try XCTUnwrap(heads.first { $0[0] == 2 })
        XCTAssertEqual(archive, [2, 4], "the archive job's three records share one head")
        let last = try XCTUnwrap(heads.last?[1])

        // Dropping record 3, renumbering and re-chaining: the chain holds, the archive job's signature does not.
        try attack(s, """
            con.execute("DELETE FROM audit WHERE seq = 3")
            for (seq,) in con.execute("SELECT seq FROM audit WHERE seq > 3 ORDER BY seq").fetchall():
                con.execute("UPDATE audit SET seq = ? WHERE seq = ?", (seq - 1, seq))
            rechain(3)
            """)
        let dropped = try s.sv(["audit", "verify", "--head", headFile], day: 4, json: false)
        assertOneLineError(dropped, exit: 2, ["the audit log is broken: the signed head of audit records 2–4 does not hold:", "does not verify"], "a dropped record")
        let droppedJSON = try s.sv(["audit", "verify"], day: 4)
        XCTAssertEqual(droppedJSON.json?["kind"] as? String, "audit-signature", droppedJSON.stdout)
        XCTAssertEqual(droppedJSON.json?["ok"] as? Bool, false)
        let check = try s.sv(["check"], day: 4, json: false)
        XCTAssertEqual(check.status, 2, check.stdout)
        XCTAssertTrue(check.stdout.contains("audit-signature audit log: the signed head of audit records 2–4 does not hold"), check.stdout)
        assertOneLineError(try s.sv(["audit", "head"], day: 4), exit: 2, ["the audit log is broken, no head exported"], "audit head of a broken log")

        // Truncating the last records with their heads: only the exported head shows it.
        try reset()
        let keep = heads[heads.count - 3][1]
        try attack(s, """
            con.execute("DELETE FROM audit WHERE seq > ?", (\(keep),))
            con.execute("DELETE FROM audit_heads WHERE first_seq > ?", (\(keep),))
            """)
        assertSuccess(try s.sv(["audit", "verify"], day: 4), "audit verify of a truncated log, without the exported head")
        let truncated = try s.sv(["audit", "verify", "--head", headFile], day: 4, json: false)
        assertOneLineError(truncated, exit: 2, ["the exported audit head does not hold: the audit log ends at record \(keep), before the exported head's record \(last): records were removed"],
                           "a truncated log")

        // Appending a correctly chained record that no job signed.
        try reset()
        try attack(s, """
            con.execute("INSERT INTO audit (seq, at, action, user_id, detail, prev_hash, hash) VALUES (?, 0, 'restore', 'ua', '{}', zeroblob(32), zeroblob(32))", (\(last + 1),))
            rechain(\(last + 1))
            """)
        assertOneLineError(try s.sv(["audit", "verify"], day: 4, json: false), exit: 2,
                           ["the audit log is broken: audit record \(last + 1) is not covered by a signed head: not written by a job of this vault"], "a forged record")

        // Deleting every head.
        try reset()
        try attack(s, "con.execute(\"DELETE FROM audit_heads\")")
        assertOneLineError(try s.sv(["audit", "verify"], day: 4, json: false), exit: 2,
                           ["audit records 1–\(last) are not covered by a signed head"], "deleted heads")
    }

    func testEditedAndForeignHeadsFail() throws {
        let (s, headFile) = try makeScenario()
        let text = try String(contentsOfFile: headFile, encoding: .utf8)
        let head = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let hash = try XCTUnwrap(head["hash"] as? String)

        // One hex digit of the hash changed.
        let edited = s.dir + "/edited.json"
        let digit = hash.first == "0" ? "1" : "0"
        try write(text.replacingOccurrences(of: hash, with: digit + hash.dropFirst()), to: edited)
        assertOneLineError(try s.sv(["audit", "verify", "--head", edited], day: 3, json: false), exit: 2,
                           ["the exported audit head does not hold: the exported head of record \(head["seq"] as? Int ?? -1) does not verify:", "(it was edited)"],
                           "an edited head")

        // Not a head at all: bad input.
        let garbage = s.dir + "/garbage.json"
        try write(String(text.dropLast(5)), to: garbage)
        assertOneLineError(try s.sv(["audit", "verify", "--head", garbage], day: 3), exit: 65, ["not a ShredVault audit head"], "a damaged head file")

        assertOneLineError(try s.sv(["audit", "verify", "--head", s.dir + "/missing.json"], day: 3), exit: 66, ["exported audit head", "does not exist"],
                           "a missing head file")

        // The head of another vault.
        let other = try Scenario(self)
        try other.initVault()
        let foreign = s.dir + "/foreign.json"
        assertSuccess(try other.sv(["audit", "head", "--out", foreign], day: 0), "audit head of another vault")
        let otherId = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: foreign))) as? [String: Any])?["vaultId"] as? String)
        assertOneLineError(try s.sv(["audit", "verify", "--head", foreign], day: 3, json: false), exit: 2,
                           ["the exported head is of vault \(otherId), not of this vault \(head["vaultId"] as? String ?? "?")"], "a foreign head")
    }
}
