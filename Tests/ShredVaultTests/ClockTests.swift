import Foundation
import XCTest
import GRDB
import VaultCrypto
@testable import ShredVault

/// The clock guard as a pure decision, the day range, and the library's check of `now` against the latest job time
/// (vault-format.md §6.4). The CLI side (simulated clocks, the real clock, drills) is in CLITests/ClockGuardTests.
final class ClockTests: XCTestCase {
    func testTheGuardJudgesBehindPlausibleAndJumped() {
        let g = ClockGuard(maxJumpDays: 35)
        let t: Int64 = 1_795_910_400
        XCTAssertEqual(g.judge(now: t, latest: nil), .first)
        XCTAssertEqual(g.judge(now: t, latest: t), .plausible)
        XCTAssertEqual(g.judge(now: t - 300, latest: t), .plausible, "5 minutes behind is tolerated")
        XCTAssertEqual(g.judge(now: t - 301, latest: t), .behind(seconds: 301))
        XCTAssertEqual(g.judge(now: t + 35 * 86_400, latest: t), .plausible, "35 days ahead is the bound")
        XCTAssertEqual(g.judge(now: t + 35 * 86_400 + 1, latest: t), .jumped(seconds: 35 * 86_400 + 1))
        XCTAssertEqual(ClockGuard(maxJumpDays: 1).judge(now: t + 86_401, latest: t), .jumped(seconds: 86_401))
        XCTAssertEqual(g.judge(now: .max, latest: .min), .jumped(seconds: .max), "no overflow trap")
        XCTAssertEqual(g.judge(now: .min, latest: .max).isPlausible, false)
        XCTAssertEqual(ClockGuard.describe(seconds: 3 * 86_400 + 4 * 3600), "3 days 4 hours")
        XCTAssertEqual(ClockGuard.describe(seconds: 61), "1 minute")
    }

    func testTheMaxClockJumpIsPolicyWithABound() throws {
        XCTAssertEqual(RetentionPolicy().maxClockJumpDays, 35)
        XCTAssertNil(RetentionPolicy(maxClockJumpDays: 90).problem)
        XCTAssertNotNil(RetentionPolicy(maxClockJumpDays: 91).problem)
        XCTAssertNotNil(RetentionPolicy(maxClockJumpDays: 0).problem)
        // A config written before the field decodes with the default.
        let old = try JSONDecoder().decode(RetentionPolicy.self, from: Data(#"{"archiveDays": 90, "inactiveDays": 365}"#.utf8))
        XCTAssertEqual(old.maxClockJumpDays, 35)
    }

    func testDaysAndTimesEndAt9999() {
        XCTAssertEqual(CivilDay.last.iso, "9999-12-31")
        XCTAssertEqual(CivilDay(iso: "9999-12-31"), CivilDay.last)
        XCTAssertTrue(CivilDay.last.isRepresentable)
        XCTAssertFalse(CivilDay.last.adding(days: 1).isRepresentable)
        XCTAssertFalse(CivilDay(daysSinceEpoch: -1).isRepresentable)
        XCTAssertEqual(Timestamp.format(Timestamp.latestRepresentable), "9999-12-31T23:59:59Z")
        XCTAssertTrue(Timestamp.isRepresentable(Timestamp.latestRepresentable))
        XCTAssertFalse(Timestamp.isRepresentable(Timestamp.latestRepresentable + 1))
        XCTAssertFalse(Timestamp.isRepresentable(-1))
        XCTAssertEqual(Timestamp.parse("9999-12-31T23:00:00-05:00").map(Timestamp.isRepresentable), false)
    }

    /// Day keys are compared as days: a subject that sorts before today as text but is no day (a five-digit year, as
    /// the string comparison once produced) is not taken for an ended day, and ended days come out in day order.
    func testEndedDayKeysAreComparedAsDays() throws {
        let dir = try makeTemporaryDirectory(self)
        let ks = try Keystore(path: dir + "/keystore.db")
        let master = try P256PrivateKey.generate()
        let subjects = ["9999-12-30", "2027-02-26", "10000-01-01", "9999-12-31", "2027-02-25"]
        _ = try ks.keysCreatingIfNeeded(role: .day, subjects: subjects, master: master.publicKey, vaultId: [UInt8](repeating: 7, count: 16), now: 0)
        XCTAssertEqual(try ks.dayKeys(endedBefore: CivilDay.last).map(\.subject), ["2027-02-25", "2027-02-26", "9999-12-30"])
        XCTAssertEqual(try ks.dayKeys(endedBefore: CivilDay(iso: "2027-02-26")!).map(\.subject), ["2027-02-25"])
        try ks.close()
    }

    /// The library checks `now` against the latest job time of a production vault before a job's first change; a
    /// drill vault takes any `now`. Confirmation is audited and moves the latest job time, also backwards.
    func testTheLibraryAdmitsTheClockOfAProductionVault() throws {
        let dir = try makeTemporaryDirectory(self)
        let t0: Int64 = 1_795_910_400  // 2026-11-29
        _ = try Vault.create(root: dir + "/vault", restoreKeyPath: dir + "/restore.key", policy: RetentionPolicy(), now: t0)
        func open() throws -> Vault { try Vault(root: dir + "/vault") }
        do {
            let v = try open()
            XCTAssertEqual(try v.latestJobTime(), t0, "init starts the clock")
            XCTAssertThrowsError(try v.sweep(now: t0 - 3600)) { e in
                guard case VaultError.clockRefused(let m) = e else { return XCTFail("\(e)") }
                XCTAssertTrue(m.contains("behind"), m)
            }
            XCTAssertThrowsError(try v.sweep(now: t0 + 40 * 86_400)) { e in
                guard case VaultError.clockRefused(let m) = e else { return XCTFail("\(e)") }
                XCTAssertTrue(m.contains("ahead"), m)
            }
            XCTAssertNoThrow(try v.sweep(now: t0 - 3600, dryRun: true), "a dry run changes nothing and is not guarded")
            XCTAssertEqual(try v.latestJobTime(), t0, "refusals record nothing")
            _ = try v.sweep(now: t0 + 86_400)
            XCTAssertEqual(try v.latestJobTime(), t0 + 86_400)
            try v.close()
        }
        do {
            let v = try open()
            v.acceptClock = true
            _ = try v.sweep(now: t0 - 86_400)
            XCTAssertEqual(try v.latestJobTime(), t0 - 86_400, "an accepted clock is the latest job time, even backwards")
            let records = try v.catalog.read { db in try String.fetchAll(db, sql: "SELECT detail FROM audit WHERE action = 'accept-clock'") }
            XCTAssertEqual(records.count, 1)
            XCTAssertTrue(records.first?.contains("\"direction\":\"behind\"") ?? false, "\(records)")
            try v.close()
        }
        _ = try Vault.create(root: dir + "/drill", restoreKeyPath: dir + "/restore2.key", policy: RetentionPolicy(), drill: true, now: t0)
        do {
            let d = try Vault(root: dir + "/drill")
            _ = try d.sweep(now: t0 + 1000 * 86_400)
            _ = try d.sweep(now: t0 - 100 * 86_400)
            XCTAssertNil(try d.clockVerdict(now: 0), "a drill has no clock guard")
            try d.close()
        }
    }
}
