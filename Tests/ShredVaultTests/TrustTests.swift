import Foundation
import XCTest
import VaultCrypto
@testable import ShredVault

/// G8's trust root (vault-format.md §3.9): a party who can rewrite the vault directory but holds neither the restore
/// key nor a job credential cannot make any job seal to its own key.
final class TrustTests: XCTestCase {
    var dir = ""
    var restoreKeyPath: String { dir + "/secrets/restore.key" }
    var vaultPath: String { dir + "/vault" }
    let day0 = Timestamp.parse("2026-11-29T00:15:00Z")!

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory(self)
        try FileManager.default.createDirectory(atPath: dir + "/secrets", withIntermediateDirectories: false)
        try writeFile(dir + "/src/accounts.csv", Array("user_id,last_active\nua,2025-01-01\n".utf8))
        try writeFile(dir + "/src/users/ua/data.bin", pseudoRandomBytes(5_000, seed: 9))
        _ = try Vault.create(root: vaultPath, restoreKeyPath: restoreKeyPath, policy: RetentionPolicy(), drill: true, now: day0)
    }

    func assertRefused(_ body: @autoclosure () throws -> Any, _ needle: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains(needle), "\(error)", file: file, line: line)
        }
    }

    func testANewVaultHasASignedTrustRecordAndAPinnedCredential() throws {
        let vault = try Vault(root: vaultPath)
        let trust = try XCTUnwrap(vault.trust)
        XCTAssertEqual(trust.masterKey, Hex.encode(vault.archiveKey.x963Representation))
        XCTAssertEqual(trust.activeSigners.count, 1)
        XCTAssertEqual(vault.jobCredential?.keyId, trust.activeSigners[0].keyId)
        let jobKey = try XCTUnwrap(vault.config.jobKeyPath)
        XCTAssertFalse(jobKey.hasPrefix(vaultPath + "/"), "the credential lives outside the vault")
        XCTAssertEqual(try XCTUnwrap(try Posix.status(jobKey)).mode & 0o777, 0o600)
        XCTAssertEqual(try vault.check(now: day0, readData: false, restoreKey: nil).violations, [])
    }

    func testASwappedArchiveKeyMakesEveryJobRefuseBeforeSealing() throws {
        let attacker = try P256PrivateKey.generate()
        try writeFile(vaultPath + "/master.pub", Array(MasterKey.encodeArchiveKey(attacker.publicKey).utf8))
        assertRefused(try Vault(root: vaultPath), "does not verify with master.pub")
        assertRefused(try Vault(root: vaultPath, readOnly: true), "does not verify with master.pub")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/src/users/ua"), "nothing was archived")
    }

    func testASwappedArchiveKeyWithASelfSignedTrustRecordIsRefusedByTheJobsThatWrite() throws {
        // The attacker re-signs a trust record for its own key (and its own credential, written where it can write).
        let attacker = try P256PrivateKey.generate()
        var config = try Vault(root: vaultPath, readOnly: true).config
        try writeFile(vaultPath + "/master.pub", Array(MasterKey.encodeArchiveKey(attacker.publicKey).utf8))
        _ = try Vault.issueTrust(root: vaultPath, config: config, restoreKey: attacker, jobKeyPath: dir + "/attacker.key", previous: nil, now: day0)
        // Read-only jobs see a consistent, attacker-signed vault; every job that would seal is refused by the
        // credential outside the vault, which was issued under the real master key.
        XCTAssertNoThrow(try Vault(root: vaultPath, readOnly: true))
        assertRefused(try Vault(root: vaultPath), "was issued for vault/master key")
        // Pointing the config at the attacker's credential does not help against a job whose environment names the
        // real one.
        let real = try XCTUnwrap(config.jobKeyPath)
        config.jobKeyPath = dir + "/attacker.key"
        try Vault.writeConfig(config, root: vaultPath)
        setenv(Vault.jobKeyVariable, real, 1)
        defer { unsetenv(Vault.jobKeyVariable) }
        assertRefused(try Vault(root: vaultPath), "was issued for vault/master key")
        // A read-only job whose environment names the credential sees the replacement too.
        assertRefused(try Vault(root: vaultPath, readOnly: true), "was issued for vault/master key")
        // And the restore side never accepts the swapped key.
        unsetenv(Vault.jobKeyVariable)
        assertRefused(try Vault(root: vaultPath, readOnly: true).restoreKey(path: restoreKeyPath), "restore key does not open")
    }

    func testARemovedTrustRecordStopsTheJobsThatWrite() throws {
        let jobKey = try XCTUnwrap(try Vault(root: vaultPath, readOnly: true).config.jobKeyPath)
        _ = unlink(vaultPath + "/trust")
        assertRefused(try Vault(root: vaultPath), "trust record is missing")
        // Also with the config's credential path removed, when the job's environment names the credential.
        var config = try Vault(root: vaultPath, readOnly: true).config
        config.jobKeyPath = nil
        try Vault.writeConfig(config, root: vaultPath)
        setenv(Vault.jobKeyVariable, jobKey, 1)
        defer { unsetenv(Vault.jobKeyVariable) }
        assertRefused(try Vault(root: vaultPath), "trust record is missing")
    }

    func testRotationRevokesTheOldCredentialAndInitUpgradesAnOldVault() throws {
        let old = try XCTUnwrap(try Vault(root: vaultPath, readOnly: true).config.jobKeyPath)
        let report: TrustReport = try {
            let vault = try Vault(root: vaultPath, trustAdministration: true)
            return try vault.issueJobCredential(restoreKey: vault.restoreKey(path: restoreKeyPath), jobKeyPath: nil, rotate: true, now: day0 + 60)
        }()
        XCTAssertEqual(report.serial, 2)
        XCTAssertEqual(report.revoked.count, 1)
        XCTAssertNoThrow(try Vault(root: vaultPath).archive(ArchiveOptions(source: dir + "/src"), now: day0 + 120))
        setenv(Vault.jobKeyVariable, old, 1)
        assertRefused(try Vault(root: vaultPath), "no longer")
        unsetenv(Vault.jobKeyVariable)
        // Rotation needs the restore key.
        assertRefused(try Vault(root: vaultPath, trustAdministration: true).issueJobCredential(
            restoreKey: try P256PrivateKey.generate(), jobKeyPath: nil, rotate: true, now: day0), "restore key does not open")

        // A vault made before trust records: no trust file, no credential. Check says so; `trust init` fixes it.
        var config = try Vault(root: vaultPath, readOnly: true).config
        config.jobKeyPath = nil
        try Vault.writeConfig(config, root: vaultPath)
        _ = unlink(vaultPath + "/trust")
        XCTAssertTrue(try Vault(root: vaultPath, readOnly: true).check(now: day0, readData: false, restoreKey: nil).violations.map(\.kind).contains("no-trust-record"))
        let initial: TrustReport = try {
            let vault = try Vault(root: vaultPath, trustAdministration: true)
            return try vault.issueJobCredential(restoreKey: vault.restoreKey(path: restoreKeyPath), jobKeyPath: dir + "/secrets/job-new.key", rotate: false, now: day0 + 200)
        }()
        XCTAssertEqual(initial.serial, 1)
        XCTAssertEqual(try Vault(root: vaultPath, readOnly: true).check(now: day0 + 200, readData: false, restoreKey: nil).violations, [])
        XCTAssertNoThrow(try Vault(root: vaultPath).sweep(now: day0 + 200))
    }

    func testBackupAndRecoverKeepTheTrustRecord() throws {
        _ = try Vault(root: vaultPath).archive(ArchiveOptions(source: dir + "/src"), now: day0)
        _ = try Vault(root: vaultPath).backup(to: dir + "/backup", now: day0)
        XCTAssertTrue(Posix.exists(dir + "/backup/trust"))
        let trust = try Data(contentsOf: URL(fileURLWithPath: vaultPath + "/trust"))
        try FileManager.default.removeItem(atPath: vaultPath)
        let report = try Vault.recover(from: dir + "/backup", to: vaultPath, restoreKeyPath: restoreKeyPath, keyringPath: nil, now: day0)
        XCTAssertEqual(report.check?.violations ?? [], [])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: vaultPath + "/trust")), trust)
        XCTAssertNotNil(try Vault(root: vaultPath).jobCredential)
    }
}
