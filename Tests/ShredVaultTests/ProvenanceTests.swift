import Foundation
import GRDB
import XCTest
import VaultCrypto
@testable import ShredVault

/// G8's signed objects (vault-format.md §3.10), tried as the attacker of the issue: a party who can write every file
/// of the vault directory but holds neither the restore key nor a job credential. It forges a bundle with public keys
/// only (new file with the genuine header, a fresh DEK sealed to the user's and day's public keys, sidecar and catalog
/// row updated), and every variant of re-using genuine signatures; `restore`, `check --read-data` and `hold place`
/// must refuse it naming the bundle, and nothing may reach a restore target.
final class ProvenanceTests: XCTestCase {
    var dir = ""
    var restoreKeyPath: String { dir + "/secrets/restore.key" }
    var vaultPath: String { dir + "/vault" }
    let day0 = Timestamp.parse("2026-11-29T00:15:00Z")!
    let confession = Array("I, ua, admit everything. (written by an attacker)\n".utf8)

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory(self)
        try FileManager.default.createDirectory(atPath: dir + "/secrets", withIntermediateDirectories: false)
        try writeFile(dir + "/src/accounts.csv", Array("user_id,last_active\nua,2025-01-01\nub,2025-01-01\n".utf8))
        try writeFile(dir + "/src/users/ua/mail.txt", Array("the genuine archive of ua\n".utf8))
        try writeFile(dir + "/src/users/ub/mail.txt", Array("the genuine archive of ub\n".utf8))
        _ = try Vault.create(root: vaultPath, restoreKeyPath: restoreKeyPath, policy: RetentionPolicy(), drill: true, now: day0)
        let report = try Vault(root: vaultPath).archive(ArchiveOptions(source: dir + "/src"), now: day0)
        XCTAssertEqual(report.archived.count, 2)
    }

    // MARK: - The attacker's tools: public keys and file writes only

    func row(_ user: String) throws -> BundleRecord {
        let queue = try DatabaseQueue(path: vaultPath + "/catalog.db")
        defer { try? queue.close() }
        return try XCTUnwrap(try queue.read { db in try BundleRecord.fetchOne(db, sql: "SELECT * FROM bundles WHERE user_id = ? AND state = 'live'", arguments: [user]) })
    }

    func writeRow(_ b: BundleRecord) throws {
        let queue = try DatabaseQueue(path: vaultPath + "/catalog.db")
        defer { try? queue.close() }
        try queue.write { db in try b.update(db) }
    }

    func writeSidecar(_ b: BundleRecord) throws {
        try writeBytes(try XCTUnwrap(b.sidecar).encoded(), to: vaultPath + "/" + DEKSidecar.location(forBundle: b.location))
    }

    /// Replaces ua's bundle with the attacker's confession under a fresh DEK sealed to the public keys of the keystore;
    /// returns the row as the attacker rewrote it (signature columns as `keep` says), already written with its sidecar.
    @discardableResult
    func forge(_ user: String = "ua", keepSignatures: Bool = true, writeCatalog: Bool = true) throws -> BundleRecord {
        var b = try row(user)
        let path = vaultPath + "/" + b.location
        let (header, _) = try BundleReader.readHeader(path: path)
        let (userKey, outerKey): (StoredKey, StoredKey) = try {
            let vault = try Vault(root: vaultPath, readOnly: true)
            return (try XCTUnwrap(try vault.keystore.key(id: Array(b.userKeyId))), try XCTUnwrap(try vault.keystore.key(id: Array(b.outerKeyId!))))
        }()
        try writeFile(dir + "/forgery/confession.txt", confession)
        let dek = try SecretBytes.random(count: 32)
        _ = try BundleWriter.seal(source: dir + "/forgery", header: header, dataKey: dek, to: dir + "/forged.svb")
        XCTAssertEqual(rename(dir + "/forged.svb", path), 0)
        let sealed = try KeyHierarchy.sealDataKey(dek, binding: .init(header: header), userKey: userKey.publicKey,
                                                  outerRole: KeyRole(rawValue: b.outerRole!)!, outerKey: outerKey.publicKey)
        let bytes = try readBytes(path)
        b.size = Int64(bytes.count)
        b.sha256 = Data(try SHA256.hash(bytes))
        b.sealedDek = Data(sealed)
        if !keepSignatures { (b.innerSha256, b.bundleSig, b.sealSig) = (nil, nil, nil) }
        if writeCatalog { try writeRow(b) }
        try writeSidecar(b)
        return b
    }

    func assertNotGenuine(_ body: @autoclosure () throws -> Any, _ bundleId: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard case VaultError.notGenuine(let subject, _) = error else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertTrue(subject.contains("bundle \(bundleId)"), subject, file: file, line: line)
            XCTAssertTrue("\(error)".contains("was not made by this vault's jobs"), "\(error)", file: file, line: line)
        }
    }

    func restoreKey() throws -> P256PrivateKey { try MasterKey.readRestoreKey(restoreKeyPath) }

    func tree(_ path: String) -> [String] {
        (FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? []).sorted()
    }

    // MARK: - Tests

    func testGenuineBundlesAreSignedAndVerify() throws {
        let b = try row("ua")
        let provenance = try XCTUnwrap(b.provenance)
        let vault = try Vault(root: vaultPath, readOnly: true)
        let trust = try XCTUnwrap(vault.trust)
        XCTAssertEqual(provenance.bundleSignature.signerHex, trust.activeSigners[0].keyId, "archive signs with the job credential")
        let sidecar = try DEKSidecar.decode(try readBytes(vaultPath + "/" + DEKSidecar.location(forBundle: b.location)), path: "sidecar")
        XCTAssertEqual(sidecar.provenance, provenance, "the sidecar (version 2) carries the catalog's signatures")
        XCTAssertEqual(try vault.check(now: day0, readData: true, restoreKey: try restoreKey()).violations, [])
    }

    /// `check --read-data` compares each file's SHA-256 with the catalog's in the same read that decrypts it: a bundle
    /// whose ciphertext was changed (same size, signed prefix intact) is reported as `bundle-mismatch`, not as a
    /// decryption failure, and the other bundle is still checked.
    func testCheckReadDataReportsAModifiedBundleAsMismatchInItsSingleRead() throws {
        let b = try row("ua")
        let path = vaultPath + "/" + b.location
        var bytes = try readBytes(path)
        bytes[bytes.count - 20] ^= 0x01
        try writeFile(path, bytes)
        let full = try Vault(root: vaultPath, readOnly: true).check(now: day0, readData: true, restoreKey: try restoreKey())
        XCTAssertEqual(full.violations.map(\.kind), ["bundle-mismatch"], "\(full.violations)")
        XCTAssertEqual(full.violations.first?.subject, "bundle \(b.id) of ua")
        XCTAssertTrue(full.violations.first?.message.contains("differs from the catalog") ?? false, "\(full.violations)")
        bytes[bytes.count - 20] ^= 0x01
        try writeFile(path, bytes)
        XCTAssertEqual(try Vault(root: vaultPath, readOnly: true).check(now: day0, readData: true, restoreKey: try restoreKey()).violations, [])
    }

    func testAForgedBundleIsRefusedByHoldPlaceRestoreAndCheck() throws {
        let forged = try forge()
        // Without the restore key, check already sees it (the seal signature no longer covers the sealed DEK).
        let quick = try Vault(root: vaultPath, readOnly: true).check(now: day0, readData: false, restoreKey: nil)
        XCTAssertEqual(quick.violations.map(\.kind), ["bad-signature"])
        XCTAssertEqual(quick.violations.first?.subject, "bundle \(forged.id) of ua")
        let full = try Vault(root: vaultPath, readOnly: true).check(now: day0, readData: true, restoreKey: try restoreKey())
        XCTAssertEqual(full.violations.map(\.kind), ["bad-signature"])
        do {
            let vault = try Vault(root: vaultPath)
            assertNotGenuine(try vault.placeHold(user: UserID("ua")!, caseId: "case-1", reason: "litigation", restoreKey: try restoreKey(), now: day0 + 60), forged.id)
            XCTAssertEqual(try vault.catalog.activeHolds(user: "ua"), [], "no hold was recorded for the forged bundle")
            XCTAssertNil(try vault.keystore.key(role: .hold, subject: "case-1"), "refused before the case key was made")
        }
        // The other user is untouched and still restorable.
        do {
            let vault = try Vault(root: vaultPath)
            _ = try vault.placeHold(user: UserID("ub")!, caseId: "case-2", reason: "litigation", restoreKey: try restoreKey(), now: day0 + 120)
            _ = try vault.restore(user: UserID("ub")!, caseId: "case-2", to: dir + "/out-ub", restoreKey: try restoreKey(), now: day0 + 180)
        }
        XCTAssertEqual(try readBytes(dir + "/out-ub/mail.txt"), Array("the genuine archive of ub\n".utf8))
    }

    func testAForgeryAfterTheHoldIsRefusedByRestoreAndNothingReachesTheTarget() throws {
        do {
            let vault = try Vault(root: vaultPath)
            _ = try vault.placeHold(user: UserID("ua")!, caseId: "case-1", reason: "litigation", restoreKey: try restoreKey(), now: day0 + 60)
        }
        // The forgery seals to the hold key now (the row's outer key), as the attacker would read it.
        for keep in [true, false] {
            let forged = try forge(keepSignatures: keep)
            let vault = try Vault(root: vaultPath)
            assertNotGenuine(try vault.restore(user: UserID("ua")!, caseId: "case-1", to: dir + "/out", restoreKey: try restoreKey(), now: day0 + 120), forged.id)
            XCTAssertFalse(Posix.exists(dir + "/out"), "nothing is written to the restore target")
            XCTAssertEqual(tree(dir).filter { $0.hasPrefix("out") || $0.contains(".out.partial") }, [])
            assertNotGenuine(try vault.restore(users: [UserID("ua")!], caseId: "case-1", to: dir + "/out-all", restoreKey: try restoreKey(), now: day0 + 120), forged.id)
            XCTAssertFalse(Posix.exists(dir + "/out-all"))
        }
    }

    /// Every way of re-using genuine signatures with forged bytes: each is refused.
    func testGenuineSignaturesDoNotCoverOtherBytes() throws {
        let genuineA = try row("ua"), genuineB = try row("ub")
        try writeBytes(try readBytes(vaultPath + "/" + genuineA.location), to: dir + "/genuine-a.svb")
        let target = dir + "/out"
        func restoreA() throws {
            let vault = try Vault(root: vaultPath)
            if try vault.catalog.activeHolds(user: "ua").isEmpty {
                _ = try vault.placeHold(user: UserID("ua")!, caseId: "case-1", reason: "litigation", restoreKey: try restoreKey(), now: day0 + 60)
            }
            _ = try vault.restore(user: UserID("ua")!, caseId: "case-1", to: target, restoreKey: try restoreKey(), now: day0 + 120)
        }
        func reset() throws {
            try writeRow(genuineA)
            try writeSidecar(genuineA)
        }
        // 1. ub's seal signature on ua's row (the seal body names the bundle id).
        var b = genuineA
        b.sealSig = genuineB.sealSig
        try writeRow(b)
        assertNotGenuine(try restoreA(), genuineA.id)
        try reset()
        // 2. ub's bundle signature and inner hash on ua's row.
        b = genuineA
        (b.bundleSig, b.innerSha256) = (genuineB.bundleSig, genuineB.innerSha256)
        try writeRow(b)
        assertNotGenuine(try restoreA(), genuineA.id)
        try reset()
        // 3. ub's sealed DEK and seal signature on ua's row.
        b = genuineA
        (b.sealedDek, b.sealSig) = (genuineB.sealedDek, genuineB.sealSig)
        try writeRow(b)
        assertNotGenuine(try restoreA(), genuineA.id)
        try reset()
        // 4. Another expiry day under the genuine seal signature (the catalog would file it elsewhere).
        b = genuineA
        b.expiryDay += 30
        try writeRow(b)
        assertNotGenuine(try restoreA(), genuineA.id)
        try reset()
        // 5. A signature by a key the trust record does not list (the attacker's own), with a correct body.
        b = genuineA
        let attacker = try VaultSigner(try P256PrivateKey.generate())
        b.sealSig = Data(try attacker.sign(.seal, try Vault(root: vaultPath, readOnly: true).sealBody(bundleId: b.id, role: .day, outerKeyId: Array(b.outerKeyId!),
                                                                 expiryDay: b.expiryDay, outer: Array(b.sealedDek!))).encoded)
        try writeRow(b)
        XCTAssertThrowsError(try restoreA()) { XCTAssertTrue("\($0)".contains("is not in the vault's trust record"), "\($0)") }
        try reset()
        // 6. The genuine inner hash and signatures, with the forged file and sealed DEK (keepSignatures).
        _ = try forge(keepSignatures: true)
        assertNotGenuine(try restoreA(), genuineA.id)
        XCTAssertFalse(Posix.exists(target))
        // Once the genuine bundle is back, the same restore works: each refusal above was the forgery's.
        try reset()
        try writeBytes(try readBytes(dir + "/genuine-a.svb"), to: vaultPath + "/" + genuineA.location)
        try restoreA()
        XCTAssertEqual(try readBytes(target + "/mail.txt"), Array("the genuine archive of ua\n".utf8))
    }

    func testReindexDoesNotAdoptAForgedSidecar() throws {
        let forged = try forge(writeCatalog: false)
        _ = forged
        for name in ["catalog.db", "catalog.db-wal", "catalog.db-shm"] { _ = unlink(vaultPath + "/" + name) }
        let report = try Vault(root: vaultPath, createMissingCatalog: true).reindex(now: day0 + 60)
        XCTAssertEqual(report.skipped.count, 1, "\(report.skipped)")
        XCTAssertTrue(report.skipped[0].contains("was not made by this vault's jobs"), report.skipped[0])
        let vault = try Vault(root: vaultPath, readOnly: true)
        XCTAssertEqual(try vault.catalog.liveBundles(user: "ua"), [])
        XCTAssertEqual(try vault.catalog.liveBundles(user: "ub").count, 1)
    }

    func testAVaultWithoutTrustRecordIsRefusedByArchiveHoldRestoreAndReadDataCheck() throws {
        try writeFile(dir + "/src/accounts.csv", Array("user_id,last_active\nua,2025-01-01\nub,2025-01-01\nuc,2025-01-01\n".utf8))
        try writeFile(dir + "/src/users/uc/mail.txt", Array("uc\n".utf8))
        var config = try Vault(root: vaultPath, readOnly: true).config
        config.jobKeyPath = nil
        try Vault.writeConfig(config, root: vaultPath)
        _ = unlink(vaultPath + "/trust")
        let vault = try Vault(root: vaultPath)
        func assertUpgradeNeeded(_ body: @autoclosure () throws -> Any) {
            XCTAssertThrowsError(try body()) { error in
                guard case VaultError.notGenuine = error else { return XCTFail("\(error)") }
                XCTAssertTrue("\(error)".contains("shredvault trust init"), "\(error)")
            }
        }
        assertUpgradeNeeded(try vault.archive(ArchiveOptions(source: dir + "/src"), now: day0 + 60))
        XCTAssertTrue(Posix.exists(dir + "/src/users/uc/mail.txt"), "nothing archived")
        assertUpgradeNeeded(try vault.placeHold(user: UserID("ua")!, caseId: "c", reason: "r", restoreKey: try restoreKey(), now: day0 + 60))
        assertUpgradeNeeded(try vault.restore(user: UserID("ua")!, caseId: "c", to: dir + "/out", restoreKey: try restoreKey(), now: day0 + 60))
        assertUpgradeNeeded(try vault.check(now: day0 + 60, readData: true, restoreKey: try restoreKey()))
        // Destruction needs no trust: sweep and delete still run (G1, G2 deadlines).
        XCTAssertNoThrow(try vault.sweep(now: day0 + 60))
    }

    func testTrustInitEndorsesTheBundlesOfAnOldVault() throws {
        // A vault made before signed objects: rows and sidecars without signatures, no trust record.
        do {
            let queue = try DatabaseQueue(path: vaultPath + "/catalog.db")
            try queue.write { db in try db.execute(sql: "UPDATE bundles SET inner_sha256 = NULL, bundle_sig = NULL, seal_sig = NULL") }
            try queue.close()
        }
        for user in ["ua", "ub"] { try writeSidecar(try row(user)) }
        XCTAssertEqual(try readBytes(vaultPath + "/" + DEKSidecar.location(forBundle: try row("ua").location)).count, DEKSidecar.length, "version 1")
        var config = try Vault(root: vaultPath, readOnly: true).config
        config.jobKeyPath = nil
        try Vault.writeConfig(config, root: vaultPath)
        _ = unlink(vaultPath + "/trust")
        let report: TrustReport = try {
            let vault = try Vault(root: vaultPath, trustAdministration: true)
            return try vault.issueJobCredential(restoreKey: try restoreKey(), jobKeyPath: dir + "/secrets/job.key", rotate: false, now: day0 + 60)
        }()
        XCTAssertEqual(report.endorsedBundles, 2)
        let b = try row("ua")
        let masterKeyId = try XCTUnwrap(try Vault(root: vaultPath, readOnly: true).trust).masterKeyId
        XCTAssertEqual(b.provenance?.bundleSignature.signerHex, masterKeyId, "endorsed by the restore key")
        let vault = try Vault(root: vaultPath)
        XCTAssertEqual(try vault.check(now: day0 + 60, readData: true, restoreKey: try restoreKey()).violations, [])
        _ = try vault.placeHold(user: UserID("ua")!, caseId: "case-1", reason: "litigation", restoreKey: try restoreKey(), now: day0 + 120)
        _ = try vault.restore(user: UserID("ua")!, caseId: "case-1", to: dir + "/out", restoreKey: try restoreKey(), now: day0 + 180)
        XCTAssertEqual(try readBytes(dir + "/out/mail.txt"), Array("the genuine archive of ua\n".utf8))
        // The reseal was signed by the new job credential.
        XCTAssertEqual(try row("ua").provenance?.sealSignature.signerHex, report.jobKeyId)
    }
}
