import Foundation
import XCTest

/// `policy show` and `policy set` (issue 14, item 5): a change may make the vault forget sooner, never later; each
/// accepted change is one `policy-set` audit record per field and a rewritten config; each refusal changes nothing.
final class PolicyCLITests: XCTestCase {
    func testShowPrintsThePolicyOfInit() throws {
        let s = try Scenario(self)
        try s.initVault(extra: ["--archive-days", "60", "--holiday", "2026-12-25"])
        let show = try s.sv(["policy", "show"], day: 0)
        assertSuccess(show, "policy show")
        let p = try XCTUnwrap(show.json, show.stdout)
        XCTAssertEqual(p["archiveDays"] as? Int, 60)
        XCTAssertEqual(p["inactiveDays"] as? Int, 365)
        XCTAssertEqual(p["deletionBusinessDays"] as? Int, 5)
        XCTAssertEqual(p["backupDays"] as? Int, 30)
        XCTAssertEqual(p["backupEpochDays"] as? Int, 1)
        XCTAssertEqual(p["maxClockJumpDays"] as? Int, 35)
        XCTAssertEqual(p["holidays"] as? [String], ["2026-12-25"])
        XCTAssertEqual(p["schemaVersion"] as? Int, 1)
        let text = try s.sv(["policy", "show"], day: 0, json: false)
        assertSuccess(text, "policy show (text)")
        XCTAssertTrue(text.stdout.contains("archive-days:           60"), text.stdout)
        XCTAssertTrue(text.stdout.contains("2026-12-25"), text.stdout)
    }

    func testAcceptedChangesAreAuditedAndWrittenToTheConfig() throws {
        let s = try Scenario(self)
        try s.initVault(extra: ["--holiday", "2026-12-24"])
        let set = try s.sv(["policy", "set", "--add-holiday", "2026-12-25", "2026-12-26", "--remove-holiday", "2026-12-24",
                            "--archive-days", "60", "--inactive-days", "300", "--deletion-business-days", "4",
                            "--backup-days", "20", "--max-clock-jump-days", "40"], day: 1)
        assertSuccess(set, "policy set")
        let report = try XCTUnwrap(set.json, set.stdout)
        let changes = (report["changes"] as? [[String: Any]] ?? []).map { "\($0["field"] ?? "?"):\($0["old"] ?? "?")->\($0["new"] ?? "?")" }
        XCTAssertEqual(changes.sorted(), ["archiveDays:90->60", "backupDays:30->20", "deletionBusinessDays:5->4",
                                          "holidays:2026-12-24->2026-12-25,2026-12-26", "inactiveDays:365->300",
                                          "maxClockJumpDays:35->40"])
        // The config holds the new policy (the file every job reads).
        let policy = try XCTUnwrap(s.config["policy"] as? [String: Any])
        XCTAssertEqual(policy["archiveDays"] as? Int, 60)
        XCTAssertEqual(policy["inactiveDays"] as? Int, 300)
        XCTAssertEqual(policy["deletionBusinessDays"] as? Int, 4)
        XCTAssertEqual(policy["backupDays"] as? Int, 20)
        XCTAssertEqual(policy["maxClockJumpDays"] as? Int, 40)
        XCTAssertEqual(policy["holidays"] as? [String], ["2026-12-25", "2026-12-26"])
        // One audit record per field, old → new, and the log still verifies.
        let audited = try s.auditRecords("policy-set").map { "\($0.detail["field"] ?? "?"):\($0.detail["old"] ?? "?")->\($0.detail["new"] ?? "?")" }
        XCTAssertEqual(audited.sorted(), changes.sorted())
        let verify = try s.sv(["audit", "verify"], day: 1)
        assertSuccess(verify, "audit verify after policy set")

        // The same values again change nothing: no record, no file touched.
        try assertChangesNothing(s, "policy set with the values in place") {
            let again = try s.sv(["policy", "set", "--add-holiday", "2026-12-25", "--archive-days", "60"], day: 1)
            assertSuccess(again, "policy set (no change)")
            XCTAssertEqual((again.json?["changes"] as? [Any])?.count, 0, again.stdout)
        }
    }

