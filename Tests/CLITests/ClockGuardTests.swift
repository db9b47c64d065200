import Foundation
import XCTest

/// The clock guard (vault-format.md §6.4), through the binary: a production vault refuses a simulated clock for every
/// job that changes it, and a real clock that went back or leapt ahead, until an operator confirms it (audited); each
/// refusal is one line, exit 12, and changes nothing. Days stop at 9999-12-31.
final class ClockGuardTests: XCTestCase {
    /// The measured failures of issue 12: `sweep --now 2030-01-01` destroyed a day key and its bundles, `archive --now`
    /// sealed bundles into 2030, `keystore backup --now` made a snapshot that outlived its window. Every job that
    /// changes a production vault now refuses --now and SHREDVAULT_NOW; read-only commands and dry runs take them.
    func testProductionVaultRefusesASimulatedClock() throws {
        let s = try Scenario(self)
        try s.productionWithUsers(["pa", "pb"])
        try makeSource(at: s.dir + "/src2", users: [SourceUser(id: "pc", lastActive: longInactiveDate, files: sampleFiles(seed: 90))])
        let dayKeys = try sqliteRows(s.keystore, "SELECT subject FROM keys WHERE role = 'day'").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "'")) }
        XCTAssertEqual(dayKeys.count, 1, "the archive made one day key")
        let refused: [(String, [String], Bool)] = [
            ("sweep", ["sweep"], false),
            ("archive", ["archive", "--source", s.dir + "/src2"], false),
            ("keystore backup", ["keystore", "backup", "--to", s.dir + "/ks.svks"], false),
            ("backup", ["backup", "--to", s.dir + "/backup"], false),
            ("delete", ["delete", "pa", "--request-id", "DSR-9"], false),
            ("hold place", ["hold", "place", "pa", "--case", "C1", "--reason", "r"], true),
            ("trust rotate", ["trust", "rotate"], true),
        ]
        for (what, args, needsKey) in refused {
            for (flag, environment) in [(["--now", "2030-01-01"], [String: String]()), ([], ["SHREDVAULT_NOW": "2030-01-01"])] {
                let source = flag.isEmpty ? "SHREDVAULT_NOW" : "--now"
                try assertChangesNothing(s, source: s.dir + "/src2", "\(what) with \(source)") {
                    let r = try s.real(args, key: needsKey ? s.keyFile : nil, extra: flag, environment: environment)
                    assertOneLineError(r, exit: 12, [source, "simulated clock", "production vault", "shredvault drill"], "\(what) with \(source)")
                }
            }
        }
        XCTAssertEqual(try sqliteRows(s.keystore, "SELECT subject FROM keys WHERE role = 'day'").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "'")) },
                       dayKeys, "no day key was destroyed")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir + "/ks.svks"), "no snapshot was written")
        // init refuses a simulated clock unless it makes a drill vault: the guard would start in the wrong year.
        let initNow = try runShredvault(["init", "--vault", s.dir + "/v2", "--master-key-file", s.dir + "/secrets/k2", "--now", "2030-01-01"])
        assertOneLineError(initNow, exit: 12, ["--now", "simulated clock"], "init --now without --drill")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir + "/v2"), "init --now made no vault")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir + "/secrets/k2"), "init --now made no restore key")

        // What-if views change nothing and take the simulated clock.
        try assertChangesNothing(s, source: s.dir + "/src2", "read-only commands and dry runs with --now") {
            let status = try s.real(["status"], extra: ["--now", "2030-01-01"])
            assertSuccess(status, "status --now")
            XCTAssertEqual(status.json?["today"] as? String, "2030-01-01", status.stdout)
            XCTAssertEqual(status.json?["drill"] as? Bool, false, status.stdout)
            XCTAssertTrue(status.stderr.contains("ahead of the latest job"), "status warns that jobs would refuse that clock: \(status.stderr)")
            assertSuccess(try s.real(["list"], extra: ["--now", "2030-01-01"]), "list --now")
            assertSuccess(try s.real(["hold", "list"], extra: ["--now", "2030-01-01"]), "hold list --now")
            assertSuccess(try s.real(["audit", "verify"], extra: ["--now", "2030-01-01"]), "audit verify --now")
            let dry = try s.real(["sweep", "--dry-run"], extra: ["--now", "2030-01-01"])
            assertSuccess(dry, "sweep --dry-run --now")
            XCTAssertEqual(dry.json?["destroyedDayKeys"] as? [String], dayKeys, "the dry run shows what that day would destroy: \(dry.stdout)")
            assertSuccess(try s.real(["archive", "--source", s.dir + "/src2", "--dry-run"], extra: ["--now", "2030-06-01"]), "archive --dry-run --now")
            assertSuccess(try s.real(["delete", "pa", "--request-id", "DSR-9", "--dry-run"], extra: ["--now", "2030-01-01"]), "delete --dry-run --now")
        }
        // The real clock: the same jobs run.
        assertSuccess(try s.real(["sweep"]), "sweep on the real clock")
        let check = try s.real(["check"])
        assertSuccess(check, "check on the real clock")
        XCTAssertEqual(check.json?["ok"] as? Bool, true, check.stdout)
        XCTAssertEqual(check.json?["drill"] as? Bool, false, "a production report is not marked drill: \(check.stdout)")
    }

    /// A clock that went back (more than 5 minutes behind the latest job) stops every job that changes the vault —
    /// users archived "on day 5" after a sweep on day 100 would get an already-destroyed expiry day — until an operator
    /// confirms it with --accept-clock, which is audited and becomes the latest job time. status warns, check reports.
    func testClockBehindTheLatestJobIsRefusedUntilAccepted() throws {
        let s = try Scenario(self)
        try s.productionWithUsers(["pa"])
        let (catalogTime, keyringTime) = try s.latestJobTimes()
        XCTAssertNotNil(catalogTime, "the catalog remembers the latest job time")
        XCTAssertEqual(catalogTime, keyringTime, "the keyring remembers it too")
        XCTAssertLessThanOrEqual(abs((catalogTime ?? 0) - realNow()), 120, "the latest job ran just now")

        // Within the tolerance: a clock 2 minutes behind runs.
        try s.setLatestJobTime(catalog: realNow() + 120, keyring: realNow() + 120)
        assertSuccess(try s.real(["sweep"]), "sweep 2 minutes behind the latest job")

        let ahead = realNow() + 3600
        try s.setLatestJobTime(catalog: ahead, keyring: ahead)
        try makeSource(at: s.dir + "/src2", users: [SourceUser(id: "pc", lastActive: longInactiveDate, files: sampleFiles(seed: 91))])
        try assertChangesNothing(s, source: s.dir + "/src2", "jobs on a clock an hour behind", allowingCheckRecord: true) {
            for (what, args) in [("sweep", ["sweep"]), ("archive", ["archive", "--source", s.dir + "/src2"]),
                                 ("delete", ["delete", "pa", "--request-id", "DSR-1"]), ("backup", ["backup", "--to", s.dir + "/bk"])] {
                assertOneLineError(try s.real(args), exit: 12, ["behind the latest job", "--accept-clock", "nothing was changed"], what)
            }
            let status = try s.real(["status"])
            assertSuccess(status, "status with the clock behind")
            XCTAssertTrue((status.json?["clockProblem"] as? String ?? "").contains("behind"), status.stdout)
            XCTAssertTrue(status.stderr.contains("behind the latest job"), status.stderr)
            let check = try s.real(["check"])
            XCTAssertEqual(check.status, 2, "check reports the clock: \(check.stderr)")
            XCTAssertEqual(((check.json?["violations"] as? [[String: Any]]) ?? []).compactMap { $0["kind"] as? String }, ["clock"], check.stdout)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir + "/bk"), "the refused backup made no directory")

        // The operator confirms: the job runs, an audit record says so, and the clock is the vault's from then on.
        let before = realNow()
        let accepted = try s.real(["sweep", "--accept-clock"])
        assertSuccess(accepted, "sweep --accept-clock")
        let records = try s.auditRecords("accept-clock")
        XCTAssertEqual(records.count, 1, "one audit record of the confirmation")
        XCTAssertEqual(records.first?.detail["direction"] as? String, "behind", "\(records)")
        XCTAssertEqual(records.first?.detail["latestJobAt"] as? String, isoTime(ahead), "\(records)")
        let (c, k) = try s.latestJobTimes()
        XCTAssertTrue((before...realNow()).contains(c ?? -1) && c == k, "the accepted clock is the latest job time: \(String(describing: c)) \(String(describing: k))")
        assertSuccess(try s.real(["sweep"]), "the next sweep needs no confirmation")
        assertSuccess(try s.real(["archive", "--source", s.dir + "/src2"]), "archive after the confirmation")
        assertSuccess(try s.real(["audit", "verify"]), "audit verify")
        XCTAssertEqual(try s.auditRecords("accept-clock").count, 1, "a plausible clock needs no confirmation and records none")
    }

    /// A clock that leapt ahead by more than max-clock-jump-days (default 35) stops the jobs; a nightly job that did
    /// not run for a holiday month still runs. The bound is the vault's policy.
    func testClockJumpAheadIsRefusedUntilAccepted() throws {
        let s = try Scenario(self)
        try s.productionWithUsers(["pa", "pb"])
        // 30 days without a job (a holiday month): the nightly job runs.
        try s.setLatestJobTime(catalog: realNow() - 30 * 86_400, keyring: realNow() - 30 * 86_400)
        assertSuccess(try s.real(["sweep"]), "sweep after 30 quiet days")
        // 40 days: refused.
        let past = realNow() - 40 * 86_400
        try s.setLatestJobTime(catalog: past, keyring: past)
        try assertChangesNothing(s, "sweep 40 days after the latest job") {
            assertOneLineError(try s.real(["sweep"]), exit: 12, ["ahead of the latest job", "35 days", "--accept-clock"], "sweep 40 days on")
            assertOneLineError(try s.real(["hold", "place", "pa", "--case", "C1", "--reason", "r"], key: s.keyFile), exit: 12,
                               ["ahead of the latest job"], "hold place 40 days on")
        }
        let accepted = try s.real(["sweep", "--accept-clock"])
        assertSuccess(accepted, "sweep --accept-clock")
        XCTAssertEqual(try s.auditRecords("accept-clock").first?.detail["direction"] as? String, "ahead")

        // A stricter bound from init: 12 days on is too far for a 10-day bound, 9 days is not.
        let t = try Scenario(self)
        try t.productionWithUsers(["pa"], extra: ["--max-clock-jump-days", "10"])
        XCTAssertEqual((t.config["policy"] as? [String: Any])?["maxClockJumpDays"] as? Int, 10, "the bound is in the policy")
        try t.setLatestJobTime(catalog: realNow() - 12 * 86_400, keyring: realNow() - 12 * 86_400)
        try assertChangesNothing(t, "delete 12 days on with a 10-day bound") {
            assertOneLineError(try t.real(["delete", "pa", "--request-id", "R1"]), exit: 12, ["10 days"], "delete 12 days on")
        }
        try t.setLatestJobTime(catalog: realNow() - 9 * 86_400, keyring: realNow() - 9 * 86_400)
        assertSuccess(try t.real(["delete", "pa", "--request-id", "R1"]), "delete 9 days on")
        let bad = try runShredvault(["init", "--vault", t.dir + "/v3", "--master-key-file", t.dir + "/secrets/k3", "--max-clock-jump-days", "91"])
        XCTAssertEqual(bad.status, 64, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("--max-clock-jump-days"), bad.stderr)
    }

    /// The latest job time lives in the catalog and in the keyring: either one alone still stops a job, so a rebuilt
    /// catalog (reindex) does not forget it.
    func testTheKeyringRemembersTheClockThroughACatalogRebuild() throws {
        let s = try Scenario(self)
        try s.productionWithUsers(["pa"])
        let ahead = realNow() + 3600
        // The catalog forgot (no meta row; its audit log says "just now"), the keyring remembers.
        try s.setLatestJobTime(catalog: nil, keyring: ahead)
        try assertChangesNothing(s, "sweep, keyring ahead") {
            assertOneLineError(try s.real(["sweep"]), exit: 12, ["behind the latest job", isoTime(ahead)], "sweep, keyring ahead")
        }
        // The keyring forgot, the catalog remembers.
        try s.setLatestJobTime(catalog: ahead, keyring: nil)
        try assertChangesNothing(s, "sweep, catalog ahead") {
            assertOneLineError(try s.real(["sweep"]), exit: 12, ["behind the latest job", isoTime(ahead)], "sweep, catalog ahead")
        }
        // A real rebuild: the catalog is lost; reindex builds a new one, and the keyring still stops the job.
        try s.setLatestJobTime(catalog: ahead, keyring: ahead)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: s.catalog + suffix) }
        let reindex = try s.real(["reindex"])
        assertOneLineError(reindex, exit: 12, ["behind the latest job"], "reindex with the keyring ahead")
        let accepted = try s.real(["reindex", "--accept-clock"])
        assertSuccess(accepted, "reindex --accept-clock")
        XCTAssertEqual(accepted.json?["indexedBundles"] as? Int, 1, accepted.stdout)
        XCTAssertEqual(try s.auditRecords("accept-clock").count, 1, "the rebuilt catalog records the confirmation")
        assertSuccess(try s.real(["sweep"]), "sweep after the rebuild")
    }

    /// Days end at 9999-12-31: key subjects and bundle paths spell four-digit years, and days are compared as days. A
    /// clock or an expiry past that day is refused (exit 64, nothing changed) instead of wrapping around; a bundle
    /// expiring on 9999-12-31 lives through that day.
    func testDaysEndAtYear9999() throws {
        let s = try Scenario(self)
        try s.writeSource([SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 95)),
                           SourceUser(id: "ub", lastActive: inactiveDate, files: sampleFiles(seed: 96))])
        try s.initVault()
        // Archived on 9999-10-04 a bundle would expire on 10000-01-01.
        try assertChangesNothing(s, source: s.source, "archive expiring after 9999-12-31") {
            let r = try s.sv(["archive", "--source", s.source, "--user", "ua"], day: 0, now: "9999-10-04T00:15:00Z")
            assertOneLineError(r, exit: 64, ["9999-12-31", "10000-01-01"], "archive on 9999-10-04")
            for text in ["9999-12-31T23:00:00-05:00", "1970-01-01T00:30:00+01:00"] {
                assertOneLineError(try s.sv(["sweep"], day: 0, now: text), exit: 64, [text, "9999-12-31"], "--now \(text)")
                assertOneLineError(try s.sv(["status"], day: 0, now: text), exit: 64, [text], "status --now \(text)")
            }
            assertOneLineError(try runShredvault(["sweep", "--vault", s.vault], environment: ["SHREDVAULT_NOW": "9999-12-31T20:00:00-08:00"]),
                               exit: 64, ["SHREDVAULT_NOW"], "SHREDVAULT_NOW past 9999-12-31")
            let late = try s.sv(["delete", "ub", "--request-id", "R", "--received", "9999-12-31T23:30:00-01:00"], day: 0)
            XCTAssertEqual(late.status, 64, "--received past 9999-12-31: \(late.stderr)")
        }
        // Archived on 9999-10-03 it expires on 9999-12-31, the last day: a sweep during that day keeps it and check
        // decrypts it; its day key is spelled with four digits like every other.
        let archive = try s.sv(["archive", "--source", s.source, "--user", "ua"], day: 0, now: "9999-10-03T00:15:00Z")
        assertSuccess(archive, "archive on 9999-10-03")
        XCTAssertEqual(((archive.json?["archived"] as? [[String: Any]]) ?? []).first?["expiryDay"] as? String, "9999-12-31", archive.stdout)
        XCTAssertEqual(try sqliteRows(s.keystore, "SELECT subject FROM keys WHERE role = 'day'"), ["'9999-12-31'"])
        let sweep = try s.sv(["sweep"], day: 0, now: "9999-12-31T23:59:59Z")
        assertSuccess(sweep, "sweep on 9999-12-31")
        XCTAssertEqual(sweep.json?["destroyedDayKeys"] as? [String], [], sweep.stdout)
        let last = try s.sv(["check", "--read-data"], day: 0, now: "9999-12-31T23:59:59Z", key: s.keyFile)
        assertSuccess(last, "check --read-data on 9999-12-31")
        XCTAssertEqual(last.json?["checkedBundles"] as? Int, 1, last.stdout)
    }

    func isoTime(_ t: Int64) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd'T'HH:mm:ss'Z'"
        return f.string(from: Date(timeIntervalSince1970: TimeInterval(t)))
    }
}
