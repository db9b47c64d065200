import Foundation
import XCTest

/// Behaviours the other scenarios do not reach: two holds on one user, data returning for a user who already has a
/// bundle, `archive --user` and `--keep-source`, and a run configured only through SHREDVAULT_VAULT / SHREDVAULT_NOW
/// (or the real clock).
final class LifecycleEdgeCaseTests: XCTestCase {
    /// G5 with two cases: releasing one leaves the user held by the other — restorable under it, kept past its expiry
    /// by the sweep, its deletion blocked and naming only the remaining case — until the last release, which runs the
    /// blocked deletion.
    func testTwoHoldsOnOneUserReleaseOneStaysHeld() throws {
        let s = try Scenario(self)
        try s.writeSource([
            SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 11)),
            SourceUser(id: "ub", lastActive: inactiveDate, files: sampleFiles(seed: 12)),
        ])
        try s.initVault()
        assertSuccess(try s.sv(["archive", "--source", s.source], day: 0), "archive")
        let bundleA = try XCTUnwrap(try s.listed(user: "ua", day: 0).first)
        assertSuccess(try s.svk(["hold", "place", "ua", "--case", "C1", "--reason", "first matter"], day: 1), "hold place C1")
        assertSuccess(try s.svk(["hold", "place", "ua", "--case", "C2", "--reason", "second matter"], day: 1), "hold place C2")

        func activeCases(day: Int) throws -> [String] {
            let r = try s.sv(["hold", "list", "--user", "ua"], day: day)
            assertSuccess(r, "hold list")
            let holds = (r.json?["holds"] as? [[String: Any]]) ?? []
            return holds.filter { ($0["releasedAt"] as? String) == nil }.compactMap { $0["caseId"] as? String ?? $0["case"] as? String }.sorted()
        }
        XCTAssertEqual(try activeCases(day: 1), ["C1", "C2"])

        // Release C1: C2 still holds ua.
        assertSuccess(try s.svk(["hold", "release", "ua", "--case", "C1"], day: 2), "hold release C1")
        XCTAssertEqual(try activeCases(day: 2), ["C2"])
        let listed = try XCTUnwrap(try s.listed(user: "ua", day: 2).first)
        XCTAssertEqual(listed["held"] as? Bool, true, "ua is still held: \(listed)")
        XCTAssertEqual(listed["bundleId"] as? String, bundleA["bundleId"] as? String)

        // Deletion stays blocked, by C2 only; nothing is destroyed.
        let blocked = try s.sv(["delete", "ua", "--request-id", "R1"], day: 3)
        XCTAssertEqual(blocked.status, 10, "blocked: \(blocked.stderr) \(blocked.stdout)")
        let report = try XCTUnwrap(blocked.json, blocked.stdout)
        XCTAssertEqual(report["outcome"] as? String, "blocked", blocked.stdout)
        XCTAssertEqual(report["blockedBy"] as? [String], ["C2"], blocked.stdout)
        // Restores: under C2 yes, byte for byte; under the released C1 no (exit 10).
        assertSuccess(try s.svk(["restore", "ua", "--case", "C2", "--to", s.dir + "/r2"], day: 3), "restore under C2")
        XCTAssertEqual(try Tree(s.dir + "/r2"), try Tree(s.pristine + "/users/ua"))
        try assertChangesNothing(s, "restore under a released case") {
            assertOneLineError(try s.svk(["restore", "ua", "--case", "C1", "--to", s.dir + "/r1"], day: 3), exit: 10, ["C1"], "restore under C1")
        }

        // Past the expiry day (day 89) the sweep keeps the held bundle and expires the other.
        let sweep = try s.sv(["sweep"], day: 100)
        assertSuccess(sweep, "sweep day 100")
        XCTAssertEqual(try s.listed(user: "ub", day: 100).count, 0, "ub expired")
        XCTAssertEqual(try s.listed(user: "ua", day: 100).count, 1, "ua kept by C2")

        // Releasing the last hold runs the blocked deletion.
        assertSuccess(try s.svk(["hold", "release", "ua", "--case", "C2"], day: 101), "hold release C2")
        XCTAssertEqual(try activeCases(day: 101), [])
        XCTAssertEqual(try s.listed(user: "ua", day: 101).count, 0, "the blocked deletion ran on the last release")
        assertOneLineError(try s.svk(["restore", "ua", "--case", "C2", "--to", s.dir + "/r3"], day: 101), exit: 11, ["unrecoverable", "R1"],
                           "restore after the deletion ran")
        // A new hold finds nothing to hold: the user's key was destroyed by the deletion.
        assertOneLineError(try s.svk(["hold", "place", "ua", "--case", "C3", "--reason", "too late"], day: 101), exit: 11, ["unrecoverable"],
                           "hold after the deletion ran")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir + "/r3"))
        let status = try s.sv(["status"], day: 101)
        XCTAssertEqual(status.json?["openDeletionRequests"] as? Int, 0, status.stdout)
        XCTAssertEqual(status.json?["tombstones"] as? Int, 1, status.stdout)
    }

    /// A user with a live bundle whose data shows up in the export again (restored by someone, re-exported) is not
    /// archived a second time: reported as already archived, the returned data left exactly as it is, the bundle
    /// unchanged.
    func testDataReturningForAnArchivedUserIsLeftAlone() throws {
        let s = try Scenario(self)
        try s.writeSource([SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 21))])
        try s.initVault()
        assertSuccess(try s.sv(["archive", "--source", s.source], day: 0), "archive")
        let before = try XCTUnwrap(try s.listed(user: "ua", day: 0).first)
        let bundleBytes = try Data(contentsOf: URL(fileURLWithPath: s.bundlePath(before)))
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.source + "/users/ua"))

        try FileManager.default.copyItem(atPath: s.pristine + "/users/ua", toPath: s.source + "/users/ua")
        for day in [1, 2] {
            let again = try s.sv(["archive", "--source", s.source], day: day)
            assertSuccess(again, "archive day \(day)")
            XCTAssertEqual(try XCTUnwrap(again.json?["archived"] as? [[String: Any]], again.stdout).count, 0, again.stdout)
            let skipped = (again.json?["skipped"] as? [[String: Any]]) ?? []
            XCTAssertEqual(skipped.compactMap { $0["user"] as? String }, ["ua"], again.stdout)
            XCTAssertEqual(skipped.first?["reason"] as? String, "already archived", again.stdout)
            XCTAssertEqual(try Tree(s.source + "/users/ua"), try Tree(s.pristine + "/users/ua"), "day \(day): the returned data is untouched")
            let now = try s.listed(user: "ua", day: day)
            XCTAssertEqual(now.count, 1, "day \(day): still one bundle")
            XCTAssertEqual(now.first?["bundleId"] as? String, before["bundleId"] as? String)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: s.bundlePath(before))), bundleBytes, "the bundle is unchanged")
        }
        assertSuccess(try s.svk(["check", "--read-data"], day: 2), "check --read-data")
    }

    /// `--user` archives only the named users (each must be in accounts.csv); `--keep-source` leaves their data in
    /// place, byte for byte, for good: later runs skip them and never remove it.
    func testArchiveUserAndKeepSource() throws {
        let s = try Scenario(self)
        try s.writeSource([
            SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 31)),
            SourceUser(id: "ub", lastActive: inactiveDate, files: sampleFiles(seed: 32)),
            SourceUser(id: "uc", lastActive: inactiveDate, files: sampleFiles(seed: 33)),
        ])
        try s.initVault()
        try assertChangesNothing(s, source: s.source, "--user not in accounts.csv") {
            assertOneLineError(try s.sv(["archive", "--source", s.source, "--user", "ua", "--user", "zz"], day: 0), exit: 64, ["zz"],
                               "archive --user zz")
        }
        let one = try s.sv(["archive", "--source", s.source, "--user", "ua", "--keep-source"], day: 0)
        assertSuccess(one, "archive --user ua --keep-source")
        XCTAssertEqual(((one.json?["archived"] as? [[String: Any]]) ?? []).compactMap { $0["user"] as? String }, ["ua"], one.stdout)
        XCTAssertEqual(one.json?["removedSources"] as? Int, 0, one.stdout)
        XCTAssertEqual(try s.listed(day: 0).compactMap { $0["user"] as? String }, ["ua"], "only ua archived")
        for u in ["ua", "ub", "uc"] {
            XCTAssertEqual(try Tree(s.source + "/users/" + u), try Tree(s.pristine + "/users/" + u), "\(u)'s source untouched")
        }
        XCTAssertEqual(try sqliteRows(s.catalog, "SELECT source_state FROM bundles WHERE user_id = 'ua'"), ["'kept'"])

        // A full run archives the others and removes their sources; ua's kept source stays.
        let rest = try s.sv(["archive", "--source", s.source], day: 0, time: "13:00:00")
        assertSuccess(rest, "archive the rest")
        XCTAssertEqual(((rest.json?["archived"] as? [[String: Any]]) ?? []).compactMap { $0["user"] as? String }.sorted(), ["ub", "uc"], rest.stdout)
        XCTAssertEqual(try s.listed(day: 0).compactMap { $0["user"] as? String }.sorted(), ["ua", "ub", "uc"])
        XCTAssertEqual(try Tree(s.source + "/users/ua"), try Tree(s.pristine + "/users/ua"), "ua's kept source is never removed")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.source + "/users/ub"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.source + "/users/uc"))
        assertSuccess(try s.svk(["hold", "place", "ua", "--case", "K", "--reason", "check"], day: 1), "hold")
        assertSuccess(try s.svk(["restore", "ua", "--case", "K", "--to", s.dir + "/ra"], day: 1), "restore ua")
        XCTAssertEqual(try Tree(s.dir + "/ra"), try Tree(s.pristine + "/users/ua"))
    }

    /// As from cron: no --vault and no --now, only SHREDVAULT_VAULT and SHREDVAULT_NOW; --now overrides the variable;
    /// with neither, the real clock; without a vault, exit 64; a malformed SHREDVAULT_NOW, exit 64.
    func testEnvironmentOnlyAndTheRealClock() throws {
        let s = try Scenario(self)
        try s.writeSource([SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 41))])
        try s.initVault()
        let env = ["SHREDVAULT_VAULT": s.vault, "SHREDVAULT_NOW": SimDay.now(0)]
        let archive = try runShredvault(["archive", "--source", s.source, "--json"], environment: env)
        assertSuccess(archive, "archive with SHREDVAULT_VAULT and SHREDVAULT_NOW only")
        let archived = (archive.json?["archived"] as? [[String: Any]]) ?? []
        XCTAssertEqual(archived.compactMap { $0["user"] as? String }, ["ua"], archive.stdout)
        XCTAssertEqual(archived.first?["expiryDay"] as? String, SimDay.iso(89), "expiry counted from SHREDVAULT_NOW")
        XCTAssertEqual(archive.json?["today"] as? String, SimDay.iso(0))

        let status = try runShredvault(["status", "--json"], environment: ["SHREDVAULT_VAULT": s.vault, "SHREDVAULT_NOW": SimDay.now(5)])
        assertSuccess(status, "status from the environment")
        XCTAssertEqual(status.json?["today"] as? String, SimDay.iso(5), status.stdout)
        let overridden = try runShredvault(["status", "--json", "--now", SimDay.now(7)], environment: ["SHREDVAULT_VAULT": s.vault, "SHREDVAULT_NOW": SimDay.now(5)])
        assertSuccess(overridden, "status --now over SHREDVAULT_NOW")
        XCTAssertEqual(overridden.json?["today"] as? String, SimDay.iso(7), "--now wins")

        // Neither --now nor SHREDVAULT_NOW: today is the real UTC date (read before and after, in case midnight passes).
        func utcToday() -> String {
            let f = DateFormatter()
            f.locale = Locale(identifier: "en_US_POSIX")
            f.timeZone = TimeZone(identifier: "UTC")
            f.dateFormat = "yyyy-MM-dd"
            return f.string(from: Date())
        }
        let dayBefore = utcToday()
        let real = try runShredvault(["status", "--json"], environment: ["SHREDVAULT_VAULT": s.vault])
        let dayAfter = utcToday()
        assertSuccess(real, "status on the real clock")
        XCTAssertTrue([dayBefore, dayAfter].contains(real.json?["today"] as? String ?? ""), "today is the real date: \(real.stdout)")

        assertOneLineError(try runShredvault(["status"]), exit: 64, ["SHREDVAULT_VAULT"], "no vault configured")
        assertOneLineError(try runShredvault(["status"], environment: ["SHREDVAULT_VAULT": s.vault, "SHREDVAULT_NOW": "yesterday"]), exit: 64,
                           ["yesterday"], "malformed SHREDVAULT_NOW")
    }
}
