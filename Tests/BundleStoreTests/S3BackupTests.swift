import Foundation
import VaultCrypto
import VaultS3
import XCTest

@testable import ShredVault

#if canImport(Glibc)
import Glibc
#endif

/// `backup --to s3://…` and `recover --from s3://…` of a vault whose bundles are in its directory (vault-format.md
/// §5.4, issue #13 item 4), against the real local object store (`tools/object-store`, started once for the class
/// and stopped by PID). Each test makes its own bucket and vault.
final class S3BackupTests: XCTestCase {
    private static let shared = SharedStore()

    override class func setUp() {
        super.setUp()
        shared.start()
    }

    override class func tearDown() {
        if let problem = shared.stop() { XCTFail(problem) }
        super.tearDown()
    }

    private var objectStore: LocalObjectStore!
    private var client: S3Client!
    private var bucket = ""
    private var dir = ""
    private let prefix = "backups/v1"
    private var target: String { "s3://\(bucket)/\(prefix)" }
    private var vaultPath: String { dir + "/vault" }
    private var restoreKeyPath: String { dir + "/keys/restore.key" }
    private let day0 = Timestamp.parse("2026-11-29T00:15:00Z")!
    private func at(_ days: Int64) -> Int64 { day0 + days * 86_400 }

    /// The fixture, in the test body (a throwing setUp would count as a skip): the store's variables in this
    /// process's environment, a fresh bucket, a local drill vault holding a small user (ua) and one whose bundle is
    /// larger than one 8 MiB part (ub), and an active user (uc) who stays in the source.
    private func prepare(bigBytes: Int = 9 * 1024 * 1024 + 321) throws {
        objectStore = try Self.shared.get()
        for (name, value) in objectStore.environment { setenv(name, value, 1) }
        client = try S3Client(environment: objectStore.environment)
        bucket = "bk-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        try client.createBucket(bucket)
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("s3backup-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/keys", withIntermediateDirectories: true)
        addTeardownBlock { [dir] in try? FileManager.default.removeItem(atPath: dir) }
        try write(dir + "/src/accounts.csv", Array("user_id,plan,last_active\nua,pro,2025-01-01\nub,free,2025-06-01\nuc,free,2026-11-01\n".utf8))
        try write(dir + "/src/users/ua/profile.json", Array("{\"a\":1}".utf8))
        try write(dir + "/src/users/ua/calls/c1/recording.wav", noise(70_000, seed: 5))
        try write(dir + "/src/users/ub/big.bin", noise(bigBytes, seed: 6))
        try write(dir + "/src/users/uc/active.txt", [1, 2, 3])
        try FileManager.default.copyItem(atPath: dir + "/src", toPath: dir + "/pristine")
        _ = try Vault.create(root: vaultPath, restoreKeyPath: restoreKeyPath, policy: RetentionPolicy(), drill: true, now: day0)
        do {
            let vault = try Vault(root: vaultPath)
            let report = try vault.archive(ArchiveOptions(source: dir + "/src"), now: day0)
            XCTAssertEqual(report.archived.map(\.user), ["ua", "ub"])
        }
    }

