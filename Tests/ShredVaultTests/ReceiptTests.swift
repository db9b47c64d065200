import Foundation
import GRDB
import XCTest
import VaultCrypto
@testable import ShredVault

/// Deletion receipts (vault-format.md §6.3): every completed deletion request gets a receipt signed by the vault,
/// which anyone verifies offline with a copy of the vault's trust record, and which no edit survives.
final class ReceiptTests: XCTestCase {
    var dir = ""
    var restoreKeyPath: String { dir + "/secrets/restore.key" }
    var vaultPath: String { dir + "/vault" }
    let day0 = Timestamp.parse("2026-11-29T00:15:00Z")!
    func at(_ days: Int64, hour: Int64 = 0) -> Int64 { day0 + days * 86_400 + hour * 3600 }

    override func setUpWithError() throws {
        dir = try makeTemporaryDirectory(self)
        try FileManager.default.createDirectory(atPath: dir + "/secrets", withIntermediateDirectories: false)
        try writeFile(dir + "/src/accounts.csv", Array("user_id,last_active\nua,2025-01-01\nub,2025-06-01\n".utf8))
        try writeFile(dir + "/src/users/ua/profile.json", Array("{\"a\":1}".utf8))
        try writeFile(dir + "/src/users/ub/events.jsonl", pseudoRandomBytes(3_000, seed: 6, text: true))
        _ = try Vault.create(root: vaultPath, restoreKeyPath: restoreKeyPath, policy: RetentionPolicy(), drill: true, now: day0)
        do {
            let vault = try open()
            XCTAssertEqual(try vault.archive(ArchiveOptions(source: dir + "/src"), now: day0).archived.map(\.user), ["ua", "ub"])
        }
    }

    func open() throws -> Vault { try Vault(root: vaultPath) }
    func readOnly() throws -> Vault { try Vault(root: vaultPath, readOnly: true) }
    func key(_ vault: Vault) throws -> P256PrivateKey { try vault.restoreKey(path: restoreKeyPath) }

