import Foundation
import GRDB
import XCTest
import VaultCrypto
@testable import ShredVault

/// G7 (vault-format.md §4): a copy of any file the vault wrote, taken before a destruction, opens no destroyed key
/// afterwards, even with the restore key and the current destruction root; survivors stay restorable.
/// `RatchetTests` runs the scenarios with the root file, `RatchetHSMTests` with the root in a SoftHSM2 token.
class RatchetScenario: XCTestCase {
    var dir = ""
    var restoreKeyPath: String { dir + "/secrets/restore.key" }
    var vaultPath: String { dir + "/vault" }
    let day0 = Timestamp.parse("2026-11-29T00:15:00Z")!
    func at(_ days: Int64) -> Int64 { day0 + days * 86_400 }

    /// Where the scenario keeps the destruction root (nil: the default root file).
    func makeRootConfig() throws -> RootConfig? { nil }

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory(self)
        try FileManager.default.createDirectory(atPath: dir + "/secrets", withIntermediateDirectories: false)
        try writeFile(dir + "/src/accounts.csv", Array("user_id,last_active\nua,2025-01-01\nub,2025-06-01\nuc,2025-02-01\n".utf8))
        for (u, seed) in [("ua", 1), ("ub", 2), ("uc", 3)] {
            try writeFile(dir + "/src/users/\(u)/data.bin", pseudoRandomBytes(20_000 + seed * 1000, seed: UInt64(seed)))
        }
        try FileManager.default.copyItem(atPath: dir + "/src", toPath: dir + "/pristine")
        _ = try Vault.create(root: vaultPath, restoreKeyPath: restoreKeyPath, policy: RetentionPolicy(), rootConfig: try makeRootConfig(), drill: true, now: day0)
        XCTAssertEqual(try open().archive(ArchiveOptions(source: dir + "/src"), now: day0).archived.count, 3)
    }

    func open() throws -> Vault { try Vault(root: vaultPath) }

    /// Every key database found in `copy` (vault directory and keyring copies), opened with the LIVE root.
    func staleDatabases(_ copy: String) throws -> [Keystore] {
        let vault = try open()
        var out: [Keystore] = []
        for path in [copy + "/vault/keys/keystore.db", copy + "/keyring.db"] where Posix.exists(path) {
            let ks = try Keystore(path: path, kind: path.hasSuffix("keyring.db") ? .keyring : .keystore)
            ks.ratchet = KeystoreRatchet(root: vault.destructionRoot, vaultId: vault.vaultId)
            out.append(ks)
        }
        return out
    }

    /// Copies the vault directory and the keyring (never the root: the operator keeps it out of copies).
    func takeCopy(_ name: String) throws -> String {
        let copy = dir + "/copies/" + name
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: vaultPath, toPath: copy + "/vault")
        try FileManager.default.copyItem(atPath: try open().config.keyringPath!, toPath: copy + "/keyring.db")
        return copy
    }

    /// Whether the stale copy, with the restore key and the live root, opens the key `id`.
    func copyOpens(_ copy: String, keyId: [UInt8]) throws -> Bool {
        let restoreKey = try open().restoreKey(path: restoreKeyPath)
        let vaultId = try open().vaultId
        for ks in try staleDatabases(copy) {
            guard let stored = try ks.key(id: keyId) else { continue }
            if (try? ks.privateKey(stored, restoreKey: restoreKey, vaultId: vaultId)) != nil { return true }
        }
        return false
    }

    func violations(now: Int64) throws -> [CheckReport.Violation] {
        let vault = try open()
        return try vault.check(now: now, readData: true, restoreKey: vault.restoreKey(path: restoreKeyPath)).violations
    }

    func assertRestores(_ user: String, now: Int64, file: StaticString = #filePath, line: UInt = #line) throws {
        let caseId = "R-" + user + "-" + String(now)
        do {
            let vault = try open()
            _ = try vault.placeHold(user: UserID(user)!, caseId: caseId, reason: "check", restoreKey: vault.restoreKey(path: restoreKeyPath), now: now)
        }
        let target = dir + "/restored-" + caseId
        do {
            let vault = try open()
            _ = try vault.restore(user: UserID(user)!, caseId: caseId, to: target, restoreKey: vault.restoreKey(path: restoreKeyPath), now: now)
        }
        XCTAssertEqual(try readBytes(target + "/data.bin"), try readBytes(dir + "/pristine/users/\(user)/data.bin"), file: file, line: line)
        do {
            let vault = try open()
            _ = try vault.releaseHold(user: UserID(user)!, caseId: caseId, restoreKey: vault.restoreKey(path: restoreKeyPath), now: now)
        }
    }

    func staleCopiesOpenNoDestroyedKeyAfterDeleteSweepReleaseAndKeystoreRestore() throws {
        // Hold ua under a case (so a release destroys a hold key), and take a keystore snapshot for the restore.
        do {
            let vault = try open()
            _ = try vault.placeHold(user: UserID("ua")!, caseId: "CASE-1", reason: "claim", restoreKey: vault.restoreKey(path: restoreKeyPath), now: at(1))
        }
        var destroyed: [(String, [UInt8], String)] = []

        // delete: ub's user key.
        let ubKey = try XCTUnwrap(try open().keystore.key(role: .user, subject: "ub")).keyId
        let beforeDelete = try takeCopy("before-delete")
        XCTAssertTrue(try copyOpens(beforeDelete, keyId: ubKey), "positive control: before the deletion the copy opens the key")
        _ = try open().delete(user: UserID("ub")!, requestId: "DSR-1", received: at(2), now: at(2))
        destroyed.append(("delete", ubKey, beforeDelete))

        // sweep: the day keys of ended days (uc's bundle expires; ua is held).
        let dayKeys = try open().keystore.keys(role: .day).map(\.keyId)
        XCTAssertFalse(dayKeys.isEmpty)
        let beforeSweep = try takeCopy("before-sweep")
        XCTAssertTrue(try copyOpens(beforeSweep, keyId: dayKeys[0]), "positive control: a day key opens from the copy before the sweep")
        let sweep = try open().sweep(now: at(120))
        XCTAssertFalse(sweep.destroyedDayKeys.isEmpty)
        for k in dayKeys where try open().keystore.key(id: k) == nil { destroyed.append(("sweep", k, beforeSweep)) }

        // A keystore snapshot (within its window for the restore below) that still holds the case key.
        _ = try open().backupKeystore(to: dir + "/ks-day120.svks", now: at(120))
        // hold release: the case key.
        let holdKey = try XCTUnwrap(try open().keystore.key(role: .hold, subject: "CASE-1")).keyId
        let beforeRelease = try takeCopy("before-release")
        XCTAssertTrue(try copyOpens(beforeRelease, keyId: holdKey), "positive control: the case key opens from the copy before the release")
        do {
            let vault = try open()
            _ = try vault.releaseHold(user: UserID("ua")!, caseId: "CASE-1", restoreKey: vault.restoreKey(path: restoreKeyPath), now: at(121))
        }
        XCTAssertNil(try open().keystore.key(id: holdKey))
        destroyed.append(("hold release", holdKey, beforeRelease))

        // keystore restore from the day-1 snapshot (which holds ub's and the ended days' keys).
        let beforeRestore = try takeCopy("before-restore")
        do {
            let vault = try open()
            let report = try vault.restoreKeystore(from: dir + "/ks-day120.svks", restoreKey: vault.restoreKey(path: restoreKeyPath), now: at(121))
            XCTAssertGreaterThan(report.purgedByLedger + report.purgedByPolicy, 0)
        }
        // Every destroyed key, from every copy taken before its destruction or later (and the snapshot's epoch key
        // still opens the snapshot, which is sealed separately and expires with its window: G3).
        let copies = [beforeDelete, beforeSweep, beforeRelease, beforeRestore]
        for (job, key, takenBefore) in destroyed {
            for copy in copies[copies.firstIndex(of: takenBefore)!...] {
                XCTAssertFalse(try copyOpens(copy, keyId: key), "\(job): \(copy) opens a destroyed key")
            }
            XCTAssertNil(try open().keystore.key(id: key), "\(job): the live keystore has the key back")
        }
        // The root holds exactly one generation, and every database is sealed under it.
        do {
            let vault = try open()
            let generations = try vault.destructionRoot!.generations()
            XCTAssertEqual(generations.count, 1)
            XCTAssertEqual(try vault.keystore.ratchetGeneration(), generations.first)
            XCTAssertEqual(try vault.keyring.ratchetGeneration(), generations.first)
        }
        // Survivors: ua (released, expiry moved to the release day) still restores from the live vault.
        try assertRestores("ua", now: at(121))
        XCTAssertEqual(try violations(now: at(121)), [])
    }

    func anInterruptedDestructionConvergesWithoutLosingASurvivor() throws {
        for point in ["destroy:root-created", "destroy:rotated", "destroy:resealed"] {
            try setUpWithError()
            let ubKey = try XCTUnwrap(try open().keystore.key(role: .user, subject: "ub")).keyId
            let copy = try takeCopy("before-\(point)")
            do {
                let vault = try open()
                vault.simulatedCrashPoint = point
                XCTAssertThrowsError(try vault.delete(user: UserID("ub")!, requestId: "DSR-9", received: at(1), now: at(1)), point)
            }
            // The next job (any) finishes the deletion and the root rotation.
            _ = try open().sweep(now: at(1))
            do {
                let vault = try open()
                XCTAssertNil(try vault.keystore.key(id: ubKey), point)
                XCTAssertEqual(try vault.destructionRoot!.generations().count, 1, point)
                XCTAssertEqual(try vault.keystore.ratchetGeneration(), try vault.keyring.ratchetGeneration(), point)
            }
            XCTAssertFalse(try copyOpens(copy, keyId: ubKey), point)
            XCTAssertEqual(try violations(now: at(1)), [], point)
            try assertRestores("ua", now: at(1))
            try assertRestores("uc", now: at(1))
        }
    }

}

