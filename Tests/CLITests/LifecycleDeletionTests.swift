import Foundation
import XCTest

/// Deletion (G2) and deletion blocked by a legal hold (G5), driven through the binary.
/// Day 0 = 2026-11-29 (Sunday); the vault has a holiday on 2026-12-01 (day 2).
final class LifecycleDeletionTests: XCTestCase {
    struct UserKey { var sealedPrivate: Data; var publicKey: Data }

    /// The user's key pair as stored in the keystore (sealed private half and public half).
    func userKey(_ s: Scenario, _ user: String) throws -> UserKey? {
        let rows = try sqliteRows(s.keystore, "SELECT sealed_private, public_key FROM keys WHERE role = 'user' AND subject = '\(user)'")
        guard let row = rows.first else { return nil }
        let cols = row.split(separator: "\t").map(String.init)
        return UserKey(sealedPrivate: hexData(cols[0]), publicKey: hexData(cols[1]))
    }

    /// The destroyed key's bytes appear in no file of the vault (keystore database, its journal/WAL, free pages,
    /// the catalog and its WAL, bundles) — whole files are searched.
    func assertGone(_ key: UserKey, _ s: Scenario, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(try filesContaining(key.sealedPrivate, under: s.vault), [], "\(what): sealed private key bytes survive", file: file, line: line)
        XCTAssertEqual(try filesContaining(key.publicKey, under: s.vault), [], "\(what): public key bytes survive", file: file, line: line)
        // The keyring (epoch keys and the erasure ledger) lives beside the restore key, outside the vault.
        XCTAssertEqual(try filesContaining(key.sealedPrivate, under: s.dir + "/secrets"), [], "\(what): in the keyring", file: file, line: line)
        XCTAssertEqual(try filesContaining(key.publicKey, under: s.dir + "/secrets"), [], "\(what): in the keyring", file: file, line: line)
    }

