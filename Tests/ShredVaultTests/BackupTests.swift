import Foundation
import XCTest
import VaultCrypto
@testable import ShredVault

/// G3 and disaster recovery, at the library level.
final class BackupTests: XCTestCase {
    var dir = ""
    var restoreKeyPath: String { dir + "/keys/restore.key" }
    var vaultPath: String { dir + "/vault" }
    let day0 = Timestamp.parse("2026-11-29T00:15:00Z")!
    func at(_ days: Int64) -> Int64 { day0 + days * 86_400 }

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory(self)
        try FileManager.default.createDirectory(atPath: dir + "/keys", withIntermediateDirectories: true)
        try writeFile(dir + "/src/accounts.csv", Array("user_id,last_active\nua,2025-01-01\nub,2025-01-01\nuc,2025-01-01\n".utf8))
        try writeFile(dir + "/src/users/ua/a.txt", pseudoRandomBytes(20_000, seed: 1, text: true))
        try writeFile(dir + "/src/users/ub/b.bin", pseudoRandomBytes(40_000, seed: 2))
        try writeFile(dir + "/src/users/uc/c/deep.txt", Array("c\n".utf8))
        try FileManager.default.copyItem(atPath: dir + "/src", toPath: dir + "/pristine")
        _ = try Vault.create(root: vaultPath, restoreKeyPath: restoreKeyPath, policy: RetentionPolicy(), drill: true, now: day0)
        _ = try Vault(root: vaultPath).archive(ArchiveOptions(source: dir + "/src"), now: day0)
    }

    func open() throws -> Vault { try Vault(root: vaultPath) }
    func key() throws -> P256PrivateKey { try MasterKey.readRestoreKey(restoreKeyPath) }

    func restoreUser(_ v: Vault, _ user: String, day: Int64, to target: String) throws {
        _ = try v.placeHold(user: UserID(user)!, caseId: "T-\(user)-\(day)", reason: "test", restoreKey: try key(), now: at(day))
        _ = try v.restore(user: UserID(user)!, caseId: "T-\(user)-\(day)", to: target, restoreKey: try key(), now: at(day))
        XCTAssertEqual(try TreeSnapshot(target).items.mapValues(\.contents), try TreeSnapshot(dir + "/pristine/users/" + user).items.mapValues(\.contents))
        _ = try v.releaseHold(user: UserID(user)!, caseId: "T-\(user)-\(day)", restoreKey: try key(), now: at(day))
    }

    /// Every file under `root`, as bytes.
    func allFiles(_ root: String) throws -> [(String, [UInt8])] {
        var out: [(String, [UInt8])] = []
        let e = FileManager.default.enumerator(atPath: root)
        while let rel = e?.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + rel, isDirectory: &isDir), !isDir.boolValue {
                out.append((rel, try readBytes(root + "/" + rel)))
            }
        }
        return out
    }

    func testKeystoreRestoreReplaysTheLedgerAndExpiresAfterTheWindow() throws {
        let snapshot = dir + "/ks-day0.svks"
        var userA: StoredKey?, epoch0: StoredKey?
        do {
            let v0 = try open()
            let backup = try v0.backupKeystore(to: snapshot, now: at(0))
            XCTAssertEqual(backup.unreadableFrom, "2026-12-29")
            userA = try v0.keystore.key(role: .user, subject: "ua")
            epoch0 = try v0.keyring.key(role: .epoch, subject: "2026-11-29")
            XCTAssertEqual(try v0.delete(user: UserID("ua")!, requestId: "R1", received: nil, now: at(1)).outcome, .shredded)
        }
        let userAKey = try XCTUnwrap(userA), epochKey = try XCTUnwrap(epoch0)

        // Day 5: the day-0 snapshot restores, but A's key stays destroyed (ledger replay); B restores byte-identical.
        do {
            let restored = try open().restoreKeystore(from: snapshot, restoreKey: try key(), now: at(5))
            XCTAssertEqual(restored.purgedByLedger, 1)
        }
        let v5 = try open()
        XCTAssertNil(try v5.keystore.key(role: .user, subject: "ua"))
        XCTAssertThrowsError(try v5.placeHold(user: UserID("ua")!, caseId: "X", reason: "r", restoreKey: try key(), now: at(5)))
        try restoreUser(v5, "ub", day: 5, to: dir + "/rb")
        XCTAssertTrue(try v5.check(now: at(5), readData: true, restoreKey: try key()).ok)

        // Day 30: the epoch key is gone; the snapshot is permanently unreadable.
        let sweep = try v5.sweep(now: at(30))
        XCTAssertEqual(sweep.destroyedEpochKeys, ["2026-11-29"])
        XCTAssertThrowsError(try v5.restoreKeystore(from: snapshot, restoreKey: try key(), now: at(31))) {
            XCTAssertEqual($0 as? VaultError, .snapshotPastWindow(path: snapshot, takenDay: "2026-11-29", days: 30))
            XCTAssertTrue("\($0)".contains("backup taken 2026-11-29 is past the 30-day backup window and is permanently unreadable"))
        }
        // Neither A's sealed user key nor the day-0 epoch key, as stored, is in any file the vault wrote.
        for root in [vaultPath, dir + "/keys", dir] {
            for (name, bytes) in try allFiles(root) {
                XCTAssertFalse(containsBytes(bytes, userAKey.sealedPrivate), "A's sealed key in \(root)/\(name)")
                XCTAssertFalse(containsBytes(bytes, epochKey.sealedPrivate), "epoch key in \(root)/\(name)")
            }
        }
        XCTAssertTrue(try v5.check(now: at(31), readData: true, restoreKey: try key()).ok)
    }

    func testRestoringAnOlderSnapshotKeepsKeysCreatedSince() throws {
        let snapshot = dir + "/ks.svks"
        do {
            let v = try open()
            _ = try v.backupKeystore(to: snapshot, now: at(0))
            // After the snapshot: a hold key (bundle resealed to it) and a new user's keys.
            _ = try v.placeHold(user: UserID("ub")!, caseId: "LATE-1", reason: "r", restoreKey: try key(), now: at(1))
            let restored = try v.restoreKeystore(from: snapshot, restoreKey: try key(), now: at(2))
            XCTAssertEqual(restored.keptFromCurrent, 1, "the hold key created after the snapshot is kept")
        }
        let v = try open()
        XCTAssertTrue(try v.check(now: at(2), readData: true, restoreKey: try key()).ok)
        _ = try v.restore(user: UserID("ub")!, caseId: "LATE-1", to: dir + "/rb", restoreKey: try key(), now: at(2))
    }

    func testTamperedTruncatedAndForeignSnapshotsAreRefusedAndChangeNothing() throws {
        let v = try open()
        let snapshot = dir + "/ks.svks"
        _ = try v.backupKeystore(to: snapshot, now: at(0))
        let good = try readBytes(snapshot)
        let before = try readBytes(v.keystore.path)
        var cases: [(String, [UInt8])] = [("truncated", Array(good.dropLast(10))), ("header-only", Array(good.prefix(177))),
                                          ("appended", good + [0]), ("empty", [])]
        for offset in [0, 9, 20, 35, 45, 61, 100, 180, good.count / 2, good.count - 1] {
            var b = good; b[offset] ^= 0x04; cases.append(("flip \(offset)", b))
        }
        for (what, bytes) in cases {
            try writeBytes(bytes, to: dir + "/bad.svks")
            XCTAssertThrowsError(try v.restoreKeystore(from: dir + "/bad.svks", restoreKey: try key(), now: at(1)), what) { e in
                XCTAssertTrue(e is VaultError, "\(what): \(e)")
            }
            XCTAssertEqual(try readBytes(v.keystore.path), before, "\(what): keystore changed")
            XCTAssertFalse(try Posix.listDirectory(vaultPath + "/keys").contains { $0.hasPrefix(".restore") }, what)
        }
        // A snapshot of another vault.
        let other = dir + "/other"
        _ = try Vault.create(root: other, restoreKeyPath: dir + "/other.key", policy: RetentionPolicy(), drill: true, now: day0)
        _ = try Vault(root: other).backupKeystore(to: dir + "/foreign.svks", now: at(0))
        XCTAssertThrowsError(try v.restoreKeystore(from: dir + "/foreign.svks", restoreKey: try key(), now: at(1))) {
            XCTAssertTrue("\($0)".contains("not of this vault"), "\($0)")
        }
        XCTAssertEqual(try readBytes(v.keystore.path), before)
    }

    func testDisasterDrillBackupDestroyRecover() throws {
        let backupDir = dir + "/backup"
        let first = try open().backup(to: backupDir, now: at(1))
        XCTAssertEqual(first.copiedBundles, 3)
        let second = try open().backup(to: backupDir, now: at(2))
        XCTAssertEqual(second.copiedBundles, 0, "incremental")
        XCTAssertEqual(second.presentBundles, 3)
        // Shred C after the backup: recovery must not bring C back.
        _ = try open().delete(user: UserID("uc")!, requestId: "R-C", received: nil, now: at(3))
        try FileManager.default.removeItem(atPath: vaultPath)

        let report = try Vault.recover(from: backupDir, to: vaultPath, restoreKeyPath: restoreKeyPath, keyringPath: nil, now: at(4))
        XCTAssertEqual(report.restoredBundles, 3)
        XCTAssertEqual(report.shreddedByLedger, 1)
        XCTAssertEqual(report.check?.ok, true, "\(report.check?.violations ?? [])")
        let v = try open()
        XCTAssertTrue(try v.check(now: at(4), readData: true, restoreKey: try key()).ok)
        try restoreUser(v, "ua", day: 4, to: dir + "/ra")
        try restoreUser(v, "ub", day: 4, to: dir + "/rb")
        XCTAssertThrowsError(try v.placeHold(user: UserID("uc")!, caseId: "X", reason: "r", restoreKey: try key(), now: at(4))) {
            guard case VaultError.unrecoverable = $0 else { return XCTFail("\($0)") }
        }
        XCTAssertNotNil(try v.catalog.tombstone(user: "uc"))
    }

    func testReindexReproducesTheBundleIndex() throws {
        let before: [BundleRecord]
        do {
            let v = try open()
            _ = try v.placeHold(user: UserID("ub")!, caseId: "CASE-9", reason: "r", restoreKey: try key(), now: at(1))
            before = try v.catalog.read { db in try BundleRecord.fetchAll(db, sql: "SELECT * FROM bundles WHERE state = 'live' ORDER BY id") }
        }
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: vaultPath + "/catalog.db" + suffix) }
        let rebuilt = try Vault(root: vaultPath, createMissingCatalog: true)
        let report = try rebuilt.reindex(now: at(2))
        XCTAssertEqual(report.indexedBundles, 3)
        XCTAssertEqual(report.recoveredHolds, 1)
        let after = try rebuilt.catalog.read { db in try BundleRecord.fetchAll(db, sql: "SELECT * FROM bundles WHERE state = 'live' ORDER BY id") }
        func index(_ r: [BundleRecord]) -> [String] { r.map { "\($0.id) \($0.userId) \($0.expiryDay) \($0.originalExpiryDay) \($0.size) \(Hex.encode($0.sha256!)) \($0.location) \($0.outerRole!) \(Hex.encode($0.sealedDek!))" } }
        XCTAssertEqual(index(after), index(before))
        XCTAssertTrue(try rebuilt.check(now: at(2), readData: true, restoreKey: try key()).ok)
        _ = try rebuilt.restore(user: UserID("ub")!, caseId: "CASE-9", to: dir + "/rb", restoreKey: try key(), now: at(2))
    }
}