final class RatchetTests: RatchetScenario {
    func testStaleCopiesOpenNoDestroyedKeyAfterDeleteSweepReleaseAndKeystoreRestore() throws {
        try staleCopiesOpenNoDestroyedKeyAfterDeleteSweepReleaseAndKeystoreRestore()
    }

    func testAnInterruptedDestructionConvergesWithoutLosingASurvivor() throws {
        try anInterruptedDestructionConvergesWithoutLosingASurvivor()
    }

    func testAnInterruptedUpgradeConverges() throws {
        for point in ["migrate:root-file", "migrate:keystore", "migrate:keyring"] {
            try setUpWithError()
            let rootPath = try undoRatchet()
            do {
                let vault = try open()
                vault.simulatedCrashPoint = point
                XCTAssertThrowsError(try vault.sweep(now: at(1)), point)
            }
            if point != "migrate:keyring" {
                // (After the keyring's migration only the config's note of the root is missing; the root is found at
                // its default place, so nothing is wrong.)
                XCTAssertFalse(try violations(now: at(1)).isEmpty, "\(point): check names the unfinished upgrade")
            }
            _ = try open().sweep(now: at(1))
            do {
                let vault = try open()
                XCTAssertEqual(vault.config.root, .file(rootPath), point)
                XCTAssertEqual(try vault.keystore.ratchetGeneration(), try vault.keyring.ratchetGeneration(), point)
                XCTAssertEqual(try vault.destructionRoot!.generations(), [try vault.keystore.ratchetGeneration()!], point)
            }
            XCTAssertEqual(try violations(now: at(1)), [], point)
            try assertRestores("ua", now: at(1))
            try assertRestores("uc", now: at(1))
        }
    }

