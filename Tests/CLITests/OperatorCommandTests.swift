import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The operator's commands say and do exactly what they claim (issue #12 item 7): `sweep --dry-run` reports what the
/// sweep then does; `delete` of a user not archived yet is recorded (with `--not-archived`) and keeps the user from
/// ever being archived, while a typo is refused; `hold release` takes several users and `--all`; the read-only
/// commands work on a read-only vault. Day 0 = 2026-11-29 (a Sunday).
final class OperatorCommandTests: XCTestCase {
    func archivedScenario(_ users: [String], extra: [SourceUser] = []) throws -> Scenario {
        let s = try Scenario(self)
        try s.writeSource(users.enumerated().map { SourceUser(id: $1, lastActive: inactiveDate, files: sampleFiles(seed: UInt64(100 + $0))) } + extra)
        try s.initVault()
        let archive = try s.sv(["archive", "--source", s.source], day: 0)
        assertSuccess(archive, "archive")
        XCTAssertEqual(Scenario.users(archive, "archived"), users.sorted(), archive.stdout)
        return s
    }

    // MARK: - sweep --dry-run

    func testSweepDryRunReportsExactlyWhatTheSweepDoes() throws {
        let s = try archivedScenario(["ua", "ub", "uc"])
        assertSuccess(try s.sv(["keystore", "backup", "--to", s.dir + "/ks.svks"], day: 0), "keystore backup (epoch key of day 0)")
        // What interrupted jobs leave, for the sweep's convergence to finish first: a deletion request recorded but not
        // carried out, the destruction of a released case's hold key, a partial bundle file.
        let t = SimDay.day0 * 86400 + 12 * 3600  // SimDay.now(0)
        try s.editCatalog([
            "INSERT INTO deletion_requests (request_id, user_id, received_at, deadline_day, recorded_at, state) VALUES ('DSR-7', 'ub', \(t), \(SimDay.day0 + 5), \(t), 'pending')",
            "INSERT INTO intents (kind, created_at, payload) VALUES ('destroy-hold-key', \(t), '{\"at\":\(t),\"caseId\":\"GONE\"}')",
        ])
        let bundleDir = s.vault + "/bundles/2027/02/26"
        let leftover = bundleDir + "/.0123.svb.partial-0123456789ab"
        try write("partial\n", to: leftover)

        // Day 91: the bundles' day (day 89) has ended and the day-0 backup epoch is past its 30 days.
        var dry: CLI.Result?
        try assertChangesNothing(s, "sweep --dry-run") {
            dry = try s.sv(["sweep", "--dry-run"], day: 91)
            let text = try s.sv(["sweep", "--dry-run"], day: 91, json: false)
            assertSuccess(text, "sweep --dry-run (text)")
            for needle in ["backup-epoch keys of 1 epoch starting \(SimDay.iso(0))", "the day keys of 1 day (\(SimDay.iso(89)))",
                           "complete deletion requests DSR-7", "finish 1 interrupted job step (destroy-hold-key)",
                           "remove 1 temporary file", "remove 2 expired bundles", "nothing changed"] {
                XCTAssertTrue(text.stdout.contains(needle), "dry run text should say '\(needle)': \(text.stdout)")
            }
        }
        let planned = try XCTUnwrap(dry)
        assertSuccess(planned, "sweep --dry-run")
        XCTAssertEqual(planned.json?["dryRun"] as? Bool, true)
        XCTAssertEqual(planned.json?["destroyedEpochKeys"] as? [String], [SimDay.iso(0)], planned.stdout)
        XCTAssertEqual(planned.json?["destroyedDayKeys"] as? [String], [SimDay.iso(89)], planned.stdout)
        XCTAssertEqual(planned.json?["expiredBundles"] as? Int, 2, "ub is shredded first, so only ua and uc expire: \(planned.stdout)")
        let converged = planned.json?["converged"] as? [String: Any]
        XCTAssertEqual(converged?["completedDeletions"] as? [String], ["DSR-7"], planned.stdout)
        XCTAssertEqual(converged?["resumedIntents"] as? [String], ["destroy-hold-key"], planned.stdout)
        XCTAssertEqual(converged?["removedLeftovers"] as? [String], [leftover], planned.stdout)

        let real = try s.sv(["sweep"], day: 91)
        assertSuccess(real, "sweep")
        for key in ["destroyedEpochKeys", "destroyedDayKeys", "expiredBundles", "freedBytes", "converged", "today"] {
            XCTAssertEqual(try canonical(planned.json?[key]), try canonical(real.json?[key]), "\(key): the dry run said otherwise")
        }
        XCTAssertEqual(try sqliteRows(s.catalog, "SELECT user_id FROM tombstones"), ["'ub'"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: leftover))
        // Nothing is left to do: a second dry run and the sweep agree on nothing.
        let after = try s.sv(["sweep", "--dry-run"], day: 91)
        XCTAssertNil(after.json?["converged"], after.stdout)
        XCTAssertEqual(after.json?["expiredBundles"] as? Int, 0)
    }

