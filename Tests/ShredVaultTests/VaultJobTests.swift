import Foundation
import XCTest
import VaultCrypto
@testable import ShredVault

/// Library-level lifecycle tests (the CLI scenario tests drive the binary; these pin the library's behaviour).
final class VaultJobTests: XCTestCase {
    var dir = ""
    var restoreKeyPath: String { dir + "/restore.key" }
    var vaultPath: String { dir + "/vault" }
    let day0 = Timestamp.parse("2026-11-29T00:15:00Z")!
    func at(_ days: Int64) -> Int64 { day0 + days * 86_400 }

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory(self)
        try writeFile(dir + "/src/accounts.csv", Array("user_id,plan,last_active\nua,pro,2025-01-01\nub,free,2025-06-01\nuc,free,2026-11-01\nud,pro,2025-01-02\n".utf8))
        try writeFile(dir + "/src/users/ua/profile.json", Array("{\"a\":1}".utf8))
        try writeFile(dir + "/src/users/ua/calls/c1/recording.wav", pseudoRandomBytes(70_000, seed: 5))
        try writeFile(dir + "/src/users/ub/events.jsonl", pseudoRandomBytes(50_000, seed: 6, text: true))
        try writeFile(dir + "/src/users/uc/active.txt", [1, 2, 3])
        try FileManager.default.copyItem(atPath: dir + "/src", toPath: dir + "/pristine")
        _ = try Vault.create(root: vaultPath, restoreKeyPath: restoreKeyPath, policy: RetentionPolicy(), drill: true, now: day0)
    }

    func open() throws -> Vault { try Vault(root: vaultPath) }

    /// Many small batches over more workers than cores, and more workers than batches: every user is archived
    /// exactly once, committed live with durable files, and the vault checks clean with the data read back.
    func testArchiveWithManyBatchesAndWorkersCommitsEveryUser() throws {
        var csv = "user_id,last_active\n"
        for i in 0..<37 {
            let user = String(format: "m%03d", i)
            csv += "\(user),2025-01-01\n"
            try writeFile(dir + "/many/users/\(user)/data.bin", pseudoRandomBytes(1_000 + i * 997, seed: UInt64(100 + i)))
        }
        try writeFile(dir + "/many/accounts.csv", Array(csv.utf8))
        var options = ArchiveOptions(source: dir + "/many", jobs: 5)
        options.batchSize = 3
        let report = try open().archive(options, now: day0)
        XCTAssertEqual(report.archived.count, 37)
        XCTAssertEqual(Set(report.archived.map(\.user)).count, 37)
        XCTAssertEqual(report.removedSources, 37)
        XCTAssertEqual(try Posix.listDirectory(dir + "/many/users"), [])
        do {
            let vault = try open()
            let states = try vault.catalog.read { db in try String.fetchAll(db, sql: "SELECT state || '/' || source_state FROM bundles") }
            XCTAssertEqual(states.count, 37)
            XCTAssertEqual(Set(states), ["live/removed"])
            XCTAssertTrue(try vault.check(now: day0, readData: true, restoreKey: try vault.restoreKey(path: restoreKeyPath)).ok)
        }

        // One batch, eight workers requested: clamped, still archived.
        var few = ArchiveOptions(source: dir + "/src", jobs: 8)
        few.batchSize = 16
        XCTAssertEqual(try open().archive(few, now: day0).archived.map(\.user), ["ua", "ub"])
    }

    func testArchiveRestoreExpireAndHoldTimeline() throws {
        let report = try open().archive(ArchiveOptions(source: dir + "/src"), now: day0)
        XCTAssertEqual(report.archived.map(\.user), ["ua", "ub"])
        XCTAssertEqual(report.archived.first?.expiryDay, "2027-02-26")
        XCTAssertEqual(report.skipped.map(\.user), ["ud"], "ud has no data directory")
        XCTAssertFalse(Posix.exists(dir + "/src/users/ua"), "source removed after verification")
        XCTAssertTrue(Posix.exists(dir + "/src/users/uc"), "active user untouched")
        let again = try open().archive(ArchiveOptions(source: dir + "/src"), now: at(1))
        XCTAssertEqual(again.archived.count, 0, "re-running converges")

        let vault = try open()
        let key = try vault.restoreKey(path: restoreKeyPath)
        XCTAssertThrowsError(try vault.restore(user: UserID("ua")!, caseId: "C1", to: dir + "/r0", restoreKey: key, now: at(10))) {
            XCTAssertEqual($0 as? VaultError, .holdRequired(user: "ua", caseId: "C1"))
        }
        _ = try vault.placeHold(user: UserID("ua")!, caseId: "C1", reason: "litigation", restoreKey: key, now: at(10))
        _ = try vault.restore(user: UserID("ua")!, caseId: "C1", to: dir + "/r1", restoreKey: key, now: at(10))
        XCTAssertEqual(try TreeSnapshot(dir + "/r1").items.mapValues(\.contents), try TreeSnapshot(dir + "/pristine/users/ua").items.mapValues(\.contents))
        XCTAssertTrue(try vault.check(now: at(10), readData: true, restoreKey: key).ok)

        // Day after expiry: ub's day key is destroyed and its bundle removed; ua survives under the hold (G1, G5).
        let sweep = try vault.sweep(now: at(90))
        XCTAssertEqual(sweep.destroyedDayKeys, ["2027-02-26"])
        XCTAssertEqual(sweep.expiredBundles, 1)
        XCTAssertThrowsError(try vault.placeHold(user: UserID("ub")!, caseId: "C2", reason: "late", restoreKey: key, now: at(90))) {
            guard case VaultError.unrecoverable(_, let date, let reason) = $0 else { return XCTFail("\($0)") }
            XCTAssertEqual(date, "2027-02-27")
            XCTAssertTrue(reason.contains("expired"), reason)
        }
        _ = try vault.restore(user: UserID("ua")!, caseId: "C1", to: dir + "/r2", restoreKey: key, now: at(90))
        XCTAssertTrue(try vault.check(now: at(90), readData: true, restoreKey: key).ok)

        // Release on day 95: expires at the end of day 95.
        let release = try vault.releaseHold(user: UserID("ua")!, caseId: "C1", restoreKey: key, now: at(95))
        XCTAssertEqual(release.newExpiryDay, "2027-03-04")
        XCTAssertEqual(try vault.keystore.keys(role: .hold).count, 0, "hold key destroyed on release")
        XCTAssertTrue(try vault.check(now: at(95), readData: true, restoreKey: key).ok)
        _ = try vault.sweep(now: at(96))
        XCTAssertTrue(try vault.catalog.liveBundles(user: "ua").isEmpty)
        XCTAssertTrue(try vault.check(now: at(96), readData: true, restoreKey: key).ok)
        XCTAssertNil(try vault.catalog.verifyAudit().problem)
    }

    func testDeleteDestroysTheUserKeyEverywhereAndHoldsBlockIt() throws {
        _ = try open().archive(ArchiveOptions(source: dir + "/src"), now: day0)
        let vault = try open()
        let key = try vault.restoreKey(path: restoreKeyPath)
        let stored = try XCTUnwrap(try vault.keystore.key(role: .user, subject: "ua"))
        let report = try vault.delete(user: UserID("ua")!, requestId: "R1", received: at(0), now: at(1))
        XCTAssertEqual(report.outcome, .shredded)
        XCTAssertEqual(report.deadline, "2026-12-04") // Sunday 11-29 → Mon 11-30 .. Fri 12-04
        XCTAssertNil(try vault.keystore.key(role: .user, subject: "ua"))
        for name in try Posix.listDirectory(vaultPath + "/keys") {
            let bytes = try readBytes(vaultPath + "/keys/" + name)
            XCTAssertFalse(containsBytes(bytes, stored.sealedPrivate), "sealed user key survives in \(name)")
            XCTAssertFalse(containsBytes(bytes, stored.publicKey.x963Representation), "user public key survives in \(name)")
        }
        XCTAssertThrowsError(try vault.restore(user: UserID("ua")!, caseId: "C", to: dir + "/r", restoreKey: key, now: at(1))) {
            guard case VaultError.unrecoverable(_, _, let reason) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(reason.contains("R1"))
        }
        XCTAssertTrue(try vault.check(now: at(1), readData: true, restoreKey: key).ok)
        XCTAssertEqual(try vault.delete(user: UserID("ua")!, requestId: "R1b", received: nil, now: at(2)).outcome, .alreadyDeleted)
        XCTAssertThrowsError(try vault.delete(user: UserID("nobody")!, requestId: "R9", received: nil, now: at(2))) {
            XCTAssertEqual($0 as? VaultError, .notArchived(user: "nobody"), "an unknown user needs --not-archived")
        }

        // G5: a hold blocks deletion; release executes it.
        _ = try vault.placeHold(user: UserID("ub")!, caseId: "HR-1", reason: "audit", restoreKey: key, now: at(3))
        let blocked = try vault.delete(user: UserID("ub")!, requestId: "R2", received: nil, now: at(3))
        XCTAssertEqual(blocked.outcome, .blocked)
        XCTAssertEqual(blocked.blockedBy, ["HR-1"])
        XCTAssertEqual(try vault.status(now: at(3)).openDeletionRequests, 1)
        _ = try vault.restore(user: UserID("ub")!, caseId: "HR-1", to: dir + "/rb", restoreKey: key, now: at(4))
        let release = try vault.releaseHold(user: UserID("ub")!, caseId: "HR-1", restoreKey: key, now: at(5))
        XCTAssertEqual(release.executedDeletions, ["R2"])
        XCTAssertNotNil(try vault.catalog.tombstone(user: "ub"))
        XCTAssertEqual(try vault.status(now: at(5)).openDeletionRequests, 0)

        // Data of a deleted user reappearing is reported, never archived.
        try writeFile(dir + "/src/users/ua/again.txt", [1])
        let rerun = try vault.archive(ArchiveOptions(source: dir + "/src"), now: at(6))
        XCTAssertEqual(rerun.reappeared, ["ua"])
        XCTAssertEqual(rerun.archived.count, 0)
        XCTAssertTrue(try vault.check(now: at(6), readData: true, restoreKey: key).ok)
    }

    func testArchiveNeedsNoRestoreKeyAndBadInputChangesNothing() throws {
        try FileManager.default.moveItem(atPath: restoreKeyPath, toPath: dir + "/elsewhere.key")
        try writeFile(dir + "/src/accounts.csv", Array("user_id,last_active\nua,2025-01-01\nub,yesterday\n".utf8))
        XCTAssertThrowsError(try open().archive(ArchiveOptions(source: dir + "/src"), now: day0)) {
            guard case VaultError.malformedInput(_, let line, _) = $0 else { return XCTFail("\($0)") }
            XCTAssertEqual(line, 3)
        }
        XCTAssertTrue(Posix.exists(dir + "/src/users/ua"))
        XCTAssertEqual(try open().status(now: day0).liveBundles, 0)
        try FileManager.default.removeItem(atPath: dir + "/src/accounts.csv")
        try FileManager.default.copyItem(atPath: dir + "/pristine/accounts.csv", toPath: dir + "/src/accounts.csv")
        XCTAssertEqual(try open().archive(ArchiveOptions(source: dir + "/src"), now: day0).archived.count, 2)
        XCTAssertEqual(try open().delete(user: UserID("ub")!, requestId: "R", received: nil, now: day0).outcome, .shredded)
        XCTAssertThrowsError(try open().restoreKey(path: restoreKeyPath)) { XCTAssertEqual(($0 as? VaultError).map { "\($0)" }?.contains("does not exist"), true) }
        XCTAssertThrowsError(try open().restoreKey(path: nil)) { XCTAssertEqual($0 as? VaultError, .restoreKeyRequired) }
    }

    func testLockExcludesConcurrentJobs() throws {
        do {
            let first = try open()
            // `withExtendedLifetime`: the first vault (and its lock) must not be released before the second open is tried.
            try withExtendedLifetime(first) {
                XCTAssertThrowsError(try Vault(root: vaultPath)) { XCTAssertEqual($0 as? VaultError, .locked(path: vaultPath + "/lock")) }
                XCTAssertThrowsError(try Vault(root: vaultPath, readOnly: true)) { XCTAssertEqual($0 as? VaultError, .locked(path: vaultPath + "/lock")) }
                XCTAssertEqual(try first.status(now: day0).liveBundles, 0, "the first holder is still usable")
            }
        }
        // Released with the first vault: the lock can be taken again.
        XCTAssertNoThrow(try Vault(root: vaultPath))
    }
}