    /// Turns the vault back into one made before the ratchet; returns the root file's path (now removed).
    func undoRatchet() throws -> String {
        let rootPath: String
        do {
            let vault = try open()
            rootPath = try XCTUnwrap(vault.config.root?.path)
            for ks in [vault.keystore, vault.keyring] {
                let rows = try ks.read { db in try Row.fetchAll(db, sql: "SELECT key_id FROM keys").map { $0["key_id"] as Data } }
                let plain = try rows.map { id in (id, Data(try ks.unwrapStored(try XCTUnwrap(try ks.key(id: Array(id)))))) }
                try ks.write { db in
                    for (id, sealed) in plain { try db.execute(sql: "UPDATE keys SET sealed_private = ?, bucket = NULL WHERE key_id = ?", arguments: [sealed, id]) }
                    try db.execute(sql: "DELETE FROM ratchet")
                }
            }
            var config = vault.config
            config.root = nil
            try Vault.writeConfig(config, root: vaultPath)
        }
        _ = unlink(rootPath)
        return rootPath
    }

    func testAVaultMadeBeforeTheRatchetUpgradesInPlace() throws {
        // Undo the ratchet: a v1 keystore and keyring (plain sealed rows, no table) and no root in the config.
        var vault: Vault? = try open()
        let rootPath = try XCTUnwrap(vault!.config.root?.path)
        var plain: [(Keystore, [(Data, Data)])] = []
        for ks in [vault!.keystore, vault!.keyring] {
            let rows = try ks.read { db in try Row.fetchAll(db, sql: "SELECT * FROM keys").map { $0 } }
            plain.append((ks, try rows.map { row in
                let stored = try XCTUnwrap(try ks.key(id: Array(row["key_id"] as Data)))
                return (row["key_id"] as Data, Data(try ks.unwrapStored(stored)))
            }))
        }
        for (ks, rows) in plain {
            try ks.write { db in
                for (id, sealed) in rows { try db.execute(sql: "UPDATE keys SET sealed_private = ?, bucket = NULL WHERE key_id = ?", arguments: [sealed, id]) }
                try db.execute(sql: "DELETE FROM ratchet")
            }
        }
        var config = vault!.config
        config.root = nil
        try Vault.writeConfig(config, root: vaultPath)
        _ = unlink(rootPath)
        plain = []
        vault = nil
        // Read-only jobs work on the old layout; the first mutating job upgrades it.
        XCTAssertNil(try open().keystore.ratchetGeneration())
        _ = try open().sweep(now: at(1))
        do {
            let upgraded = try open()
            XCTAssertEqual(upgraded.config.root, .file(rootPath))
            XCTAssertEqual(try upgraded.keystore.ratchetGeneration(), 1)
            XCTAssertEqual(try upgraded.keyring.ratchetGeneration(), 1)
            XCTAssertEqual(try upgraded.check(now: at(1), readData: true, restoreKey: upgraded.restoreKey(path: restoreKeyPath)).violations, [])
        }
        try assertRestores("ub", now: at(1))
    }