    /// Exports the request's receipt into `dir/out/NAME` and copies the trust record beside it: all a user gets.
    func export(_ requestId: String, name: String? = nil) throws -> (receipt: String, trust: String) {
        try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: true)
        let path = dir + "/out/" + (name ?? requestId + ".receipt")
        _ = try readOnly().exportReceipt(requestId: requestId, to: path)
        let trust = dir + "/out/trust"
        if !Posix.exists(trust) { try FileManager.default.copyItem(atPath: vaultPath + "/trust", toPath: trust) }
        return (path, trust)
    }

    func assertNotVerified(_ body: @autoclosure () throws -> Any, _ needle: String, _ what: String,
                           file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), what, file: file, line: line) { error in
            guard case VaultError.notVerified(_, let reason) = error else {
                return XCTFail("\(what): expected notVerified, got \(error)", file: file, line: line)
            }
            XCTAssertTrue(reason.contains(needle), "\(what): '\(reason)' should mention '\(needle)'", file: file, line: line)
        }
    }

    func masterKeyId() throws -> String { try XCTUnwrap(try readOnly().trust).masterKeyId }

    // MARK: - Issued at completion, verified offline

    func testADeletionProducesAReceiptThatVerifiesOfflineWithOnlyTheTrustFile() throws {
        let (userKeyId, report, generation, shredRecord) = try {
            let vault = try open()
            let userKey = try XCTUnwrap(try vault.keystore.key(role: .user, subject: "ua"))
            let report = try vault.delete(user: UserID("ua")!, requestId: "DSR-1", received: at(1), now: at(2, hour: 9))
            let shred = try vault.catalog.read { db in
                try XCTUnwrap(try Row.fetchOne(db, sql: "SELECT seq, hash, action FROM audit ORDER BY seq DESC LIMIT 1"))
            }
            return (Hex.encode(userKey.keyId), report, try vault.keystore.ratchetGeneration(), shred)
        }()
        XCTAssertEqual(report.outcome, .shredded)
        XCTAssertTrue(report.receipt)
        XCTAssertEqual(shredRecord["action"] as String, "shred")
        let (receiptPath, trustPath) = try export("DSR-1")
        let pin = try masterKeyId()
        // Nothing of the vault is needed: it is gone.
        try Posix.removeTree(vaultPath)
        let v = try DeletionReceipt.verify(receiptFile: receiptPath, trustFile: trustPath, masterKeyId: pin)
        let r = v.receipt
        XCTAssertEqual(r.requestId, "DSR-1")
        XCTAssertEqual(r.userId, "ua")
        XCTAssertEqual(r.received, Timestamp.format(at(1)))
        XCTAssertEqual(r.completed, Timestamp.format(at(2, hour: 9)))
        XCTAssertEqual(r.issued, r.completed)
        XCTAssertEqual(r.deadline, report.deadline)
        XCTAssertTrue(r.onTime)
        XCTAssertEqual(r.destroyedKeys, [userKeyId])
        XCTAssertNil(r.alreadyDeletedBy)
        XCTAssertEqual(r.rootGeneration, try XCTUnwrap(generation))
        XCTAssertEqual(r.auditHead, .init(seq: shredRecord["seq"], hash: Hex.encode(shredRecord["hash"] as Data)))
        XCTAssertEqual(r.masterKeyId, pin)
        XCTAssertEqual(v.signerRole, "job")
        // The exported file is exactly the canonical encoding.
        let bytes = try readBytes(receiptPath)
        XCTAssertEqual(bytes.last, 0x0a)
        XCTAssertEqual(ReceiptFile.decode(bytes)?.encoded, bytes)
    }

    func testTheRootGenerationIsTheOneThatReplacedTheKeysGeneration() throws {
        let vault = try open()
        let before = try XCTUnwrap(try vault.keystore.ratchetGeneration())
        _ = try vault.delete(user: UserID("ua")!, requestId: "DSR-1", received: nil, now: at(1))
        let receipt = try vault.receipt(requestId: "DSR-1").verification.receipt
        XCTAssertEqual(receipt.rootGeneration, before + 1, "the destruction created exactly one new generation")
        XCTAssertEqual(try vault.destructionRoot?.generations(), [before + 1], "and it is the only one left")
    }

    func testARepeatedRequestForADeletedUserGetsAReceiptNamingTheEarlierRequest() throws {
        let vault = try open()
        _ = try vault.delete(user: UserID("ua")!, requestId: "DSR-1", received: nil, now: at(1))
        // Same second as the deletion: still told apart from the request that destroyed the key.
        let again = try vault.delete(user: UserID("ua")!, requestId: "DSR-2", received: nil, now: at(1))
        XCTAssertEqual(again.outcome, .alreadyDeleted)
        XCTAssertTrue(again.receipt)
        let r = try vault.receipt(requestId: "DSR-2").verification.receipt
        XCTAssertEqual(r.destroyedKeys, [])
        XCTAssertEqual(r.alreadyDeletedBy, "DSR-1")
        // Its audit head is the record of its own completion, after the shred of DSR-1.
        let first = try vault.receipt(requestId: "DSR-1").verification.receipt
        XCTAssertGreaterThan(r.auditHead.seq, first.auditHead.seq)
        // Repeating the same request id changes nothing.
        let records = try vault.receipts()
        _ = try vault.delete(user: UserID("ua")!, requestId: "DSR-2", received: nil, now: at(2))
        XCTAssertEqual(try vault.receipts(), records)
    }

    // MARK: - No edit survives

    func testEverySingleByteEditOfTheExportedFileFailsVerification() throws {
        do { _ = try open().delete(user: UserID("ua")!, requestId: "DSR-1", received: nil, now: at(1)) }
        let (receiptPath, trustPath) = try export("DSR-1")
        let original = try readBytes(receiptPath)
        XCTAssertNoThrow(try DeletionReceipt.verify(receiptFile: receiptPath, trustFile: trustPath, masterKeyId: nil), "the original verifies")
        let edited = dir + "/out/edited.receipt"
        var refused = 0, edits = 0
        for i in original.indices {
            // Two edits of every byte: one bit, and a different printable character.
            for replacement in Set([original[i] ^ 0x01, original[i] == UInt8(ascii: "7") ? UInt8(ascii: "8") : UInt8(ascii: "7")]) {
                var bytes = original
                bytes[i] = replacement
                try writeBytes(bytes, to: edited)
                edits += 1
                do {
                    _ = try DeletionReceipt.verify(receiptFile: edited, trustFile: trustPath, masterKeyId: nil)
                    XCTFail("byte \(i) (\(UnicodeScalar(original[i]))) → \(UnicodeScalar(replacement)) still verifies")
                } catch VaultError.notVerified {
                    refused += 1
                }
            }
        }
        XCTAssertEqual(refused, edits)
        XCTAssertGreaterThan(original.count, 600, "the whole file was edited, byte by byte")
        XCTAssertGreaterThan(edits, original.count, "every byte edited, most of them in two ways")
    }

    func testTheSignatureCoversEveryByteOfTheReceiptTextAndItselfEveryByteOfTheSignature() throws {
        do { _ = try open().delete(user: UserID("ua")!, requestId: "DSR-1", received: nil, now: at(1)) }
        let (receiptPath, trustPath) = try export("DSR-1")
        let file = try XCTUnwrap(ReceiptFile.decode(try readBytes(receiptPath)))
        let trust = try XCTUnwrap(try? TrustFile.verify(String(contentsOfFile: trustPath, encoding: .utf8), master: nil).get())
        XCTAssertNoThrow(try trust.verifyReceipt(text: file.text, signature: file.signature).get())
        // Each byte of the text changed, re-encoded as a well-formed file: only the signature can refuse it.
        let text = Array(file.text.utf8)
        for i in text.indices {
            var bytes = text
            bytes[i] = bytes[i] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
            let changed = String(decoding: bytes, as: UTF8.self)
            guard case .failure(let rejection) = trust.verifyReceipt(text: changed, signature: file.signature) else {
                return XCTFail("text byte \(i) changed still verifies")
            }
            XCTAssertTrue(rejection.reason.contains("does not verify"), "byte \(i): \(rejection.reason)")
            // And as an exported file.
            try writeBytes(ReceiptFile(text: changed, signature: file.signature).encoded, to: dir + "/out/text-edit")
            assertNotVerified(try DeletionReceipt.verify(receiptFile: dir + "/out/text-edit", trustFile: trustPath, masterKeyId: nil),
                              "does not verify", "text byte \(i)")
        }
        // Each byte of the signature (signer id and r‖s).
        for i in 0..<VaultSignature.length {
            var bytes = file.signature.encoded
            bytes[i] ^= 0x80
            let signature = try XCTUnwrap(VaultSignature(bytes))
            guard case .failure = trust.verifyReceipt(text: file.text, signature: signature) else {
                return XCTFail("signature byte \(i) changed still verifies")
            }
        }
    }

    // MARK: - Whose receipt

    func testAReceiptCheckedAgainstAnotherVaultsTrustRecordFails() throws {
        do { _ = try open().delete(user: UserID("ua")!, requestId: "DSR-1", received: nil, now: at(1)) }
        let (receiptPath, _) = try export("DSR-1")
        try FileManager.default.createDirectory(atPath: dir + "/other-secrets", withIntermediateDirectories: false)
        _ = try Vault.create(root: dir + "/other", restoreKeyPath: dir + "/other-secrets/restore.key", policy: RetentionPolicy(), drill: true, now: day0)
        assertNotVerified(try DeletionReceipt.verify(receiptFile: receiptPath, trustFile: dir + "/other/trust", masterKeyId: nil),
                          "not by vault", "another vault's trust record")
        // Pinning this vault's master key refuses the other record before the receipt is even read.
        assertNotVerified(try DeletionReceipt.verify(receiptFile: receiptPath, trustFile: dir + "/other/trust", masterKeyId: try masterKeyId()),
                          "not the pinned", "pinned master key")
    }

    func testAForgerWithItsOwnSelfSignedTrustRecordIsCaughtOnlyByThePin() throws {
        do { _ = try open().delete(user: UserID("ua")!, requestId: "DSR-1", received: nil, now: at(1)) }
        let (receiptPath, trustPath) = try export("DSR-1")
        let genuine = try DeletionReceipt.verify(receiptFile: receiptPath, trustFile: trustPath, masterKeyId: nil).receipt
        // The forger makes its own master key and credential, a trust record claiming this vault's id, and a receipt
        // for a request that never completed.
        let config = try readOnly().config
        let forger = try P256PrivateKey.generate()
        try FileManager.default.createDirectory(atPath: dir + "/forged", withIntermediateDirectories: false)
        let record = try Vault.issueTrust(root: dir + "/forged", config: config, restoreKey: forger, jobKeyPath: dir + "/forged/job.key",
                                          previous: nil, now: day0)
        let credential = try JobCredential.read(dir + "/forged/job.key", vaultId: config.vaultId, masterKeyId: record.masterKeyId)
        var fake = genuine
        fake.requestId = "DSR-NEVER"
        fake.masterKeyId = record.masterKeyId
        let signature = try VaultSigner(credential.key).sign(.receipt, Array(fake.text.utf8))
        try writeBytes(ReceiptFile(text: fake.text, signature: signature).encoded, to: dir + "/forged/receipt")
        // Self-consistent: a self-signed record proves nothing about who made it…
        XCTAssertNoThrow(try DeletionReceipt.verify(receiptFile: dir + "/forged/receipt", trustFile: dir + "/forged/trust", masterKeyId: nil))
        // …which is why the master key id is published and pinned.
        assertNotVerified(try DeletionReceipt.verify(receiptFile: dir + "/forged/receipt", trustFile: dir + "/forged/trust",
                                                     masterKeyId: try masterKeyId()), "not the pinned", "forged record, pinned")
        // Against the genuine record the forged receipt fails.
        assertNotVerified(try DeletionReceipt.verify(receiptFile: dir + "/forged/receipt", trustFile: trustPath, masterKeyId: nil),
                          "neither the master key nor a job credential", "forged receipt, genuine record")
        // A modified trust record fails its own signature.
        var trustText = try String(contentsOfFile: trustPath, encoding: .utf8)
        XCTAssertTrue(trustText.contains("\\\"serial\\\":1"), trustText)
        trustText = trustText.replacingOccurrences(of: "\\\"serial\\\":1", with: "\\\"serial\\\":2")
        try writeBytes(Array(trustText.utf8), to: dir + "/out/trust-edited")
        assertNotVerified(try DeletionReceipt.verify(receiptFile: receiptPath, trustFile: dir + "/out/trust-edited", masterKeyId: nil),
                          "signature does not verify", "edited trust record")
    }

    func testAReceiptSignedByACredentialAfterItsRevocationFails() throws {
        do { _ = try open().delete(user: UserID("ua")!, requestId: "DSR-1", received: nil, now: at(1)) }
        let (receipt, old) = try {
            let vault = try readOnly()
            let record = try vault.receipt(requestId: "DSR-1").record
            let path = try XCTUnwrap(vault.config.jobKeyPath)
            return (record, try JobCredential.read(path, vaultId: vault.config.vaultId, masterKeyId: try masterKeyId()))
        }()
        do {
            let vault = try Vault(root: vaultPath, trustAdministration: true)
            _ = try vault.issueJobCredential(restoreKey: key(vault), jobKeyPath: dir + "/secrets/job-2.key", rotate: true, now: at(3))
        }
        let trust = try XCTUnwrap(try readOnly().trust)
        // Signed while it was active: still valid after the rotation.
        XCTAssertNoThrow(try readOnly().verify(receipt))
        // The old credential signing a receipt issued after its revocation is refused.
        var late = try XCTUnwrap(DeletionReceipt(text: receipt.text))
        late.issued = Timestamp.format(at(4))
        late.completed = late.issued
        let signature = try VaultSigner(old.key).sign(.receipt, Array(late.text.utf8))
        guard case .failure(let rejection) = trust.verifyReceipt(text: late.text, signature: signature) else {
            return XCTFail("a receipt signed after the signer's revocation verifies")
        }
        XCTAssertTrue(rejection.reason.contains("revoked"), rejection.reason)
    }

    // MARK: - When receipts are issued

    func testABlockedDeletionGetsItsReceiptOnlyWhenTheHoldIsReleasedAndTheDeletionCompletes() throws {
        do {
            let vault = try open()
            _ = try vault.placeHold(user: UserID("ua")!, caseId: "C1", reason: "claim", restoreKey: key(vault), now: at(1))
            XCTAssertEqual(try vault.delete(user: UserID("ua")!, requestId: "DSR-1", received: at(2), now: at(2)).outcome, .blocked)
            XCTAssertEqual(try vault.receipts(), [])
            XCTAssertThrowsError(try vault.receipt(requestId: "DSR-1")) { error in
                guard case VaultError.notFound(_, let what) = error else { return XCTFail("\(error)") }
                XCTAssertTrue(what.contains("waits for legal hold C1"), what)
            }
            // Other jobs change nothing about it while the hold lasts.
            _ = try vault.sweep(now: at(5))
            XCTAssertEqual(try vault.receipts(), [])
        }
        let userKeyId = try XCTUnwrap(try readOnly().keystore.key(role: .user, subject: "ua")).keyId
        do {
            let vault = try open()
            let release = try vault.releaseHold(user: UserID("ua")!, caseId: "C1", restoreKey: key(vault), now: at(20))
            XCTAssertEqual(release.executedDeletions, ["DSR-1"])
        }
        let r = try readOnly().receipt(requestId: "DSR-1").verification.receipt
        XCTAssertEqual(r.received, Timestamp.format(at(2)))
        XCTAssertEqual(r.completed, Timestamp.format(at(20)))
        XCTAssertFalse(r.onTime, "completed on day 20, past its deadline: the receipt says so")
        XCTAssertEqual(r.destroyedKeys, [Hex.encode(userKeyId)])
        XCTAssertEqual(try readOnly().check(now: at(20), readData: false, restoreKey: nil).violations, [])
    }

    func testAnInterruptedDeletionGetsItsReceiptFromConvergence() throws {
        // Stopped before its catalog transaction (after the key's destruction, or in the middle of it): no receipt
        // yet; the next job completes the request and issues it, naming the key the interrupted run destroyed.
        for point in ["destroy:rotated", "destroy:resealed", "shred:key"] {
            try setUpWithError()
            let userKeyId = try XCTUnwrap(try readOnly().keystore.key(role: .user, subject: "ua")).keyId
            do {
                let vault = try open()
                vault.simulatedCrashPoint = point
                XCTAssertThrowsError(try vault.delete(user: UserID("ua")!, requestId: "DSR-1", received: nil, now: at(1)), point)
            }
            XCTAssertEqual(try readOnly().receipts(), [], point)
            let kinds = try readOnly().check(now: at(1), readData: false, restoreKey: nil).violations.map(\.kind)
            XCTAssertTrue(kinds.contains("unfinished-deletion"), "\(point): \(kinds)")
            XCTAssertFalse(kinds.contains("missing-receipt"), "\(point): not done, so no receipt is missing yet")
            let sweep = try open().sweep(now: at(2))
            XCTAssertEqual(sweep.converged?.completedDeletions, ["DSR-1"], point)
            let vault = try readOnly()
            let r = try vault.receipt(requestId: "DSR-1").verification.receipt
            XCTAssertEqual(r.completed, Timestamp.format(at(2)), point)
            XCTAssertEqual(r.destroyedKeys, [Hex.encode(userKeyId)], point)
            XCTAssertEqual(r.rootGeneration, try vault.destructionRoot?.generations().first, point)
            XCTAssertEqual(try vault.keyring.mirroredReceipts().map(\.requestId), ["DSR-1"], point)
            XCTAssertEqual(try vault.check(now: at(2), readData: false, restoreKey: nil).violations, [], point)
        }
    }

    func testAReceiptCommittedButNotYetMirroredReachesTheKeyringAtTheNextJob() throws {
        for point in ["shred:receipt", "receipt:mirrored"] {
            try setUpWithError()
            do {
                let vault = try open()
                vault.simulatedCrashPoint = point
                XCTAssertThrowsError(try vault.delete(user: UserID("ua")!, requestId: "DSR-1", received: nil, now: at(1)), point)
            }
            // The receipt is committed with the completion; only its mirroring is left.
            XCTAssertNoThrow(try readOnly().receipt(requestId: "DSR-1"), point)
            let kinds = try readOnly().check(now: at(1), readData: false, restoreKey: nil).violations.map(\.kind)
            XCTAssertEqual(kinds, point == "shred:receipt" ? ["unmirrored-receipt"] : [], point)
            let text = try readOnly().receipts().map(\.text)
            _ = try open().sweep(now: at(2))
            XCTAssertEqual(try readOnly().keyring.mirroredReceipts().map(\.text), text, point)
            XCTAssertEqual(try readOnly().receipts().map(\.mirrored), [true], point)
            XCTAssertEqual(try readOnly().check(now: at(2), readData: false, restoreKey: nil).violations, [], point)
        }
    }

    func testAVaultThatCompletedRequestsBeforeItCouldSignIssuesTheirReceiptsLate() throws {
        // A vault made before trust records (as TrustTests makes one): no trust file, no credential.
        do {
            var config = try readOnly().config
            config.jobKeyPath = nil
            try Vault.writeConfig(config, root: vaultPath)
            _ = unlink(vaultPath + "/trust")
        }
        let userKeyId = try XCTUnwrap(try readOnly().keystore.key(role: .user, subject: "ua")).keyId
        do {
            let vault = try open()
            XCTAssertFalse(try vault.delete(user: UserID("ua")!, requestId: "DSR-1", received: nil, now: at(1)).receipt)
            XCTAssertEqual(try vault.receipts(), [])
            XCTAssertThrowsError(try vault.receipt(requestId: "DSR-1")) { XCTAssertTrue("\($0)".contains("trust init"), "\($0)") }
        }
        do {
            let vault = try Vault(root: vaultPath, trustAdministration: true)
            _ = try vault.issueJobCredential(restoreKey: key(vault), jobKeyPath: dir + "/secrets/job.key", rotate: false, now: at(3))
        }
        XCTAssertEqual(try readOnly().check(now: at(3), readData: false, restoreKey: nil).violations.map(\.kind), ["missing-receipt"])
        let sweep = try open().sweep(now: at(4))
        XCTAssertEqual(sweep.converged?.lateReceipts, ["DSR-1"])
        let vault = try readOnly()
        let r = try vault.receipt(requestId: "DSR-1").verification.receipt
        XCTAssertEqual(r.completed, Timestamp.format(at(1)))
        XCTAssertEqual(r.issued, Timestamp.format(at(4)), "issued late, and says so")
        XCTAssertEqual(r.destroyedKeys, [Hex.encode(userKeyId)])
        let head = try vault.catalog.read { db in try XCTUnwrap(try Row.fetchOne(db, sql: "SELECT * FROM audit WHERE seq = ?", arguments: [r.auditHead.seq])) }
        XCTAssertEqual(head["action"] as String, "deletion-receipt")
        XCTAssertEqual(Hex.encode(head["hash"] as Data), r.auditHead.hash)
        XCTAssertEqual(try vault.check(now: at(4), readData: false, restoreKey: nil).violations, [])
    }

    // MARK: - Receipts outlive the catalog

    func testReceiptsSurviveReindexAfterTheCatalogIsLost() throws {
        do {
            let vault = try open()
            _ = try vault.delete(user: UserID("ua")!, requestId: "DSR-1", received: at(1), now: at(2))
            _ = try vault.delete(user: UserID("ua")!, requestId: "DSR-2", received: at(3), now: at(3))
        }
        let before = try readOnly().receipts()
        XCTAssertEqual(before.map(\.requestId), ["DSR-1", "DSR-2"])
        for suffix in ["", "-wal", "-shm"] { _ = unlink(vaultPath + "/catalog.db" + suffix) }
        do {
            let vault = try Vault(root: vaultPath, createMissingCatalog: true)
            let report = try vault.reindex(now: at(10))
            XCTAssertEqual(report.recoveredReceipts, 2)
        }
        let vault = try readOnly()
        XCTAssertEqual(try vault.receipts(), before, "the same signed texts, byte for byte")
        for r in before { XCTAssertNoThrow(try vault.receipt(requestId: r.requestId)) }
        // The requests are done as of the receipts' completion, not the reindex.
        let completed = try vault.catalog.read { db in try DeletionRequestRecord.fetchOne(db, key: "DSR-1")?.completedAt }
        XCTAssertEqual(completed, at(2))
        XCTAssertEqual(try vault.check(now: at(10), readData: false, restoreKey: nil).violations, [])
    }

    func testReceiptsIssuedAfterABackupSurviveRecover() throws {
        do { _ = try open().backup(to: dir + "/backup", now: at(0)) }
        do { _ = try open().delete(user: UserID("ua")!, requestId: "DSR-1", received: nil, now: at(1)) }
        let before = try readOnly().receipts()
        try Posix.removeTree(vaultPath)
        let report = try Vault.recover(from: dir + "/backup", to: vaultPath, restoreKeyPath: restoreKeyPath, keyringPath: nil, now: at(2))
        XCTAssertEqual(report.restoredReceipts, 1)
        XCTAssertEqual(report.check?.violations ?? [], [])
        XCTAssertEqual(try readOnly().receipts(), before)
    }

    func testAReceiptChangedInTheCatalogIsReported() throws {
        do { _ = try open().delete(user: UserID("ua")!, requestId: "DSR-1", received: nil, now: at(1)) }
        do {
            let vault = try open()
            try vault.catalog.write { db in
                try db.execute(sql: "UPDATE receipts SET text = replace(text, '\"onTime\":true', '\"onTime\":false')")
                XCTAssertEqual(db.changesCount, 1)
            }
        }
        assertNotVerified(try readOnly().receipt(requestId: "DSR-1"), "does not verify", "changed in the catalog")
        XCTAssertEqual(try readOnly().check(now: at(1), readData: false, restoreKey: nil).violations.map(\.kind), ["bad-receipt"])
        XCTAssertThrowsError(try readOnly().exportReceipt(requestId: "DSR-1", to: dir + "/never.receipt"))
        XCTAssertFalse(Posix.exists(dir + "/never.receipt"))
    }
}
