import Foundation
import XCTest

/// One keyring, one vault (vault-format.md §5.1), through the binary: a keyring is bound to exactly one vault — its id,
/// its directory, its kind (production or drill) and the keyring's own id, which the catalog records. A copied vault,
/// an empty, foreign or replaced keyring is refused by every job (exit 13) with the command that fixes it, and
/// nothing changes; a deleted keyring is named with the way back (exit 66), `shredvault keyring rebuild`.
final class KeyringBindingTests: XCTestCase {
    /// The jobs every refusal below is tried with: read-only ones and ones that change the vault.
    func everyJob(_ s: Scenario) -> [(String, [String], Bool)] {
        [("status", ["status"], false), ("list", ["list"], false), ("check", ["check"], false), ("audit verify", ["audit", "verify"], false),
         ("sweep", ["sweep"], false), ("delete", ["delete", "pb", "--request-id", "DSR-K"], false),
         ("hold place", ["hold", "place", "pa", "--case", "K1", "--reason", "r"], true),
         ("keystore backup", ["keystore", "backup", "--to", s.dir + "/refused.svks"], false)]
    }

    /// `cp -a` of a vault — a drill done the wrong way — shares the original's keyring and destruction root: a
    /// destruction in the copy would retire root generations the original needs. Every job on the copy is refused,
    /// read-only ones too (today `check` said OK), naming `shredvault drill`; neither the copy nor the original changes.
    func testACopiedVaultIsRefusedByEveryJob() throws {
        let s = try Scenario(self)
        try s.productionWithUsers(["pa", "pb"])
        let copy = s.dir + "/copy"
        let cp = try CLI.execute("/bin/cp", ["-a", s.vault, copy])
        XCTAssertEqual(cp.status, 0, cp.stderr)
        let copyBefore = try bytesOf([copy])
        try assertChangesNothing(s, "jobs on a cp -a copy") {
            for (what, args, key) in everyJob(s) {
                let r = try s.real(args, key: key ? s.keyFile : nil, vault: copy)
                assertOneLineError(r, exit: 13, ["belong to the vault at", "shredvault drill --from"], "\(what) on the copy")
            }
        }
        XCTAssertEqual(try bytesOf([copy]), copyBefore, "the copy is untouched")
        assertSuccess(try s.real(["sweep"]), "the original still works")
        let check = try s.real(["check"])
        XCTAssertEqual(check.json?["ok"] as? Bool, true, check.stdout)
    }