    func testDeleteShredsEverywhereAndHeldDeletionRunsOnRelease() throws {
        let s = try Scenario(self)
        try s.writeSource([
            SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 1)),
            SourceUser(id: "ub", lastActive: inactiveDate, files: sampleFiles(seed: 2)),
            SourceUser(id: "uc", lastActive: inactiveDate, files: sampleFiles(seed: 3)),
            SourceUser(id: "ud", lastActive: activeDate, files: ["x.txt": Data("active\n".utf8)]),
            // Inactive for 380 days: below this vault's 400-day threshold.
            SourceUser(id: "ue", lastActive: SimDay.iso(-380), files: ["y.txt": Data("not yet\n".utf8)]),
        ])
        // A non-default policy: bundles live 30 days (expiry = day 29), users are archived after 400 days.
        try s.initVault(extra: ["--holiday", SimDay.iso(2), "--archive-days", "30", "--inactive-days", "400"])
        let archive = try s.sv(["archive", "--source", s.source], day: 0)
        assertSuccess(archive, "archive")
        let archived = (archive.json?["archived"] as? [[String: Any]]) ?? []
        XCTAssertEqual(archived.compactMap { $0["user"] as? String }.sorted(), ["ua", "ub", "uc"], archive.stdout)
        XCTAssertEqual(Set(archived.compactMap { $0["expiryDay"] as? String }), [SimDay.iso(29)], "--archive-days 30: expiry = day 29")
        XCTAssertEqual(try s.listed(day: 0).count, 3)
        XCTAssertEqual(try Tree(s.source + "/users/ue"), try Tree(s.pristine + "/users/ue"), "--inactive-days 400: ue is not archived yet")

        let keyA = try XCTUnwrap(try userKey(s, "ua"), "ua has a user key after archive")
        let keyB = try XCTUnwrap(try userKey(s, "ub"))
        XCTAssertEqual(keyA.publicKey.count, 65)
        XCTAssertGreaterThan(keyA.sealedPrivate.count, 65)
        // The search works: before deletion the bytes are found in the keystore.
        XCTAssertEqual(try filesContaining(keyA.sealedPrivate, under: s.vault), [s.keystore])
        let bundleA = try XCTUnwrap(try s.listed(user: "ua", day: 0).first)

        // A dry run says what would happen and changes nothing.
        try assertChangesNothing(s, "delete --dry-run") {
            let dry = try s.sv(["delete", "ua", "--request-id", "R1", "--dry-run"], day: 1)
            assertSuccess(dry, "delete --dry-run")
            XCTAssertEqual(dry.json?["outcome"] as? String, "would-shred", dry.stdout)
        }

        // Day 1 (Monday): delete ua. Deadline = 5 business days, skipping the weekend and the 2026-12-01 holiday.
        let del = try s.sv(["delete", "ua", "--request-id", "R1"], day: 1)
        assertSuccess(del, "delete ua")
        let d = try XCTUnwrap(del.json, del.stdout)
        XCTAssertEqual(d["outcome"] as? String, "shredded")
        XCTAssertEqual(d["destroyedKeys"] as? Int, 1)
        XCTAssertEqual(d["removedBundles"] as? Int, 1)
        XCTAssertEqual(d["deadline"] as? String, "2026-12-08")

        XCTAssertNil(try userKey(s, "ua"), "ua's key row is gone")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.bundlePath(bundleA)), "ua's bundle file is gone")
        let idA = bundleA["bundleId"] as? String ?? "?"
        XCTAssertEqual(regularFiles(under: s.vault + "/bundles").filter { $0.contains(idA) }, [], "no file of ua's bundle (nor its DEK sidecar) is left")
        XCTAssertEqual(try s.listed(user: "ua", day: 1).count, 0)
        try assertGone(keyA, s, "after delete ua")

        // ua cannot be decrypted any more: neither a hold nor a restore can open it.
        let hold = try s.svk(["hold", "place", "ua", "--case", "C1", "--reason", "after deletion"], day: 1)
        assertOneLineError(hold, exit: 11, ["ua", "unrecoverable: key destroyed on \(SimDay.iso(1))"], "hold on deleted ua")
        let restore = try s.svk(["restore", "ua", "--case", "C1", "--to", s.dir + "/ra"], day: 1)
        assertOneLineError(restore, exit: 11, ["unrecoverable: key destroyed on \(SimDay.iso(1))"], "restore of deleted ua")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir + "/ra"))
        let check = try s.sv(["check"], day: 1)
        assertSuccess(check, "check after delete")
        XCTAssertEqual(check.json?["ok"] as? Bool, true, check.stdout)
        assertSuccess(try s.svk(["check", "--read-data"], day: 1), "check --read-data after delete")

        // A deletion blocked by a hold: recorded, exit 10 naming the case; the data stays restorable under the hold.
        assertSuccess(try s.svk(["hold", "place", "ub", "--case", "C2", "--reason", "subpoena 42"], day: 1), "hold place ub")
        // Received on Friday 2026-11-27 (recorded on day 2): due 5 business days after receipt, skipping the
        // weekend and the holiday → Monday 2026-12-07.
        let blocked = try s.sv(["delete", "ub", "--request-id", "R2", "--received", "2026-11-27T09:00:00Z"], day: 2)
        XCTAssertEqual(blocked.status, 10, "blocked deletion exits 10: \(blocked.stderr) \(blocked.stdout)")
        XCTAssertTrue((blocked.stderr + blocked.stdout).contains("C2"), "names the blocking case: \(blocked.stderr) \(blocked.stdout)")
        // With --json the report is printed even though the command exits 10 (README "Running a vault").
        let j = try XCTUnwrap(blocked.json, "a blocked deletion prints its JSON report: \(blocked.stdout)")
        XCTAssertEqual(j["outcome"] as? String, "blocked", blocked.stdout)
        XCTAssertNotNil(try userKey(s, "ub"), "a blocked deletion destroys nothing")
        let rb = try s.svk(["restore", "ub", "--case", "C2", "--to", s.dir + "/rb"], day: 3)
        assertSuccess(rb, "restore of held ub")
        XCTAssertEqual(try Tree(s.dir + "/rb"), try Tree(s.pristine + "/users/ub"))

        // status shows the blocked request: due soon on day 8 (2026-12-07, the deadline), overdue on day 10.
        let soon = try s.sv(["status"], day: 8)
        assertSuccess(soon, "status")
        XCTAssertEqual(soon.json?["openDeletionRequests"] as? Int, 1, soon.stdout)
        let due = (soon.json?["deletionRequestsDueSoon"] as? [[String: Any]]) ?? []
        XCTAssertEqual(due.first?["requestId"] as? String, "R2", soon.stdout)
        XCTAssertEqual(due.first?["state"] as? String, "blocked", soon.stdout)
        XCTAssertEqual(due.first?["blockedBy"] as? String, "C2", soon.stdout)
        XCTAssertEqual(due.first?["deadline"] as? String, "2026-12-07", soon.stdout)
        let overdue = try s.sv(["status"], day: 10)
        XCTAssertEqual(((overdue.json?["deletionRequestsOverdue"] as? [[String: Any]]) ?? []).first?["requestId"] as? String, "R2", overdue.stdout)
        let text = try s.sv(["status"], day: 8, json: false)
        assertSuccess(text, "status (text)")
        XCTAssertTrue(text.stdout.contains("R2") && text.stdout.contains("blocked"), "text status names the blocked request: \(text.stdout)")

        // Releasing the last hold executes the blocked request.
        let release = try s.svk(["hold", "release", "ub", "--case", "C2"], day: 10)
        assertSuccess(release, "hold release ub")
        XCTAssertEqual(release.json?["executedDeletions"] as? [String], ["R2"], release.stdout)
        XCTAssertNil(try userKey(s, "ub"))
        XCTAssertEqual(try s.listed(user: "ub", day: 10).count, 0)
        try assertGone(keyB, s, "after the held deletion ran")
        let holdB = try s.svk(["hold", "place", "ub", "--case", "C3", "--reason", "again"], day: 10)
        assertOneLineError(holdB, exit: 11, ["unrecoverable: key destroyed on \(SimDay.iso(10))"], "hold on deleted ub")
        let st = try s.sv(["status"], day: 10)
        XCTAssertEqual(st.json?["tombstones"] as? Int, 2, st.stdout)
        XCTAssertEqual(st.json?["openDeletionRequests"] as? Int, 0, st.stdout)
        let check2 = try s.svk(["check", "--read-data"], day: 10)
        assertSuccess(check2, "check --read-data after the held deletion")
        XCTAssertEqual(check2.json?["checkedBundles"] as? Int, 1, "uc is still live and readable: \(check2.stdout)")

        // Tombstoned users whose data reappears in the source are reported and never archived again.
        for u in ["ua", "ub"] {
            try FileManager.default.copyItem(atPath: s.pristine + "/users/" + u, toPath: s.source + "/users/" + u)
        }
        let again = try s.sv(["archive", "--source", s.source], day: 11)
        assertSuccess(again, "archive with reappeared users")
        XCTAssertEqual((again.json?["reappeared"] as? [String])?.sorted(), ["ua", "ub"], again.stdout)
        XCTAssertEqual(try XCTUnwrap(again.json?["archived"] as? [[String: Any]], again.stdout).count, 0, again.stdout)
        XCTAssertEqual(try s.listed(user: "ua", day: 11).count + s.listed(user: "ub", day: 11).count, 0)
        XCTAssertNil(try userKey(s, "ua"), "no new key for a tombstoned user")

        // Repeating a processed request is harmless.
        let repeated = try s.sv(["delete", "ua", "--request-id", "R1"], day: 11)
        assertSuccess(repeated, "repeated delete")
        XCTAssertEqual(repeated.json?["outcome"] as? String, "already-deleted", repeated.stdout)
        assertSuccess(try s.sv(["check"], day: 11), "final check")
        assertSuccess(try s.sv(["audit", "verify"], day: 11), "audit verify")
    }
}