    func testAShorterArchiveLimitAppliesToNewBundlesOnly() throws {
        let s = try Scenario(self)
        try s.writeSource([SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 5)),
                           SourceUser(id: "ub", lastActive: inactiveDate, files: sampleFiles(seed: 6))])
        try s.initVault()
        assertSuccess(try s.sv(["archive", "--source", s.source, "--user", "ua"], day: 0), "archive ua")
        assertSuccess(try s.sv(["policy", "set", "--archive-days", "30"], day: 0), "policy set --archive-days 30")
        assertSuccess(try s.sv(["archive", "--source", s.source, "--user", "ub"], day: 0), "archive ub")
        XCTAssertEqual(try s.listed(user: "ua", day: 0).first?["expiryDay"] as? String, SimDay.iso(89), "ua keeps its expiry day")
        XCTAssertEqual(try s.listed(user: "ub", day: 0).first?["expiryDay"] as? String, SimDay.iso(29), "ub gets the shorter limit")
    }

    func testAShorterBackupWindowDestroysTheEpochKeysOutsideItAtOnce() throws {
        let s = try Scenario(self)
        try s.initVault()
        assertSuccess(try s.sv(["keystore", "backup", "--to", s.dir + "/ks-day0.svks"], day: 0), "keystore backup on day 0")
        // Day 5 under a 30-day window: the epoch key of day 0 lives on. With 3 days it must already be gone.
        let set = try s.sv(["policy", "set", "--backup-days", "3"], day: 5)
        assertSuccess(set, "policy set --backup-days 3")
        let sweep = try XCTUnwrap(set.json?["sweep"] as? [String: Any], set.stdout)
        XCTAssertEqual(sweep["destroyedEpochKeys"] as? [String], [SimDay.iso(0)], set.stdout)
        let restore = try s.svk(["keystore", "restore", s.dir + "/ks-day0.svks"], day: 5)
        XCTAssertEqual(restore.status, 11, "the day-0 snapshot is unreadable now: \(restore.stderr)")
    }

    func testRefusalsChangeNothing() throws {
        let s = try Scenario(self)
        try s.initVault(extra: ["--archive-days", "60", "--holiday", "2026-12-25"])
        let refused: [([String], [String])] = [
            (["--archive-days", "61"], ["--archive-days 61", "only be shortened"]),
            (["--archive-days", "91"], ["--archive-days", "between 1 and 90"]),
            (["--archive-days", "0"], ["--archive-days", "between 1 and 90"]),
            (["--backup-days", "31"], ["--backup-days", "between 1 and 30"]),
            (["--inactive-days", "366"], ["--inactive-days 366", "only be shortened"]),
            (["--deletion-business-days", "6"], ["--deletion-business-days 6", "only be shortened"]),
            (["--max-clock-jump-days", "91"], ["--max-clock-jump-days", "between 1 and 90"]),
            (["--remove-holiday", "2026-12-24"], ["2026-12-24", "not in the policy"]),
            (["--add-holiday", "2026-02-30"], ["2026-02-30", "YYYY-MM-DD"]),
            (["--add-holiday", "2026-12-26", "--remove-holiday", "2026-12-26"], ["2026-12-26", "both added and removed"]),
            // A refused field refuses the whole change: the valid holiday is not added either.
            (["--add-holiday", "2027-01-01", "--archive-days", "70"], ["--archive-days 70", "only be shortened"]),
        ]
        for (args, needles) in refused {
            try assertChangesNothing(s, "policy set \(args.joined(separator: " "))") {
                let r = try s.sv(["policy", "set"] + args, day: 1)
                assertOneLineError(r, exit: 64, needles + ["nothing was changed"], "policy set \(args.joined(separator: " "))")
            }
        }
        try assertChangesNothing(s, "policy set without a change") {
            let r = try s.sv(["policy", "set"], day: 1)
            XCTAssertEqual(r.status, 64, r.stderr)
        }
        XCTAssertEqual(try s.auditRecords("policy-set").count, 0)
    }

    func testProductionVaultNeedsTheClockAndTheJobCredential() throws {
        let s = try Scenario(self)
        try s.initProduction()
        // A simulated clock is refused by a job that changes a production vault (exit 12).
        try assertChangesNothing(s, "policy set --now on a production vault") {
            let r = try s.sv(["policy", "set", "--add-holiday", "2027-01-01"], day: 0)
            XCTAssertEqual(r.status, 12, r.stderr)
        }
        // Without its job credential the job does not run.
        let credential = try XCTUnwrap(s.config["jobKeyPath"] as? String)
        let aside = s.dir + "/credential-aside"
        try FileManager.default.moveItem(atPath: credential, toPath: aside)
        try assertChangesNothing(s, "policy set without the job credential") {
            let r = try s.real(["policy", "set", "--add-holiday", "2027-01-01"])
            XCTAssertNotEqual(r.status, 0, "refused without the credential: \(r.stdout)")
            XCTAssertTrue(r.stderr.contains(credential), r.stderr)
        }
        try FileManager.default.moveItem(atPath: aside, toPath: credential)
        // On the real clock, with the credential: accepted, audited.
        let r = try s.real(["policy", "set", "--add-holiday", "2027-01-01"])
        assertSuccess(r, "policy set on a production vault")
        XCTAssertEqual(try s.auditRecords("policy-set").map { $0.detail["new"] as? String }, ["2027-01-01"])
        XCTAssertEqual(try s.real(["policy", "show"]).json?["holidays"] as? [String], ["2027-01-01"])
    }
}