    func testRootFileRefusesGroupReadableAndTornSlots() throws {
        let path = try XCTUnwrap(try open().config.root?.path)
        let root = try RootFile(path: path)
        defer { _ = root }
        XCTAssertEqual(try root.generations().count, 1)
        chmod(path, 0o640)
        XCTAssertThrowsError(try RootFile(path: path))
        chmod(path, 0o600)
        // A torn write of the free slot leaves the current generation readable.
        let fd = Glibc.open(path, O_WRONLY)
        let generation = try root.generations()[0]
        let freeSlot = generation == 1 ? 1 : 0
        _ = pwrite(fd, Array("SVROOT1\n garbage".utf8), 17, off_t(freeSlot * RootFile.slotSize))
        close(fd)
        XCTAssertEqual(try RootFile(path: path).generations(), [generation])
        XCTAssertEqual(try violations(now: at(1)), [])
    }
}

/// The same scenarios with the root in a PKCS#11 token (SoftHSM2; CI installs it, and without it these fail).
final class RatchetHSMTests: RatchetScenario {
    var token: SoftHSMToken?

    override func makeRootConfig() throws -> RootConfig? {
        let token = try SoftHSMToken(directory: dir + "/hsm")
        self.token = token
        return .pkcs11(module: token.module, token: token.label, pinFile: token.pinFile)
    }

    func testStaleCopiesOpenNoDestroyedKeyAfterDeleteSweepReleaseAndKeystoreRestore() throws {
        try staleCopiesOpenNoDestroyedKeyAfterDeleteSweepReleaseAndKeystoreRestore()
        // The token holds exactly one root object for the vault: every retired generation was destroyed there.
        let labels = try XCTUnwrap(token).rootObjectLabels()
        XCTAssertEqual(labels.count, 1, "\(labels)")
    }

    func testAnInterruptedDestructionConvergesWithoutLosingASurvivor() throws {
        try anInterruptedDestructionConvergesWithoutLosingASurvivor()
    }
}