    func canonical(_ value: Any?) throws -> String {
        guard let value else { return "nil" }
        if let s = value as? String { return s }
        return String(decoding: try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed]), as: UTF8.self)
    }

    // MARK: - delete before archive

    func testDeleteOfAUserNotArchivedYetIsRecordedAndTheUserIsNeverArchived() throws {
        let s = try Scenario(self)
        try s.writeSource([SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 110)),
                           SourceUser(id: "uz", lastActive: inactiveDate, files: sampleFiles(seed: 111))])
        try s.initVault()
        // A user the vault does not know: refused (a typo must not be recorded as a completed deletion).
        try assertChangesNothing(s, source: s.source, "delete of an unknown user") {
            let r = try s.sv(["delete", "uz", "--request-id", "DSR-9", "--received", SimDay.now(0)], day: 0)
            assertOneLineError(r, exit: 66, ["user uz is unknown to this vault", "--not-archived", "nothing was recorded"], "unknown user")
            let dry = try s.sv(["delete", "uz", "--request-id", "DSR-9", "--not-archived", "--dry-run"], day: 0)
            assertSuccess(dry, "delete --not-archived --dry-run")
            XCTAssertEqual(dry.json?["outcome"] as? String, "would-record-before-archive", dry.stdout)
        }
        let r = try s.sv(["delete", "uz", "--request-id", "DSR-9", "--received", SimDay.now(0), "--not-archived"], day: 0)
        assertSuccess(r, "delete --not-archived")
        XCTAssertEqual(r.json?["outcome"] as? String, "recorded-before-archive", r.stdout)
        XCTAssertEqual(r.json?["deadline"] as? String, SimDay.iso(5), "5 business days after Sunday day 0: Friday day 5")
        XCTAssertEqual(try sqliteRows(s.catalog, "SELECT request_id, user_id, deadline_day, state FROM deletion_requests"),
                       ["'DSR-9'\t'uz'\t\(SimDay.day0 + 5)\t'done'"])
        XCTAssertEqual(try sqliteRows(s.catalog, "SELECT user_id, request_id FROM tombstones"), ["'uz'\t'DSR-9'"])
        XCTAssertEqual(try sqliteRows(s.catalog, "SELECT action, user_id FROM audit WHERE user_id = 'uz' ORDER BY seq"),
                       ["'deletion-request'\t'uz'", "'shred'\t'uz'"])

        // The nightly job never archives the user (its data in the export is reported), and archives the others.
        for day in [0, 1] {
            let archive = try s.sv(["archive", "--source", s.source], day: day)
            assertSuccess(archive, "archive day \(day)")
            XCTAssertEqual(Scenario.users(archive, "archived"), day == 0 ? ["ua"] : [], archive.stdout)
            XCTAssertEqual(archive.json?["reappeared"] as? [String], ["uz"], archive.stdout)
            XCTAssertTrue(archive.stderr.contains("user uz"), archive.stderr)
        }
        XCTAssertEqual(try s.listed(user: "uz", day: 1).count, 0)
        XCTAssertEqual(try Tree(s.source + "/users/uz"), try Tree(s.pristine + "/users/uz"), "the export's copy is the operator's to remove")
        // The same request again is already done; a hold finds the user deleted.
        let again = try s.sv(["delete", "uz", "--request-id", "DSR-9", "--not-archived"], day: 1)
        XCTAssertEqual(again.json?["outcome"] as? String, "already-deleted", again.stdout)
        assertOneLineError(try s.svk(["hold", "place", "uz", "--case", "C1", "--reason", "r"], day: 1), exit: 11, ["uz", "DSR-9"], "hold on uz")
    }

    // MARK: - hold release of several users

    func testHoldReleaseTakesSeveralUsersAndAll() throws {
        let s = try archivedScenario(["ua", "ub", "uc", "ud"])
        assertSuccess(try s.svk(["hold", "place", "--all", "--case", "LIT-1", "--reason", "litigation"], day: 1), "hold place --all")
        assertSuccess(try s.svk(["hold", "place", "ua", "--case", "HR-2", "--reason", "hr case"], day: 1), "second case on ua")
        let blocked = try s.sv(["delete", "ud", "--request-id", "DSR-4"], day: 1)
        XCTAssertEqual(blocked.status, 10, blocked.stderr)

        func heldBy(_ caseId: String) throws -> [String] {
            let r = try s.sv(["hold", "list", "--all"], day: 2)
            return ((r.json?["holds"] as? [[String: Any]]) ?? []).filter { $0["caseId"] as? String == caseId && $0["releasedAt"] == nil }
                .compactMap { $0["user"] as? String ?? $0["userId"] as? String }.sorted()
        }
        XCTAssertEqual(try heldBy("LIT-1"), ["ua", "ub", "uc", "ud"])
        // One user not held under the case: nothing is released.
        try assertChangesNothing(s, "hold release with a user the case does not hold") {
            assertOneLineError(try s.svk(["hold", "release", "ua", "ub", "ux", "--case", "LIT-1"], day: 2), exit: 66,
                               ["user ux has no active hold for case LIT-1"], "release ua ub ux")
            assertOneLineError(try s.svk(["hold", "release", "ub", "ua", "--case", "HR-3"], day: 2), exit: 66,
                               ["user ub has no active hold for case HR-3"], "release under another case")
        }
        // Two users.
        let two = try s.svk(["hold", "release", "ua", "ub", "--case", "LIT-1"], day: 2)
        assertSuccess(two, "hold release ua ub")
        let reports = (try JSONSerialization.jsonObject(with: Data(two.stdout.utf8)) as? [[String: Any]]) ?? []
        XCTAssertEqual(reports.compactMap { $0["user"] as? String }, ["ua", "ub"], two.stdout)
        XCTAssertEqual(reports.first?["remainingHolds"] as? [String], ["HR-2"], "ua stays held under HR-2")
        XCTAssertEqual(reports.last?["newExpiryDay"] as? String, SimDay.iso(89), "ub expires on its original day")
        XCTAssertEqual(try heldBy("LIT-1"), ["uc", "ud"])
        XCTAssertEqual(try heldBy("HR-2"), ["ua"])
        // --all: every user the case still holds; the blocked deletion runs, the case's key is destroyed.
        let all = try s.svk(["hold", "release", "--all", "--case", "LIT-1"], day: 3)
        assertSuccess(all, "hold release --all")
        let allReports = (try JSONSerialization.jsonObject(with: Data(all.stdout.utf8)) as? [[String: Any]]) ?? []
        XCTAssertEqual(allReports.compactMap { $0["user"] as? String }, ["uc", "ud"], all.stdout)
        XCTAssertEqual(allReports.flatMap { ($0["executedDeletions"] as? [String]) ?? [] }, ["DSR-4"], all.stdout)
        XCTAssertEqual(try heldBy("LIT-1"), [])
        XCTAssertEqual(try sqliteRows(s.keystore, "SELECT subject FROM keys WHERE role = 'hold'"), ["'HR-2'"], "LIT-1's key is destroyed")
        XCTAssertEqual(try sqliteRows(s.catalog, "SELECT user_id FROM tombstones"), ["'ud'"])
        XCTAssertEqual(try s.listed(day: 3).compactMap { $0["user"] as? String }.sorted(), ["ua", "ub", "uc"])
        // The case holds nobody now.
        try assertChangesNothing(s, "hold release --all of an empty case") {
            assertOneLineError(try s.svk(["hold", "release", "--all", "--case", "LIT-1"], day: 3), exit: 66, ["LIT-1"], "release --all again")
        }
        let usage = try s.svk(["hold", "release", "--case", "LIT-1"], day: 3)
        XCTAssertEqual(usage.status, 64, usage.stderr)
    }

    // MARK: - read-only vault

    func testReadOnlyCommandsWorkOnAReadOnlyVault() throws {
        let s = try archivedScenario(["ua", "ub", "uc"])
        assertSuccess(try s.svk(["hold", "place", "ua", "--case", "C1", "--reason", "keep"], day: 1), "hold")
        assertSuccess(try s.sv(["delete", "uc", "--request-id", "DSR-1"], day: 1), "delete (a receipt)")
        let commands: [[String]] = [["status"], ["list"], ["check"], ["audit", "verify"], ["hold", "list", "--all"], ["trust", "show"],
                                    ["receipt", "list"], ["receipt", "show", "DSR-1"]]
        let expected = try commands.map { try s.sv($0, day: 2) }
        for (c, r) in zip(commands, expected) { assertSuccess(r, c.joined(separator: " ") + " on the writable vault") }

        // The whole scenario read-only: the vault, and the keyring and root beside the restore key.
        if let problem = makeReadOnly(s.dir, self) { return XCTFail(problem) }
        XCTAssertFalse(FileManager.default.createFile(atPath: s.vault + "/probe", contents: Data()), "the vault is read-only")
        for phase in ["read-only vault", "read-only vault without a lock file"] {
            for (c, before) in zip(commands, expected) {
                let r = try s.sv(c, day: 2)
                assertSuccess(r, "\(c.joined(separator: " ")) on a \(phase)")
                XCTAssertEqual(r.stdout, before.stdout, "\(c.joined(separator: " ")) on a \(phase) reports what it did before")
            }
            let sweep = try s.sv(["sweep"], day: 2)
            XCTAssertNotEqual(sweep.status, 0, "a job that writes fails on a \(phase): \(sweep.stderr)")
            guard phase == "read-only vault" else { break }
            // A vault whose lock file is missing (never locked, or removed) reads without one.
            makeWritable(s.dir)
            try FileManager.default.removeItem(atPath: s.vault + "/lock")
            if let problem = makeReadOnly(s.dir, self) { return XCTFail(problem) }
        }
        makeWritable(s.dir)
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.vault + "/lock"), "a read-only command created no lock")
        assertSuccess(try s.sv(["check"], day: 2), "check once writable again")
    }
}
