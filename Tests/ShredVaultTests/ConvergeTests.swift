import Foundation
import GRDB
import XCTest
import VaultCrypto
@testable import ShredVault

/// Convergence (vault-format.md §6.1): a job stopped at each named step boundary (as if killed there) leaves
/// work that the next job of any kind finishes; `check` names it until then. The chaos tests (CLITests) kill the
/// real binary at every fsync/write/rename; these pin each step's meaning at the library level.
final class ConvergeTests: XCTestCase {
    var dir = ""
    var restoreKeyPath: String { dir + "/restore.key" }
    var vaultPath: String { dir + "/vault" }
    let day0 = Timestamp.parse("2026-11-29T00:15:00Z")!
    func at(_ days: Int64) -> Int64 { day0 + days * 86_400 }

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory(self)
        try writeFile(dir + "/src/accounts.csv", Array("user_id,last_active\nua,2025-01-01\nub,2025-06-01\n".utf8))
        try writeFile(dir + "/src/users/ua/profile.json", Array("{\"a\":1}".utf8))
        try writeFile(dir + "/src/users/ua/calls/c1/recording.wav", pseudoRandomBytes(40_000, seed: 5))
        try writeFile(dir + "/src/users/ub/events.jsonl", pseudoRandomBytes(30_000, seed: 6, text: true))
        try FileManager.default.copyItem(atPath: dir + "/src", toPath: dir + "/pristine")
        _ = try Vault.create(root: vaultPath, restoreKeyPath: restoreKeyPath, policy: RetentionPolicy(), drill: true, now: day0)
        let report = try open().archive(ArchiveOptions(source: dir + "/src"), now: day0)
        XCTAssertEqual(report.archived.map(\.user), ["ua", "ub"])
    }

    func open() throws -> Vault { try Vault(root: vaultPath) }
    func key(_ vault: Vault) throws -> P256PrivateKey { try vault.restoreKey(path: restoreKeyPath) }

    func violations(_ vault: Vault, now: Int64) throws -> [String] {
        try vault.check(now: now, readData: true, restoreKey: key(vault)).violations.map(\.kind)
    }

    /// Restores `user` under `caseId` and compares it with the pristine source.
    func assertRestores(_ user: String, caseId: String, now: Int64, file: StaticString = #filePath, line: UInt = #line) throws {
        let target = dir + "/restored-\(user)-\(UUID().uuidString.prefix(8))"
        let vault = try open()
        _ = try vault.restore(user: UserID(user)!, caseId: caseId, to: target, restoreKey: key(vault), now: now)
        XCTAssertEqual(try digest(target), try digest(dir + "/pristine/users/" + user), file: file, line: line)
    }

    /// Relative path → SHA-256 of the contents ("dir" for directories): what a restore must reproduce.
    func digest(_ root: String) throws -> [String: String] {
        try TreeSnapshot(root).items.mapValues { $0.isDirectory ? "dir" : Hex.encode(try SHA256.hash($0.contents)) }
    }

    func assertUnrecoverable(_ user: String, caseId: String, now: Int64, file: StaticString = #filePath, line: UInt = #line) throws {
        let vault = try open()
        XCTAssertThrowsError(try vault.restore(user: UserID(user)!, caseId: caseId, to: dir + "/never", restoreKey: key(vault), now: now),
                             file: file, line: line) { error in
            guard case VaultError.unrecoverable = error else { return XCTFail("expected unrecoverable, got \(error)", file: file, line: line) }
        }
        XCTAssertFalse(Posix.exists(dir + "/never"), file: file, line: line)
    }

    // MARK: - hold place

    func testHoldPlaceStoppedAfterItsIntentIsFinishedByTheNextJob() throws {
        for point in ["hold-place:intent", "hold-place:sidecars"] {
            try setUpWithError()
            do {
                let vault = try open()
                vault.simulatedCrashPoint = point
                XCTAssertThrowsError(try vault.placeHold(user: UserID("ua")!, caseId: "C1", reason: "claim", restoreKey: key(vault), now: at(1)))
            }
            // Not yet placed in the catalog; check names the unfinished job.
            XCTAssertTrue(try open().catalog.activeHolds(user: "ua").isEmpty, point)
            XCTAssertTrue(try violations(open(), now: at(1)).contains("unfinished-job"), point)
            // Any job finishes it: here a plain sweep.
            let sweep = try open().sweep(now: at(1))
            XCTAssertEqual(sweep.converged?.resumedIntents, ["reseal"], point)
            XCTAssertEqual(try open().catalog.activeHolds(user: "ua").map(\.caseId), ["C1"], point)
            XCTAssertEqual(try violations(open(), now: at(1)), [], point)
            // The hold holds: past the expiry day the user is still restorable.
            try assertRestores("ua", caseId: "C1", now: at(120))
            XCTAssertEqual(try open().keyring.mirroredHolds().map(\.caseId), ["C1"])
        }
    }

    func testHoldPlaceStoppedBeforeItsIntentLeavesOnlyAHoldKeyThatTheNextJobDestroys() throws {
        do {
            let vault = try open()
            // The key is created, then the job dies before recording its intent (simulated by creating the key alone).
            _ = try vault.keystore.keyCreatingIfNeeded(role: .hold, subject: "C9", master: vault.archiveKey, vaultId: vault.vaultId, now: at(1))
        }
        XCTAssertEqual(try violations(open(), now: at(1)), ["unused-hold-key"])
        XCTAssertEqual(try open().sweep(now: at(1)).converged?.destroyedHoldKeys, ["C9"])
        XCTAssertNil(try open().keystore.key(role: .hold, subject: "C9"))
        XCTAssertEqual(try violations(open(), now: at(1)), [])
    }

    // MARK: - hold release

    func testHoldReleaseStoppedAtEveryStepRunsTheBlockedDeletionAndDestroysTheCaseKey() throws {
        for point in ["hold-release:intent", "hold-release:sidecars", "hold-release:catalog", "hold-release:key"] {
            try setUpWithError()
            do {
                let vault = try open()
                _ = try vault.placeHold(user: UserID("ua")!, caseId: "C1", reason: "claim", restoreKey: key(vault), now: at(1))
            }
            let blocked = try open().delete(user: UserID("ua")!, requestId: "DSR-1", received: at(2), now: at(2))
            XCTAssertEqual(blocked.outcome, .blocked)
            let holdKey = try XCTUnwrap(try open().keystore.key(role: .hold, subject: "C1"))
            do {
                let vault = try open()
                vault.simulatedCrashPoint = point
                XCTAssertThrowsError(try vault.releaseHold(user: UserID("ua")!, caseId: "C1", restoreKey: key(vault), now: at(3)), point)
            }
            XCTAssertFalse(try violations(open(), now: at(3)).isEmpty, point)

            // The rerun of the same command finishes it (or says there is nothing left to release).
            do {
                let rerun = try open()
                _ = try rerun.releaseHold(user: UserID("ua")!, caseId: "C1", restoreKey: key(rerun), now: at(3))
            } catch VaultError.holdNotFound {
                // The release had been recorded; its sweep finished the rest.
            }
            XCTAssertNil(try open().keystore.key(id: holdKey.keyId), point)
            XCTAssertNotNil(try open().catalog.tombstone(user: "ua"), point)
            try assertUnrecoverable("ua", caseId: "C1", now: at(3))
            XCTAssertEqual(try violations(open(), now: at(3)), [], point)
            // The destroyed hold key's sealed bytes are in no file of the keystore.
            for name in try Posix.listDirectory(vaultPath + "/keys") {
                XCTAssertFalse(containsBytes(try readBytes(vaultPath + "/keys/" + name), holdKey.sealedPrivate), "\(point): \(name)")
            }
            XCTAssertNotNil(try open().keyring.mirroredHolds().first { $0.caseId == "C1" && $0.releasedAt != nil }, point)
        }
    }

    // MARK: - delete

    func testDeleteStoppedAfterTheKeyIsFinishedByAnyJob() throws {
        let userKey = try XCTUnwrap(try open().keystore.key(role: .user, subject: "ub"))
        do {
            let vault = try open()
            vault.simulatedCrashPoint = "shred:key"
            XCTAssertThrowsError(try vault.delete(user: UserID("ub")!, requestId: "DSR-2", received: at(1), now: at(1)))
        }
        XCTAssertTrue(try violations(open(), now: at(1)).contains("unfinished-deletion"))
        let sweep = try open().sweep(now: at(1))
        XCTAssertEqual(sweep.converged?.completedDeletions, ["DSR-2"])
        XCTAssertNotNil(try open().catalog.tombstone(user: "ub"))
        XCTAssertEqual(try open().catalog.liveBundles(user: "ub"), [])
        XCTAssertEqual(try violations(open(), now: at(1)), [])
        let audit = try open().catalog.read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM audit WHERE action = 'destroy-key' AND user_id = 'ub'") ?? 0
        }
        XCTAssertEqual(audit, 1, "the destruction is audited once, with its ledger entry")
        XCTAssertNil(try open().keystore.key(id: userKey.keyId))
        // A rerun of the same request says it is done.
        XCTAssertEqual(try open().delete(user: UserID("ub")!, requestId: "DSR-2", received: at(1), now: at(1)).outcome, .alreadyDeleted)
    }

    // MARK: - temporary files

    func testLeftoverTemporaryFilesAreNamedByCheckAndRemovedByTheNextJob() throws {
        let bundle = try XCTUnwrap(try open().catalog.liveBundles(user: "ua").first)
        let bundleDir = Posix.directoryName(vaultPath + "/" + bundle.location)
        let leftovers = [vaultPath + "/keys/.snapshot-0123456789ab.db", vaultPath + "/keys/.restore-0123456789ab.db-journal",
                         bundleDir + "/." + bundle.id + ".svb.partial-0123456789ab", bundleDir + "/" + bundle.id + ".dek.tmp-123-456",
                         vaultPath + "/config.tmp-77-88"]
        for path in leftovers { try writeFile(path, [1, 2, 3], mode: 0o600) }
        try writeFile(vaultPath + "/keys/stray.db", [9], mode: 0o600)
        let kinds = try violations(open(), now: at(1))
        XCTAssertEqual(kinds.filter { $0 == "leftover-file" }.count, leftovers.count)
        XCTAssertEqual(kinds.filter { $0 == "unknown-file" }.count, 1)
        let removed = try open().sweep(now: at(1)).converged?.removedLeftovers ?? []
        XCTAssertEqual(Set(removed), Set(leftovers))
        for path in leftovers { XCTAssertFalse(Posix.exists(path), path) }
        XCTAssertEqual(try violations(open(), now: at(1)), ["unknown-file"], "a file the vault does not write is named, never removed")
        XCTAssertTrue(Posix.exists(vaultPath + "/keys/stray.db"))
    }

    func testKeystoreBackupAndRestoreWriteNoPlaintextKeystoreFile() throws {
        let snapshot = dir + "/ks.svks"
        let before = try Posix.listDirectory(vaultPath + "/keys")
        _ = try open().backupKeystore(to: snapshot, now: at(1))
        XCTAssertEqual(try Posix.listDirectory(vaultPath + "/keys"), before)
        // A user deleted after the snapshot: restoring it brings the key back nowhere, not even for a moment in a file.
        let userKey = try XCTUnwrap(try open().keystore.key(role: .user, subject: "ub"))
        _ = try open().delete(user: UserID("ub")!, requestId: "DSR-3", received: at(2), now: at(2))
        let report = try { () throws -> KeystoreRestoreReport in
            let vault = try open()
            return try vault.restoreKeystore(from: snapshot, restoreKey: key(vault), now: at(2))
        }()
        XCTAssertEqual(report.purgedByLedger, 1)
        for name in try Posix.listDirectory(vaultPath + "/keys") {
            XCTAssertFalse(containsBytes(try readBytes(vaultPath + "/keys/" + name), userKey.sealedPrivate), name)
        }
        XCTAssertEqual(try Posix.listDirectory(vaultPath + "/keys"), before)
        try assertRestoresAfterHold("ua", now: at(2))
        XCTAssertEqual(try violations(open(), now: at(2)), [])
    }

    func assertRestoresAfterHold(_ user: String, now: Int64) throws {
        do {
            let vault = try open()
            _ = try vault.placeHold(user: UserID(user)!, caseId: "K1", reason: "drill", restoreKey: key(vault), now: now)
        }
        try assertRestores(user, caseId: "K1", now: now)
    }

    // MARK: - reindex

    func testReindexBringsBackTombstonesBothHoldsAndABlockedRequestFromTheKeyring() throws {
        do {
            let vault = try open()
            _ = try vault.placeHold(user: UserID("ua")!, caseId: "A", reason: "first", restoreKey: key(vault), now: at(1))
            _ = try vault.placeHold(user: UserID("ua")!, caseId: "B", reason: "second", restoreKey: key(vault), now: at(1))
        }
        XCTAssertEqual(try open().delete(user: UserID("ua")!, requestId: "DSR-A", received: at(2), now: at(2)).outcome, .blocked)
        XCTAssertEqual(try open().delete(user: UserID("ub")!, requestId: "DSR-B", received: at(2), now: at(2)).outcome, .shredded)
        // The catalog is lost.
        for suffix in ["", "-wal", "-shm"] { _ = unlink(vaultPath + "/catalog.db" + suffix) }
        let report = try { () throws -> ReindexReport in try Vault(root: vaultPath, createMissingCatalog: true).reindex(now: at(3)) }()
        XCTAssertEqual(report.indexedBundles, 1)
        XCTAssertEqual(report.recoveredHolds, 2)
        XCTAssertEqual(report.recoveredTombstones, 1)
        XCTAssertEqual(Set(try open().catalog.activeHolds(user: "ua").map(\.caseId)), ["A", "B"])
        XCTAssertNotNil(try open().catalog.tombstone(user: "ub"))
        try assertUnrecoverable("ub", caseId: "A", now: at(3))
        // The blocked request came back: releasing one case keeps it blocked, releasing the last one runs it.
        func release(_ caseId: String, _ day: Int64) throws -> HoldReport {
            let vault = try open()
            return try vault.releaseHold(user: UserID("ua")!, caseId: caseId, restoreKey: key(vault), now: at(day))
        }
        _ = try release("A", 4)
        try assertRestores("ua", caseId: "B", now: at(4))
        let last = try release("B", 5)
        XCTAssertEqual(last.executedDeletions, ["DSR-A"])
        try assertUnrecoverable("ua", caseId: "B", now: at(5))
    }

    // MARK: - one keyring, one live vault

    func testACopyOrARecoverBesideTheLiveVaultCannotRetireItsRoot() throws {
        let backup = dir + "/backup"
        _ = try open().backup(to: backup, now: at(1))
        // recover beside the live vault, sharing its keyring and root: refused, and the live vault is untouched.
        XCTAssertThrowsError(try Vault.recover(from: backup, to: dir + "/beside", restoreKeyPath: restoreKeyPath, keyringPath: nil, now: at(1))) { error in
            guard case VaultError.keyringMismatch(_, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("belong to the vault at"), reason)
        }
        // A cp -a copy of the vault: every job refuses it, read-only ones too (its keyring is the live vault's).
        try FileManager.default.copyItem(atPath: vaultPath, toPath: dir + "/copy")
        XCTAssertThrowsError(try Vault(root: dir + "/copy").sweep(now: at(2)))
        XCTAssertThrowsError(try Vault(root: dir + "/copy", readOnly: true).status(now: at(2)))
        // The live vault still works: a destruction and a restore.
        _ = try open().delete(user: UserID("ub")!, requestId: "DSR-L", received: at(2), now: at(2))
        do {
            let vault = try open()
            _ = try vault.placeHold(user: UserID("ua")!, caseId: "L-1", reason: "after the refused drill", restoreKey: key(vault), now: at(2))
        }
        try assertRestores("ua", caseId: "L-1", now: at(2))
        // A vault moved to another directory takes its keyring over (the old path is gone).
        try FileManager.default.removeItem(atPath: dir + "/copy")
        try FileManager.default.moveItem(atPath: vaultPath, toPath: dir + "/moved")
        XCTAssertNoThrow(try Vault(root: dir + "/moved").sweep(now: at(3)))
        XCTAssertEqual(try Vault(root: dir + "/moved", readOnly: true).keyring.binding()?.vaultPath, Posix.realPath(dir + "/moved"))
    }

    // MARK: - recover

    func testInterruptedRecoverIsStartedOverAndNoOtherJobOpensIt() throws {
        let backup = dir + "/backup"
        _ = try open().backup(to: backup, now: at(1))
        let target = dir + "/recovered"
        // As if killed after its marker and some files.
        try Posix.makeDirectories(target, mode: 0o700)
        try writeFile(target + "/" + Vault.recoveryMarkerName, Array("recovering\n".utf8), mode: 0o600)
        try writeFile(target + "/catalog.db", [1, 2, 3], mode: 0o600)
        XCTAssertThrowsError(try Vault(root: target)) { error in
            guard case VaultError.invalidArgument(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("recover"), message)
        }
        // A drill beside the live vault: copies of the keyring and the destruction root (vault-format.md §3.7).
        let config = try open().config
        let keyringCopy = dir + "/drill-keyring.db", rootCopy = dir + "/drill-root"
        try FileManager.default.copyItem(atPath: config.keyringPath!, toPath: keyringCopy)
        try FileManager.default.copyItem(atPath: config.root!.path!, toPath: rootCopy)
        let report = try Vault.recover(from: backup, to: target, restoreKeyPath: restoreKeyPath, keyringPath: keyringCopy,
                                       rootPath: rootCopy, now: at(1))
        XCTAssertEqual(report.check?.violations ?? [], [])
        XCTAssertFalse(Posix.exists(target + "/" + Vault.recoveryMarkerName))
        // A complete vault is never started over.
        XCTAssertThrowsError(try Vault.recover(from: backup, to: target, restoreKeyPath: restoreKeyPath, keyringPath: keyringCopy,
                                               rootPath: rootCopy, now: at(1))) { error in
            XCTAssertEqual(error as? VaultError, .targetExists(path: target))
        }
        // A second backup in the same second gets its own snapshot.
        let again = try open().backup(to: backup, now: at(1))
        XCTAssertTrue(again.keystoreSnapshot.hasSuffix("-2.svks"), again.keystoreSnapshot)
    }
}
