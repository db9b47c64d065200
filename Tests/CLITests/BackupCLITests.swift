import Foundation
import XCTest

/// G3 and disaster recovery (issue: backups that keep the 30-day promise), driven through the binary.
/// Day 0 = 2026-11-29.
final class BackupCLITests: XCTestCase {
    func key(_ s: Scenario, role: String, subject: String) throws -> Data? {
        try sqliteRows(s.keystore, "SELECT sealed_private FROM keys WHERE role = '\(role)' AND subject = '\(subject)'").first.map(hexData)
    }

    func keyringPath(_ s: Scenario) -> String {
        (try? FileManager.default.contentsOfDirectory(atPath: s.dir + "/secrets"))?.first { $0.hasPrefix("shredvault-keyring-") }
            .map { s.dir + "/secrets/" + $0 } ?? ""
    }

    /// Holds, restores and compares a user with the pristine source, then releases the hold.
    func assertRestores(_ s: Scenario, _ user: String, day: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let caseId = "CHK-\(user)-\(day)"
        assertSuccess(try s.svk(["hold", "place", user, "--case", caseId, "--reason", "backup test"], day: day), "hold \(user)", file: file, line: line)
        let target = s.dir + "/restored-\(user)-\(day)-" + UUID().uuidString.prefix(8)
        assertSuccess(try s.svk(["restore", user, "--case", caseId, "--to", target], day: day), "restore \(user)", file: file, line: line)
        XCTAssertEqual(try Tree(target), try Tree(s.pristine + "/users/" + user), "\(user) byte-identical", file: file, line: line)
        assertSuccess(try s.svk(["hold", "release", user, "--case", caseId], day: day), "release \(user)", file: file, line: line)
    }