    /// An empty file, or any file that is not a SQLite database, in place of the keyring: SQLite would have made it a
    /// new, empty keyring (losing the erasure-ledger mirror and the backup-epoch keys) and `check` said OK. Now every
    /// job refuses it before opening it, and it stays as it is.
    func testAnEmptyOrForeignFileAsKeyringIsRefused() throws {
        let s = try Scenario(self)
        try s.productionWithUsers(["pa", "pb"])
        let keyring = s.keyringPath
        let original = try Data(contentsOf: URL(fileURLWithPath: keyring))
        for (what, bytes, needle) in [("empty", Data(), "it is empty"), ("not SQLite", Data("not a database\n".utf8), "not a SQLite database")] {
            try bytes.write(to: URL(fileURLWithPath: keyring))
            try assertChangesNothing(s, "jobs with an \(what) keyring") {
                for (job, args, key) in everyJob(s) {
                    assertOneLineError(try s.real(args, key: key ? s.keyFile : nil), exit: 13, [keyring, needle, "shredvault keyring rebuild"], "\(job), \(what) keyring")
                }
            }
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: keyring)), bytes, "the \(what) keyring was not written")
        }
        try original.write(to: URL(fileURLWithPath: keyring))
        assertSuccess(try s.real(["sweep"]), "with its own keyring back, the vault works")
    }

    /// Another vault's keyring in place of this vault's: refused by every job, naming both vaults; neither changes.
    func testAnotherVaultsKeyringIsRefused() throws {
        let s = try Scenario(self)
        try s.productionWithUsers(["pa", "pb"])
        let other = try Scenario(self)
        try other.productionWithUsers(["qa"])
        let otherId = try XCTUnwrap(other.config["vaultId"] as? String)
        let own = try Data(contentsOf: URL(fileURLWithPath: s.keyringPath))
        try Data(contentsOf: URL(fileURLWithPath: other.keyringPath)).write(to: URL(fileURLWithPath: s.keyringPath))
        let otherBefore = try VaultSnapshot(other)
        try assertChangesNothing(s, "jobs with another vault's keyring") {
            for (job, args, key) in everyJob(s) {
                assertOneLineError(try s.real(args, key: key ? s.keyFile : nil), exit: 13, ["keyring of vault \(otherId)", "not of this vault"], job)
            }
        }
        XCTAssertEqual(try VaultSnapshot(other), otherBefore, "the other vault is untouched")
        try own.write(to: URL(fileURLWithPath: s.keyringPath))
        assertSuccess(try s.real(["sweep"]), "with its own keyring back, the vault works")
    }

    /// A keyring of the same vault that is not the one it is bound to — here the keyring of a recovery made beside it
    /// from copies, whose directory was removed since — is refused as replaced: the catalog records another keyring id.
    func testAReplacedKeyringIsRefused() throws {
        let s = try Scenario(self)
        try s.productionWithUsers(["pa", "pb"])
        assertSuccess(try s.real(["backup", "--to", s.dir + "/backup"]), "backup")
        try FileManager.default.createDirectory(atPath: s.dir + "/copies", withIntermediateDirectories: false)
        try FileManager.default.copyItem(atPath: s.keyringPath, toPath: s.dir + "/copies/keyring.db")
        try FileManager.default.copyItem(atPath: s.rootPath, toPath: s.dir + "/copies/root")
        let recovered = s.dir + "/beside"
        let recover = try s.real(["recover", "--from", s.dir + "/backup", "--keyring", s.dir + "/copies/keyring.db",
                                  "--root-file", s.dir + "/copies/root"], key: s.keyFile, vault: recovered)
        assertSuccess(recover, "recover beside the vault from copies")
        try FileManager.default.removeItem(atPath: recovered)
        let own = try Data(contentsOf: URL(fileURLWithPath: s.keyringPath))
        try Data(contentsOf: URL(fileURLWithPath: s.dir + "/copies/keyring.db")).write(to: URL(fileURLWithPath: s.keyringPath))
        try assertChangesNothing(s, "jobs with a replaced keyring") {
            for (job, args, key) in everyJob(s) {
                assertOneLineError(try s.real(args, key: key ? s.keyFile : nil), exit: 13, ["replaced", "not the keyring this vault is bound to"], job)
            }
        }
        try own.write(to: URL(fileURLWithPath: s.keyringPath))
        assertSuccess(try s.real(["sweep"]), "with its own keyring back, the vault works")
    }

    /// A deleted keyring is named with the way back; `keyring rebuild` makes a new one from the catalog: the erasure
    /// ledger (a deleted user stays deleted), holds and deletion requests, and the latest job time come back; the
    /// backup-epoch keys cannot, so older keystore snapshots stay unreadable.
    func testADeletedKeyringIsRebuiltFromTheCatalog() throws {
        let s = try Scenario(self)
        try s.productionWithUsers(["pa", "pb", "pc"])
        assertSuccess(try s.real(["hold", "place", "pa", "--case", "K1", "--reason", "kept"], key: s.keyFile), "hold pa")
        assertSuccess(try s.real(["delete", "pb", "--request-id", "DSR-B"]), "delete pb")
        assertSuccess(try s.real(["keystore", "backup", "--to", s.dir + "/before.svks"]), "keystore backup")
        let latest = try s.latestJobTimes().catalog
        let keyring = s.keyringPath
        try FileManager.default.removeItem(atPath: keyring)
        let before = try bytesOf([s.vault, s.dir + "/secrets"])
        for (job, args, key) in everyJob(s) {
            assertOneLineError(try s.real(args, key: key ? s.keyFile : nil), exit: 66, [keyring, "does not exist", "shredvault keyring rebuild"], job)
        }
        XCTAssertEqual(try bytesOf([s.vault, s.dir + "/secrets"]), before, "the refused jobs changed nothing")
        XCTAssertFalse(FileManager.default.fileExists(atPath: keyring), "no job made a keyring")

        let rebuilt = try s.real(["keyring", "rebuild"])
        assertSuccess(rebuilt, "keyring rebuild")
        XCTAssertEqual(rebuilt.json?["holds"] as? Int, 1, rebuilt.stdout)
        XCTAssertEqual(rebuilt.json?["deletionRequests"] as? Int, 1, rebuilt.stdout)
        XCTAssertEqual(rebuilt.json?["unreadableSnapshots"] as? Int, 1, rebuilt.stdout)
        XCTAssertGreaterThanOrEqual(rebuilt.json?["ledgerEntries"] as? Int ?? 0, 1, rebuilt.stdout)
        XCTAssertEqual(try sqliteRows(keyring, "SELECT role, subject FROM erasures WHERE role = 'user'"), ["'user'\t'pb'"], "the ledger mirror is back")
        let times = try s.latestJobTimes()
        XCTAssertEqual(times.keyring, times.catalog, "the keyring remembers the latest job time again")
        XCTAssertGreaterThanOrEqual(times.keyring ?? 0, latest ?? .max, "no earlier than before")
        assertOneLineError(try s.real(["keyring", "rebuild"]), exit: 73, [keyring], "a second rebuild")

        let check = try s.real(["check"])
        assertSuccess(check, "check after the rebuild")
        assertOneLineError(try s.real(["hold", "place", "pb", "--case", "K2", "--reason", "r"], key: s.keyFile), exit: 11,
                           ["unrecoverable"], "the deleted user stays deleted")
        assertSuccess(try s.real(["restore", "pa", "--case", "K1", "--to", s.dir + "/ra"], key: s.keyFile), "the held user restores")
        XCTAssertEqual(try Tree(s.dir + "/ra"), try Tree(s.pristine + "/users/pa"))
        let old = try s.real(["keystore", "restore", s.dir + "/before.svks"], key: s.keyFile)
        XCTAssertEqual(old.status, 65, "a snapshot sealed to a lost epoch key does not open: \(old.stderr)")
        XCTAssertTrue(old.stderr.contains("epoch key"), old.stderr)
        assertSuccess(try s.real(["audit", "verify"]), "audit verify")
    }
}
