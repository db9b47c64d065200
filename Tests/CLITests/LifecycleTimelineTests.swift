import Foundation
import XCTest

/// Timeline (G1 archive limit, G5 holds win), driven through the binary with a simulated clock.
/// Day 0 = 2026-11-29; default policy: 90 archive days → expiry day = day 89 (2027-02-26).
final class LifecycleTimelineTests: XCTestCase {
    func testArchiveHoldRestoreExpireAndRelease() throws {
        let s = try Scenario(self)
        try s.writeSource([
            SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 11)),
            SourceUser(id: "ub", lastActive: inactiveDate, files: sampleFiles(seed: 22)),
            SourceUser(id: "uc", lastActive: activeDate, files: ["note.txt": Data("still active\n".utf8)]),
        ])
        let expiry = SimDay.iso(89)
        XCTAssertEqual(expiry, "2027-02-26")

        try s.initVault()
        XCTAssertEqual(fileMode(s.keyFile), 0o600, "init creates the restore key file with mode 0600")

        // A dry run names the candidates and changes nothing.
        try assertChangesNothing(s, source: s.source, "archive --dry-run") {
            let dry = try s.sv(["archive", "--source", s.source, "--dry-run"], day: 0)
            assertSuccess(dry, "archive --dry-run")
            XCTAssertEqual((dry.json?["wouldArchive"] as? [String])?.sorted(), ["ua", "ub"], dry.stdout)
        }

        // Day 0: archive. Both inactive users are sealed with expiry day 89; their sources are removed after
        // verification; the active user is untouched.
        let archive = try s.sv(["archive", "--source", s.source], day: 0)
        assertSuccess(archive, "archive")
        let report = try XCTUnwrap(archive.json, archive.stdout)
        XCTAssertEqual(report["today"] as? String, SimDay.iso(0))
        let archived = (report["archived"] as? [[String: Any]]) ?? []
        XCTAssertEqual(archived.compactMap { $0["user"] as? String }.sorted(), ["ua", "ub"])
        XCTAssertEqual(Set(archived.compactMap { $0["expiryDay"] as? String }), [expiry])
        XCTAssertEqual(archived.first { $0["user"] as? String == "ua" }?["files"] as? Int, try Tree(s.pristine + "/users/ua").fileCount)
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.source + "/users/ua"), "source of ua removed after verification")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.source + "/users/ub"))
        XCTAssertEqual(try Tree(s.source + "/users/uc"), try Tree(s.pristine + "/users/uc"), "active user untouched")

        let listedB = try s.listed(user: "ub", day: 0)
        XCTAssertEqual(listedB.count, 1, "one live bundle for ub")
        let bundleB = try XCTUnwrap(listedB.first)
        XCTAssertEqual(bundleB["expiryDay"] as? String, expiry)
        XCTAssertTrue((bundleB["location"] as? String ?? "").hasPrefix("bundles/2027/02/26/"), "\(bundleB)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: s.bundlePath(bundleB)))

        let none = try s.sv(["list", "--expiring-before", expiry], day: 0)
        assertSuccess(none, "list --expiring-before the expiry day")
        XCTAssertEqual(none.stdout, "", "nothing expires before the expiry day")
        let both = try s.sv(["list", "--expiring-before", SimDay.iso(90)], day: 0)
        assertSuccess(both, "list --expiring-before day 90")
        XCTAssertEqual(jsonLines(both.stdout).compactMap { $0["user"] as? String }.sorted(), ["ua", "ub"], both.stdout)
        XCTAssertEqual(both.stdout.split(separator: "\n").count, 2, "one JSON object per line: \(both.stdout)")

        // Restore needs an active hold case (exit 10), and leaves no target behind.
        let noHold = try s.svk(["restore", "ua", "--case", "C1", "--to", s.dir + "/r0"], day: 1)
        XCTAssertEqual(noHold.status, 10, noHold.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir + "/r0"))

        // Day 5: legal hold on ua. Day 10: restore under the hold is byte-identical to the source.
        let hold = try s.svk(["hold", "place", "ua", "--case", "C1", "--reason", "litigation 2026-77"], day: 5)
        assertSuccess(hold, "hold place")
        XCTAssertEqual(hold.json?["resealedBundles"] as? Int, 1, hold.stdout)
        let r1 = try s.svk(["restore", "ua", "--case", "C1", "--to", s.dir + "/r1"], day: 10)
        assertSuccess(r1, "restore on day 10")
        XCTAssertEqual(((r1.json?["bundles"] as? [[String: Any]]) ?? []).count, 1, r1.stdout)
        XCTAssertEqual(try Tree(s.dir + "/r1"), try Tree(s.pristine + "/users/ua"), "restore on day 10 is byte-identical")

        // Expiry day, last second: a sweep destroys nothing, both bundles are still decryptable (check --read-data
        // decrypts everything).
        let early = try s.sv(["sweep"], day: 89, time: "23:59:59")
        assertSuccess(early, "sweep on the expiry day")
        XCTAssertEqual(early.json?["destroyedDayKeys"] as? [String], [], early.stdout)
        let lastSecond = try s.svk(["check", "--read-data"], day: 89, time: "23:59:59")
        assertSuccess(lastSecond, "check --read-data on the expiry day")
        XCTAssertEqual(lastSecond.json?["checkedBundles"] as? Int, 2, lastSecond.stdout)
        XCTAssertEqual(try s.listed(user: "ub", day: 89).count, 1)

        // Day 90, first second (given in New York time: 19:00:01-05:00 on day 89 is 00:00:01 UTC on day 90):
        // the sweep destroys the day key of day 89 and removes ub's bundle (G1). A dry run first changes nothing.
        let firstSecond = SimDay.iso(89) + "T19:00:01-05:00"
        let dayKey = try XCTUnwrap(try sqliteRows(s.keystore, "SELECT sealed_private FROM keys WHERE role = 'day' AND subject = '\(expiry)'").first)
        XCTAssertEqual(try filesContaining(hexData(dayKey), under: s.vault), [s.keystore], "the search finds the live day key")
        try assertChangesNothing(s, "sweep --dry-run") {
            let dry = try s.sv(["sweep", "--dry-run"], day: 90, now: firstSecond)
            assertSuccess(dry, "sweep --dry-run")
            XCTAssertEqual(dry.json?["destroyedDayKeys"] as? [String], [expiry], dry.stdout)
        }
        let sweep = try s.sv(["sweep"], day: 90, now: firstSecond)
        assertSuccess(sweep, "sweep")
        XCTAssertEqual(sweep.json?["destroyedDayKeys"] as? [String], [expiry], sweep.stdout)
        XCTAssertEqual(sweep.json?["expiredBundles"] as? Int, 1, sweep.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.bundlePath(bundleB)), "ub's bundle file is gone")
        let idB = bundleB["bundleId"] as? String ?? "?"
        XCTAssertEqual(regularFiles(under: s.vault + "/bundles").filter { $0.contains(idB) }, [], "no file of ub's bundle (nor its DEK sidecar) is left")
        XCTAssertEqual(try s.listed(user: "ub", day: 90).count, 0)
        XCTAssertEqual(try sqliteRows(s.keystore, "SELECT subject FROM keys WHERE role = 'day'"), [], "no day key survives")
        XCTAssertEqual(try filesContaining(hexData(dayKey), under: s.vault), [], "the destroyed day key's bytes are in no vault file")

        let lostB = try s.svk(["restore", "ub", "--case", "C1", "--to", s.dir + "/rb"], day: 90)
        assertOneLineError(lostB, exit: 11, ["ub", "unrecoverable: key destroyed on \(SimDay.iso(90))"], "restore of expired ub")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir + "/rb"))
        let lateHold = try s.svk(["hold", "place", "ub", "--case", "C9", "--reason", "too late"], day: 90)
        assertOneLineError(lateHold, exit: 11, ["unrecoverable"], "hold on expired ub")
        assertSuccess(try s.sv(["check"], day: 90), "check on day 90")

        // The held user survives its expiry day (G5).
        let r2 = try s.svk(["restore", "ua", "--case", "C1", "--to", s.dir + "/r2"], day: 90)
        assertSuccess(r2, "restore of held ua on day 90")
        XCTAssertEqual(try Tree(s.dir + "/r2"), try Tree(s.pristine + "/users/ua"))
        let heldA = try s.listed(user: "ua", day: 90)
        XCTAssertEqual(heldA.count, 1)
        XCTAssertEqual(heldA.first?["held"] as? Bool, true, "\(heldA)")

        // Day 95: release → ua expires at the end of max(original expiry, release day) = day 95.
        let release = try s.svk(["hold", "release", "ua", "--case", "C1"], day: 95)
        assertSuccess(release, "hold release")
        XCTAssertEqual(release.json?["newExpiryDay"] as? String, SimDay.iso(95), release.stdout)
        let releasedA = try s.listed(user: "ua", day: 95)
        XCTAssertEqual(releasedA.count, 1)
        XCTAssertEqual(releasedA.first?["expiryDay"] as? String, SimDay.iso(95), "\(releasedA)")
        XCTAssertEqual(releasedA.first?["originalExpiryDay"] as? String, expiry, "\(releasedA)")
        XCTAssertEqual(releasedA.first?["held"] as? Bool, false, "\(releasedA)")
        let readDay95 = try s.svk(["check", "--read-data"], day: 95, time: "23:59:59")
        assertSuccess(readDay95, "check --read-data on day 95 (decrypts ua under its new day key)")
        XCTAssertEqual(readDay95.json?["checkedBundles"] as? Int, 1, readDay95.stdout)
        let afterRelease = try s.svk(["restore", "ua", "--case", "C1", "--to", s.dir + "/r3"], day: 95)
        XCTAssertEqual(afterRelease.status, 10, "a released case no longer authorises a restore: \(afterRelease.stderr)")

        // Day 96: no explicit sweep. The next mutating job (this restore attempt) runs the overdue sweep first,
        // so ua is unrecoverable.
        let lostA = try s.svk(["restore", "ua", "--case", "C1", "--to", s.dir + "/r4"], day: 96)
        assertOneLineError(lostA, exit: 11, ["ua", "unrecoverable: key destroyed on \(SimDay.iso(96))"], "restore of ua after release+expiry")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir + "/r4"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.bundlePath(releasedA[0])), "ua's bundle file is gone")
        XCTAssertEqual(try s.listed(user: "ua", day: 96).count, 0)
        XCTAssertEqual(regularFiles(under: s.vault + "/bundles"), [], "no bundle file left")

        let check = try s.sv(["check"], day: 96)
        assertSuccess(check, "check on day 96")
        XCTAssertEqual(check.json?["ok"] as? Bool, true, check.stdout)
        assertSuccess(try s.sv(["audit", "verify"], day: 96), "audit verify")
        let status = try s.sv(["status"], day: 96)
        assertSuccess(status, "status")
        XCTAssertEqual(status.json?["liveBundles"] as? Int, 0, status.stdout)
        XCTAssertEqual(status.json?["expiredBundles"] as? Int, 2, status.stdout)
        XCTAssertEqual(try Tree(s.source + "/users/uc"), try Tree(s.pristine + "/users/uc"), "active user still untouched")
    }

    /// A case that was released and re-opened can hold the user again (G5), and a hold command never leaves the
    /// vault inconsistent (`check` passes whatever the outcome).
    func testReopenedCaseHoldsTheUserAgain() throws {
        let s = try Scenario(self)
        try s.writeSource([SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 12))])
        try s.initVault()
        assertSuccess(try s.sv(["archive", "--source", s.source], day: 0), "archive")
        assertSuccess(try s.svk(["hold", "place", "ua", "--case", "C1", "--reason", "first period"], day: 1), "hold place C1")
        assertSuccess(try s.svk(["hold", "release", "ua", "--case", "C1"], day: 2), "hold release C1")

        let again = try s.svk(["hold", "place", "ua", "--case", "C1", "--reason", "case re-opened"], day: 3)
        let check = try s.sv(["check"], day: 3)
        assertSuccess(check, "check after re-placing a released case (whatever its outcome)")
        assertSuccess(again, "hold place of a re-opened case C1")
        guard again.status == 0 else { return }
        XCTAssertEqual(try s.listed(user: "ua", day: 3).first?["held"] as? Bool, true)
        assertSuccess(try s.svk(["restore", "ua", "--case", "C1", "--to", s.dir + "/r"], day: 4), "restore under the re-opened case")
        XCTAssertEqual(try Tree(s.dir + "/r"), try Tree(s.pristine + "/users/ua"))
        assertSuccess(try s.svk(["hold", "release", "ua", "--case", "C1"], day: 5), "second release of C1")
        XCTAssertEqual(try sqliteRows(s.keystore, "SELECT subject FROM keys WHERE role = 'hold'"), [], "no hold key outlives its holds")
        assertSuccess(try s.svk(["check", "--read-data"], day: 5), "check --read-data")
    }
}