    func testKeystoreBackupKeepsTheThirtyDayPromise() throws {
        let s = try Scenario(self)
        try s.writeSource([SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 11)),
                           SourceUser(id: "ub", lastActive: inactiveDate, files: sampleFiles(seed: 12))])
        try s.initVault()
        assertSuccess(try s.sv(["archive", "--source", s.source], day: 0), "archive day 0")
        let snapshot = s.dir + "/ks-day0.svks"
        let backup = try s.sv(["keystore", "backup", "--to", snapshot], day: 0)
        assertSuccess(backup, "keystore backup")
        XCTAssertEqual(backup.json?["unreadableFrom"] as? String, SimDay.iso(30), backup.stdout)
        let userA = try XCTUnwrap(try key(s, role: "user", subject: "ua"))
        let epoch0 = try XCTUnwrap(try sqliteRows(keyringPath(s), "SELECT sealed_private FROM keys WHERE role = 'epoch'").first.map(hexData))

        // Day 1: delete A. Day 5: restore the day-0 snapshot: A stays unrecoverable, B restores byte-identical.
        assertSuccess(try s.sv(["delete", "ua", "--request-id", "DSR-1"], day: 1), "delete ua")
        let restore = try s.svk(["keystore", "restore", snapshot], day: 5)
        assertSuccess(restore, "keystore restore day 5")
        XCTAssertEqual(restore.json?["purgedByLedger"] as? Int, 1, restore.stdout)
        let holdA = try s.svk(["hold", "place", "ua", "--case", "X", "--reason", "r"], day: 5)
        assertOneLineError(holdA, exit: 11, ["unrecoverable", "DSR-1"], "A after the keystore restore")
        try assertRestores(s, "ub", day: 5)
        assertSuccess(try s.sv(["check"], day: 5), "check day 5")

        // Day 31: the day-0 snapshot is past the window.
        assertSuccess(try s.sv(["sweep"], day: 31), "sweep day 31")
        let late = try s.svk(["keystore", "restore", snapshot], day: 31)
        assertOneLineError(late, exit: 11, ["backup taken \(SimDay.iso(0)) is past the 30-day backup window and is permanently unreadable"], "day 31")
        // Neither key, as stored, is in any file the vault wrote: vault, keyring and secrets, backups, anywhere under the scenario.
        XCTAssertEqual(try filesContaining(userA, under: s.dir), [], "A's sealed user key survives")
        XCTAssertEqual(try filesContaining(epoch0, under: s.dir), [], "the day-0 epoch key survives")
        assertSuccess(try s.sv(["check"], day: 31), "check day 31")
    }

    func testDisasterDrillAndReindex() throws {
        let s = try Scenario(self)
        let users = ["ua", "ub", "uc", "ud"]
        try s.writeSource(users.enumerated().map { SourceUser(id: $1, lastActive: inactiveDate, files: sampleFiles(seed: UInt64(20 + $0))) })
        try s.initVault()
        assertSuccess(try s.sv(["archive", "--source", s.source], day: 0), "archive")
        let backupDir = s.dir + "/backup"
        let first = try s.sv(["backup", "--to", backupDir], day: 1)
        assertSuccess(first, "backup")
        XCTAssertEqual(first.json?["copiedBundles"] as? Int, 4)
        let second = try s.sv(["backup", "--to", backupDir], day: 2)
        XCTAssertEqual(second.json?["copiedBundles"] as? Int, 0, "incremental")
        // Shredded after the backup: must stay unreadable after recovery.
        assertSuccess(try s.sv(["delete", "ud", "--request-id", "DSR-9"], day: 3), "delete ud")

        try FileManager.default.removeItem(atPath: s.vault)
        let recover = try s.sv(["recover", "--from", backupDir], day: 4, key: s.keyFile)
        assertSuccess(recover, "recover")
        XCTAssertEqual(recover.json?["shreddedByLedger"] as? Int, 1, recover.stdout)
        assertSuccess(try s.svk(["check", "--read-data"], day: 4), "check --read-data after recover")
        for u in ["ua", "ub", "uc"] { try assertRestores(s, u, day: 4) }
        assertOneLineError(try s.svk(["hold", "place", "ud", "--case", "X", "--reason", "r"], day: 4), exit: 11, ["unrecoverable"], "ud after recover")

        // Reindex: the catalog is lost; the bundle index comes back from headers and sidecars.
        let before = try s.listed(day: 4).map { "\($0["bundleId"]!) \($0["user"]!) \($0["expiryDay"]!) \($0["size"]!) \($0["location"]!)" }.sorted()
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: s.catalog + suffix) }
        let reindex = try s.sv(["reindex"], day: 4)
        assertSuccess(reindex, "reindex")
        XCTAssertEqual(reindex.json?["indexedBundles"] as? Int, 3, reindex.stdout)
        let after = try s.listed(day: 4).map { "\($0["bundleId"]!) \($0["user"]!) \($0["expiryDay"]!) \($0["size"]!) \($0["location"]!)" }.sorted()
        XCTAssertEqual(after, before)
        assertSuccess(try s.svk(["check", "--read-data"], day: 4), "check --read-data after reindex")
        try assertRestores(s, "ub", day: 4)
    }

    func testHoldAllAndRestoreAllHeldRestoreEveryUserConcurrently() throws {
        let s = try Scenario(self)
        let users = ["ua", "ub", "uc", "ud", "ue"]
        try s.writeSource(users.enumerated().map { SourceUser(id: $1, lastActive: inactiveDate, files: sampleFiles(seed: UInt64(40 + $0))) })
        try s.initVault()
        assertSuccess(try s.sv(["archive", "--source", s.source, "--jobs", "3"], day: 0), "archive")
        let hold = try s.svk(["hold", "place", "--all", "--case", "LIT-1", "--reason", "whole archive"], day: 1)
        assertSuccess(hold, "hold place --all")
        let target = s.dir + "/lit-1"
        let restore = try s.svk(["restore", "--all-held", "--case", "LIT-1", "--to", target, "--jobs", "3"], day: 2)
        assertSuccess(restore, "restore --all-held")
        XCTAssertEqual(((restore.json?["users"] as? [[String: Any]]) ?? []).count, users.count, restore.stdout)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: target).sorted(), users)
        for u in users { XCTAssertEqual(try Tree(target + "/" + u), try Tree(s.pristine + "/users/" + u), "\(u) byte-identical") }
        // All or nothing: an existing target is refused and a user that is not held fails the whole restore.
        assertOneLineError(try s.svk(["restore", "--all-held", "--case", "LIT-1", "--to", target], day: 2), exit: 73, ["already exists"], "existing target")
        assertSuccess(try s.svk(["hold", "release", "ue", "--case", "LIT-1"], day: 3), "release ue")
        let partial = try s.svk(["restore", "ua", "ue", "--case", "LIT-1", "--to", s.dir + "/partial"], day: 3)
        assertOneLineError(partial, exit: 10, ["ue", "LIT-1"], "ue is no longer held")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir + "/partial"), "nothing left behind")
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: s.dir).contains { $0.contains("partial-") }, "no staging left")
    }

    func testBadSnapshotsAreRefusedAndChangeNothing() throws {
        let s = try Scenario(self)
        try s.writeSource([SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 31))])
        try s.initVault()
        assertSuccess(try s.sv(["archive", "--source", s.source], day: 0), "archive")
        let snapshot = s.dir + "/ks.svks"
        assertSuccess(try s.sv(["keystore", "backup", "--to", snapshot], day: 0), "keystore backup")
        let good = try Data(contentsOf: URL(fileURLWithPath: snapshot))
        var tampered = good; tampered[tampered.count / 2] ^= 0x10
        var header = good; header[40] ^= 0x01
        let cases: [(String, Data, Int32, String)] = [
            ("tampered payload", tampered, 65, "corrupt"),
            ("tampered header", header, 65, "snapshot key does not open"),
            ("truncated", good.prefix(good.count - 100), 65, "corrupt"),
            ("not a snapshot", Data("hello\n".utf8), 65, "not a ShredVault keystore snapshot"),
        ]
        let keystoreBefore = try Data(contentsOf: URL(fileURLWithPath: s.keystore))
        for (what, bytes, code, needle) in cases {
            try bytes.write(to: URL(fileURLWithPath: s.dir + "/bad.svks"))
            assertOneLineError(try s.svk(["keystore", "restore", s.dir + "/bad.svks"], day: 1), exit: code, [needle], what)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: s.keystore)), keystoreBefore, "\(what): keystore changed")
        }
        // A snapshot of another vault.
        let other = try Scenario(self)
        try other.initVault()
        assertSuccess(try other.sv(["keystore", "backup", "--to", other.dir + "/foreign.svks"], day: 0), "foreign backup")
        assertOneLineError(try s.svk(["keystore", "restore", other.dir + "/foreign.svks"], day: 1), exit: 65, ["not of this vault"], "foreign")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: s.keystore)), keystoreBefore)
    }
}