    /// Object keys under the backup prefix, relative to it.
    private func objects() throws -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for o in try client.listObjects(bucket: bucket, prefix: prefix + "/") { out[String(o.key.dropFirst(prefix.count + 1))] = o.size }
        return out
    }

    private func liveBundles() throws -> [BundleRecord] {
        let vault = try Vault(root: vaultPath, readOnly: true)
        return try vault.catalog.read { db in try BundleRecord.fetchAll(db, sql: "SELECT * FROM bundles WHERE state = 'live' ORDER BY id") }
    }

    /// Restores `user` from the vault at `vaultPath` and compares the bytes with the pristine source.
    private func assertRestoresIdentically(_ user: String, day: Int64, file: StaticString = #filePath, line: UInt = #line) throws {
        let vault = try Vault(root: vaultPath)
        let key = try vault.restoreKey(path: restoreKeyPath)
        let caseId = "T-\(user)-\(day)"
        _ = try vault.placeHold(user: UserID(user)!, caseId: caseId, reason: "test", restoreKey: key, now: at(day))
        _ = try vault.restore(user: UserID(user)!, caseId: caseId, to: dir + "/restored-\(user)-\(day)", restoreKey: key, now: at(day))
        XCTAssertEqual(try tree(dir + "/restored-\(user)-\(day)"), try tree(dir + "/pristine/users/" + user), "restored bytes of \(user)", file: file, line: line)
        _ = try vault.releaseHold(user: UserID(user)!, caseId: caseId, restoreKey: key, now: at(day))
    }

    func testBackupToS3ThenRecoverGivesIdenticalBytesAndTheSecondBackupIsIncremental() throws {
        try prepare()
        let live = try liveBundles()
        XCTAssertEqual(live.count, 2)
        XCTAssertTrue(live.contains { $0.size > 8 * 1024 * 1024 }, "one bundle goes up in parts")

        let first = try Vault(root: vaultPath).backup(to: target, now: at(1))
        XCTAssertEqual(first.directory, target)
        XCTAssertEqual(first.copiedBundles, 2)
        XCTAssertEqual(first.copiedBytes, live.map(\.size).reduce(0, +))
        XCTAssertEqual(first.uploadedSidecars, 2)
        let stored = try objects()
        for b in live {
            XCTAssertEqual(stored[b.location], UInt64(b.size), "bundle object \(b.location) with the catalog's size")
            XCTAssertNotNil(stored[DEKSidecar.location(forBundle: b.location)])
        }
        for name in ["backup.json", "config", "master.pub", first.keystoreSnapshot] { XCTAssertNotNil(stored[name], name) }
        XCTAssertEqual(stored.keys.filter { $0.hasPrefix("catalog-") }.count, 1)
        XCTAssertEqual(try client.listMultipartUploads(bucket: bucket), [])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: vaultPath).filter { $0.contains(".partial-") }, [],
                       "the local snapshots are removed after their upload")

        // Incremental: nothing the backup already holds goes up again (the JSON report's counts).
        let second = try Vault(root: vaultPath).backup(to: target, now: at(1) + 60)
        XCTAssertEqual(second.copiedBundles, 0, "incremental")
        XCTAssertEqual(second.copiedBytes, 0)
        XCTAssertEqual(second.presentBundles, 2)
        XCTAssertEqual(second.uploadedSidecars, 0, "unchanged sidecars are not sent again")
        let after = try objects()
        XCTAssertEqual(after.keys.filter { $0.hasPrefix("catalog-") }.count, 1, "the older catalog object is removed")
        XCTAssertEqual(after.keys.filter { $0.hasPrefix("keystore-") }.count, 2, "keystore snapshots stay, as in a directory")

        // Disaster: the vault directory is lost; recover from the bucket alone.
        try FileManager.default.removeItem(atPath: vaultPath)
        let recovered = try Vault.recover(from: target, to: vaultPath, restoreKeyPath: restoreKeyPath, keyringPath: nil, now: at(2))
        XCTAssertEqual(recovered.from, target)
        XCTAssertEqual(recovered.restoredBundles, 2)
        XCTAssertEqual(recovered.missingBundles, [])
        XCTAssertEqual(recovered.check?.ok, true, "\(recovered.check?.violations ?? [])")
        XCTAssertEqual(try Posix.listDirectory(FileManager.default.temporaryDirectory.path).filter { $0.hasPrefix("shredvault-recover-") }, [],
                       "the private download directory is removed")
        do {
            let vault = try Vault(root: vaultPath)
            XCTAssertTrue(try vault.check(now: at(2), readData: true, restoreKey: try vault.restoreKey(path: restoreKeyPath)).ok)
        }
        try assertRestoresIdentically("ua", day: 2)
        try assertRestoresIdentically("ub", day: 2)
    }

    func testRecoverRefusesABundleThatDiffersFromTheBackedUpCatalog() throws {
        try prepare()
        _ = try Vault(root: vaultPath).backup(to: target, now: at(1))
        let ua = try liveBundles().first { $0.userId == "ua" }!
        // Same size, other bytes: only the SHA-256 check against the backed-up catalog tells.
        var bytes = try client.getObjectBytes(bucket: bucket, key: prefix + "/" + ua.location)
        bytes[bytes.count / 2] ^= 0x01
        try client.putObject(bucket: bucket, key: prefix + "/" + ua.location, body: bytes)
        try FileManager.default.removeItem(atPath: vaultPath)
        XCTAssertThrowsError(try Vault.recover(from: target, to: vaultPath, restoreKeyPath: restoreKeyPath, keyringPath: nil, now: at(2))) {
            guard case VaultError.bundleMismatch(let path, let reason) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(path.hasSuffix(ua.location), path)
            XCTAssertTrue(reason.contains("SHA-256"), reason)
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: vaultPath + "/" + Vault.recoveryMarkerName), "not declared recovered")
        XCTAssertFalse(FileManager.default.fileExists(atPath: vaultPath + "/" + ua.location), "the bad download never gets its name")
    }

    func testSweptAndDeletedBundlesVanishFromTheBackup() throws {
        try prepare()
        _ = try Vault(root: vaultPath).backup(to: target, now: at(1))
        let ua = try liveBundles().first { $0.userId == "ua" }!
        _ = try Vault(root: vaultPath).delete(user: UserID("ua")!, requestId: "REQ-1", received: nil, now: at(2))
        let report = try Vault(root: vaultPath).backup(to: target, now: at(3))
        XCTAssertEqual(report.removedBundles, 1)
        XCTAssertEqual(report.liveBundles, 1)
        let stored = try objects()
        XCTAssertNil(stored[ua.location], "the deleted user's bundle is gone from the backup")
        XCTAssertNil(stored[DEKSidecar.location(forBundle: ua.location)], "and its sidecar")
        XCTAssertEqual(stored.keys.filter { $0.hasPrefix("bundles/") && $0.hasSuffix(".svb") }.count, 1)
        // The bundles expire (archive-days): the next backup holds none.
        let expired = try Vault(root: vaultPath).backup(to: target, now: at(400))
        XCTAssertEqual(expired.liveBundles, 0)
        XCTAssertEqual(expired.removedBundles, 1)
        XCTAssertEqual(try objects().keys.filter { $0.hasPrefix("bundles/") }, [])
    }

    func testAnInterruptedBackupIsRefusedByRecoverAndCompletedByTheNextBackup() throws {
        try prepare()
        XCTAssertThrowsError(try Vault(root: vaultPath).backupToS3(target, now: at(1), progress: nil, stopAfterUploads: 1))
        let partial = try objects()
        XCTAssertNil(partial["backup.json"], "interrupted before its manifest")
        XCTAssertNotNil(partial["config"], "a first backup names its vault first")
        XCTAssertEqual(partial.keys.filter { $0.hasSuffix(".svb") }.count, 1)

        let lost = dir + "/lost-vault"
        XCTAssertThrowsError(try Vault.recover(from: target, to: lost, restoreKeyPath: restoreKeyPath, keyringPath: nil, now: at(2))) {
            guard case VaultError.backupIncomplete(let path) = $0 else { return XCTFail("\($0)") }
            XCTAssertEqual(path, target)
            XCTAssertTrue("\($0)".contains("incomplete backup"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: lost), "nothing written")

        // A run killed mid-multipart-upload leaves an upload the store keeps (invisible as an object).
        let ub = try liveBundles().first { $0.userId == "ub" }!
        _ = try client.createMultipartUpload(bucket: bucket, key: prefix + "/" + ub.location)
        XCTAssertEqual(try client.listMultipartUploads(bucket: bucket).count, 1)
        let next = try Vault(root: vaultPath).backup(to: target, now: at(1) + 60)
        XCTAssertEqual(try client.listMultipartUploads(bucket: bucket), [], "the next backup aborts the interrupted upload")
        XCTAssertEqual(next.presentBundles, 1, "the bundle the interrupted run uploaded is kept")
        XCTAssertEqual(next.copiedBundles, 1)
        XCTAssertNotNil(try objects()["backup.json"])

        // A later backup interrupted: the previous one stays whole and is what recover reads.
        _ = try Vault(root: vaultPath).delete(user: UserID("ua")!, requestId: "REQ-1", received: nil, now: at(2))
        try write(dir + "/src2/accounts.csv", Array("user_id,last_active\nud,2025-01-01\n".utf8))
        try write(dir + "/src2/users/ud/d.txt", Array("d\n".utf8))
        _ = try Vault(root: vaultPath).archive(ArchiveOptions(source: dir + "/src2"), now: at(2))
        XCTAssertThrowsError(try Vault(root: vaultPath).backupToS3(target, now: at(3), progress: nil, stopAfterUploads: 0))
        try FileManager.default.removeItem(atPath: vaultPath)
        let recovered = try Vault.recover(from: target, to: vaultPath, restoreKeyPath: restoreKeyPath, keyringPath: nil, now: at(4))
        XCTAssertEqual(recovered.restoredBundles, 2, "the complete backup's two bundles")
        XCTAssertEqual(recovered.shreddedByLedger, 1, "ua, deleted after that backup, stays deleted")
        XCTAssertEqual(recovered.check?.ok, true, "\(recovered.check?.violations ?? [])")
        try assertRestoresIdentically("ub", day: 4)
    }

    func testATargetHoldingAnythingButABackupOfThisVaultIsRefusedAndNothingIsWritten() throws {
        try prepare()
        func assertRefused(_ needle: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let before = try objects()
            let auditBefore = try Vault(root: vaultPath, readOnly: true).catalog.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM audit") }
            XCTAssertThrowsError(try Vault(root: vaultPath).backup(to: target, now: at(1)), file: file, line: line) {
                guard case VaultError.backupTargetRefused(let path, let reason) = $0 else { return XCTFail("\($0)", file: file, line: line) }
                XCTAssertEqual(path, target, file: file, line: line)
                XCTAssertTrue(reason.contains(needle), reason, file: file, line: line)
            }
            XCTAssertEqual(try objects(), before, "nothing written", file: file, line: line)
            let auditAfter = try Vault(root: vaultPath, readOnly: true).catalog.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM audit") }
            XCTAssertEqual(auditAfter, auditBefore, "nothing changed in the vault", file: file, line: line)
        }
        // Something unrelated.
        try client.putObject(bucket: bucket, key: prefix + "/notes.txt", body: Array("hello".utf8))
        try assertRefused("no backup.json or config")
        // Another vault's backup.
        try client.putObject(bucket: bucket, key: prefix + "/backup.json", body: Array("""
            {"format":"shredvault-backup/v1","vaultId":"00112233445566778899aabbccddeeff","takenAt":0,"keystoreSnapshot":"keystore-x.svks","liveBundles":0}
            """.utf8))
        try assertRefused("it holds a backup of vault 00112233445566778899aabbccddeeff")
        // This vault's manifest beside an object no backup writes.
        try client.deleteObject(bucket: bucket, key: prefix + "/backup.json")
        try client.deleteObject(bucket: bucket, key: prefix + "/notes.txt")
        _ = try Vault(root: vaultPath).backup(to: target, now: at(1))
        try client.putObject(bucket: bucket, key: prefix + "/2027/02/26/0123.svb", body: [1, 2, 3])
        try assertRefused("holds '2027/02/26/0123.svb'")
    }

    func testBadCredentialsAndAMissingBucketEndTheBackupWithExit14BeforeAnythingChanges() throws {
        try prepare()
        let journal = try Vault(root: vaultPath, readOnly: true).catalog.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM audit") }
        let good = objectStore.environment["AWS_SECRET_ACCESS_KEY"]!
        setenv("AWS_SECRET_ACCESS_KEY", "wrong-" + good, 1)
        defer { setenv("AWS_SECRET_ACCESS_KEY", good, 1) }
        // At day 400 both bundles are past their expiry: a sweep (the backup's first change) would expire them.
        XCTAssertThrowsError(try Vault(root: vaultPath).backup(to: target, now: at(400))) {
            guard case VaultError.objectStore(let message) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(message.contains("SignatureDoesNotMatch") || message.contains("credentials"), message)
        }
        setenv("AWS_SECRET_ACCESS_KEY", good, 1)
        XCTAssertThrowsError(try Vault(root: vaultPath).backup(to: "s3://no-such-bucket-\(bucket)/x", now: at(400))) {
            guard case VaultError.objectStore(let message) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(message.contains("no-such-bucket-\(bucket)"), message)
        }
        XCTAssertEqual(try objects(), [:], "nothing written")
        XCTAssertEqual(try liveBundles().count, 2, "no sweep ran")
        XCTAssertEqual(try Vault(root: vaultPath, readOnly: true).catalog.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM audit") }, journal,
                       "nothing changed in the vault (no sweep ran)")

        // Through the CLI: one line, exit 14; and the foreign target exit 73.
        var env = objectStore.environment
        env["AWS_SECRET_ACCESS_KEY"] = "wrong-" + good
        let bad = try runCLI(["backup", "--vault", vaultPath, "--now", Timestamp.format(at(1)), "--to", target], environment: env)
        XCTAssertEqual(bad.status, 14, bad.stderr)
        XCTAssertEqual(bad.stderr.split(separator: "\n").filter { $0.contains("error:") }.count, 1, bad.stderr)
        XCTAssertFalse(bad.stderr.contains(good), "no secret in the message")
        try client.putObject(bucket: bucket, key: prefix + "/notes.txt", body: Array("hello".utf8))
        let foreign = try runCLI(["backup", "--vault", vaultPath, "--now", Timestamp.format(at(1)), "--to", target], environment: objectStore.environment)
        XCTAssertEqual(foreign.status, 73, foreign.stderr)
        XCTAssertTrue(foreign.stderr.contains("refusing to back up into \(target)"), foreign.stderr)
        try client.deleteObject(bucket: bucket, key: prefix + "/notes.txt")
        // The JSON report of a backup through the CLI, then an incremental one.
        let json = try runCLI(["backup", "--vault", vaultPath, "--now", Timestamp.format(at(1)), "--to", target, "--json"], environment: objectStore.environment)
        XCTAssertEqual(json.status, 0, json.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(report?["copiedBundles"] as? Int, 2, json.stdout)
        let again = try runCLI(["backup", "--vault", vaultPath, "--now", Timestamp.format(at(1) + 5), "--to", target, "--json"], environment: objectStore.environment)
        let second = try JSONSerialization.jsonObject(with: Data(again.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(second?["copiedBundles"] as? Int, 0, again.stdout + again.stderr)
        XCTAssertEqual(second?["copiedBytes"] as? Int, 0, again.stdout)
    }

    /// `recover --from s3://… --drill` through the binary, beside the live vault, with copies of the keyring and
    /// root: a drill vault whose bundles restore to the original bytes, and the live vault is never written.
    func testRecoverFromS3AsADrillBesideTheLiveVault() throws {
        try prepare()
        let now = Timestamp.format(at(1))
        let backup = try runCLI(["backup", "--vault", vaultPath, "--now", now, "--to", target, "--json"], environment: objectStore.environment)
        XCTAssertEqual(backup.status, 0, backup.stderr)
        let keys = try FileManager.default.contentsOfDirectory(atPath: dir + "/keys")
        let keyring = try XCTUnwrap(keys.first { $0.hasPrefix("shredvault-keyring-") && $0.hasSuffix(".db") })
        let root = try XCTUnwrap(keys.first { $0.hasPrefix("shredvault-root-") })
        try FileManager.default.createDirectory(atPath: dir + "/copies", withIntermediateDirectories: false)
        try FileManager.default.copyItem(atPath: dir + "/keys/" + keyring, toPath: dir + "/copies/keyring.db")
        try FileManager.default.copyItem(atPath: dir + "/keys/" + root, toPath: dir + "/copies/root")
        let live = try tree(vaultPath)
        let drillPath = dir + "/drill"
        // What a killed recover left in its $TMPDIR (unlocked, with the downloads): the next recover removes it, and
        // leaves nothing of its own.
        let tmp = dir + "/tmp", abandoned = tmp + "/shredvault-recover-00112233445566aa"
        try write(abandoned + "/keystore-20261130T000000Z.svks", [1, 2, 3])
        try write(tmp + "/unrelated", [4])
        var environment = objectStore.environment
        environment["TMPDIR"] = tmp
        let recover = try runCLI(["recover", "--from", target, "--vault", drillPath, "--master-key-file", restoreKeyPath, "--drill",
                                  "--keyring", dir + "/copies/keyring.db", "--root-file", dir + "/copies/root", "--now", Timestamp.format(at(2)),
                                  "--json"], environment: environment)
        XCTAssertEqual(recover.status, 0, recover.stdout + recover.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp), ["unrelated"], "the abandoned scratch directory is gone")
        let report = try JSONSerialization.jsonObject(with: Data(recover.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(report?["drill"] as? Bool, true, recover.stdout)
        XCTAssertEqual(report?["from"] as? String, target, recover.stdout)
        XCTAssertEqual(report?["restoredBundles"] as? Int, 2, recover.stdout)
        XCTAssertEqual(try tree(vaultPath), live, "the live vault was never written")
        // Without credentials: one line, exit 14, nothing made.
        let other = dir + "/other"
        let refused = try runCLI(["recover", "--from", target, "--vault", other, "--master-key-file", restoreKeyPath], environment: [:])
        XCTAssertEqual(refused.status, 14, refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: other))
        do {
            let vault = try Vault(root: drillPath)
            let key = try vault.restoreKey(path: restoreKeyPath)
            _ = try vault.placeHold(user: UserID("ub")!, caseId: "D1", reason: "drill", restoreKey: key, now: at(3))
            _ = try vault.restore(user: UserID("ub")!, caseId: "D1", to: dir + "/drill-ub", restoreKey: key, now: at(3))
        }
        XCTAssertEqual(try tree(dir + "/drill-ub"), try tree(dir + "/pristine/users/ub"), "restored bytes from the drill")
    }

    /// The objects are the layout of a backup directory: copied from the bucket to a directory (as `aws s3 sync`
    /// would), they recover with `recover --from DIR`. A manifest naming a file outside the backup is refused.
    func testABackupCopiedFromTheBucketToADirectoryRecovers() throws {
        try prepare()
        _ = try Vault(root: vaultPath).backup(to: target, now: at(1))
        let copy = dir + "/synced"
        for object in try client.listObjects(bucket: bucket, prefix: prefix + "/") {
            try write(copy + "/" + object.key.dropFirst(prefix.count + 1), try client.getObjectBytes(bucket: bucket, key: object.key))
        }
        let manifest = try String(contentsOfFile: copy + "/backup.json", encoding: .utf8)
        try write(copy + "/backup.json", Array(manifest.replacingOccurrences(of: "\"keystore-", with: "\"../keystore-").utf8))
        try FileManager.default.removeItem(atPath: vaultPath)
        XCTAssertThrowsError(try Vault.recover(from: copy, to: vaultPath, restoreKeyPath: restoreKeyPath, keyringPath: nil, now: at(2))) {
            guard case VaultError.malformedInput(_, _, let reason) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(reason.contains("which no backup writes"), reason)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: vaultPath), "nothing made")
        try write(copy + "/backup.json", Array(manifest.utf8))
        let recovered = try Vault.recover(from: copy, to: vaultPath, restoreKeyPath: restoreKeyPath, keyringPath: nil, now: at(2))
        XCTAssertEqual(recovered.restoredBundles, 2)
        XCTAssertEqual(recovered.check?.ok, true, "\(recovered.check?.violations ?? [])")
        try assertRestoresIdentically("ua", day: 2)
    }

    /// The CLI killed (SIGKILL) in the middle of a multipart upload of a first backup: `recover` refuses the prefix
    /// with one line (exit 66); the next backup aborts the orphaned upload and completes.
    func testABackupKilledMidUploadIsRefusedByRecoverAndCompletedByTheNextRun() throws {
        try prepare(bigBytes: 72 * 1024 * 1024)
        let process = Process()
        process.executableURL = LocalObjectStore.packageRoot.appendingPathComponent(".build/debug/shredvault")
        process.arguments = ["backup", "--vault", vaultPath, "--now", Timestamp.format(at(1)), "--to", target]
        var env = objectStore.environment
        env["PATH"] = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        process.environment = env
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait for the big bundle's multipart upload to be under way, then kill the job.
        var seen = false
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, process.isRunning {
            if try !client.listMultipartUploads(bucket: bucket, prefix: prefix + "/").isEmpty { seen = true; break }
            usleep(20_000)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        XCTAssertTrue(seen, "the backup was killed during its multipart upload")
        XCTAssertNil(try objects()["backup.json"])

        let lost = dir + "/lost"
        let refused = try runCLI(["recover", "--from", target, "--vault", lost, "--master-key-file", restoreKeyPath], environment: objectStore.environment)
        XCTAssertEqual(refused.status, 66, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("holds an incomplete backup"), refused.stderr)
        XCTAssertEqual(refused.stderr.split(separator: "\n").count, 1, refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: lost))

        let next = try runCLI(["backup", "--vault", vaultPath, "--now", Timestamp.format(at(1) + 60), "--to", target, "--json"],
                              environment: objectStore.environment)
        XCTAssertEqual(next.status, 0, next.stderr)
        XCTAssertEqual(try client.listMultipartUploads(bucket: bucket, prefix: prefix + "/"), [], "the orphaned upload is aborted")
        XCTAssertNotNil(try objects()["backup.json"])
        try FileManager.default.removeItem(atPath: vaultPath)
        let recovered = try Vault.recover(from: target, to: vaultPath, restoreKeyPath: restoreKeyPath, keyringPath: nil, now: at(2))
        XCTAssertEqual(recovered.restoredBundles, 2)
        XCTAssertEqual(recovered.check?.ok, true, "\(recovered.check?.violations ?? [])")
        try assertRestoresIdentically("ub", day: 2)
    }

    // MARK: - Helpers

    private func tree(_ root: String) throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        let e = FileManager.default.enumerator(atPath: root)
        while let rel = e?.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + rel, isDirectory: &isDir), !isDir.boolValue {
                out[rel] = Array(try Data(contentsOf: URL(fileURLWithPath: root + "/" + rel)))
            }
        }
        return out
    }

    /// Runs the built `shredvault` with only `environment` plus PATH (no AWS_* of this process).
    private func runCLI(_ arguments: [String], environment: [String: String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let binary = LocalObjectStore.packageRoot.appendingPathComponent(".build/debug/shredvault").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        var env = environment
        env["PATH"] = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }
}
