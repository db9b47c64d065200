import Foundation
import VaultCrypto
import VaultS3
import XCTest

@testable import ShredVault

#if canImport(Glibc)
import Glibc
#endif

/// `backup` and `recover` of a vault whose bundles are in a bucket (`init --bundle-store`, vault-format.md §5.4,
/// issue #13 item 1), against the real local object store (`tools/object-store`, started once for the class and
/// stopped by PID). Each test makes its own buckets and vault.
final class S3VaultBackupTests: XCTestCase {
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
    /// The vault's bundle store (`s3://bucket/store`).
    private var bucket = ""
    private let storePrefix = "store"
    private var dir = ""
    private var vaultPath: String { dir + "/vault" }
    private var backupDir: String { dir + "/backup" }
    private var restoreKeyPath: String { dir + "/keys/restore.key" }
    private let day0 = Timestamp.parse("2026-11-29T00:15:00Z")!
    private func at(_ days: Int64) -> Int64 { day0 + days * 86_400 }

    /// The fixture, in the test body (a throwing setUp would count as a skip): a fresh bucket, a drill vault whose
    /// bundles are objects under `store/`, holding a small user (ua) and one whose bundle is larger than one 8 MiB
    /// part (ub); uc stays in the source.
    private func prepare() throws {
        objectStore = try Self.shared.get()
        for (name, value) in objectStore.environment { setenv(name, value, 1) }
        client = try S3Client(environment: objectStore.environment)
        bucket = try newBucket()
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("s3vaultbackup-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/keys", withIntermediateDirectories: true)
        addTeardownBlock { [dir] in try? FileManager.default.removeItem(atPath: dir) }
        try write(dir + "/src/accounts.csv", Array("user_id,plan,last_active\nua,pro,2025-01-01\nub,free,2025-06-01\nuc,free,2026-11-01\n".utf8))
        try write(dir + "/src/users/ua/profile.json", Array("{\"a\":1}".utf8))
        try write(dir + "/src/users/ua/calls/c1/recording.wav", noise(70_000, seed: 5))
        try write(dir + "/src/users/ub/big.bin", noise(9 * 1024 * 1024 + 321, seed: 6))
        try write(dir + "/src/users/uc/active.txt", [1, 2, 3])
        try FileManager.default.copyItem(atPath: dir + "/src", toPath: dir + "/pristine")
        _ = try Vault.create(root: vaultPath, restoreKeyPath: restoreKeyPath, policy: RetentionPolicy(), drill: true,
                             bundleStore: "s3://\(bucket)/\(storePrefix)", now: day0)
        do {
            let vault = try Vault(root: vaultPath)
            let report = try vault.archive(ArchiveOptions(source: dir + "/src"), now: day0)
            XCTAssertEqual(report.archived.map(\.user), ["ua", "ub"])
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: vaultPath + "/bundles"), "the bundles are objects")
    }

    private func newBucket() throws -> String {
        let name = "sv-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        try client.createBucket(name)
        return name
    }

    /// The vault's objects, by location (`bundles/…`), with their sizes.
    private func storeObjects() throws -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for o in try client.listObjects(bucket: bucket, prefix: storePrefix + "/") {
            out["bundles/" + o.key.dropFirst(storePrefix.count + 1)] = o.size
        }
        return out
    }

    private func storeKey(_ location: String) -> String { storePrefix + "/" + location.dropFirst("bundles/".count) }

    private func liveBundles() throws -> [BundleRecord] {
        let vault = try Vault(root: vaultPath, readOnly: true)
        return try vault.catalog.read { db in try BundleRecord.fetchAll(db, sql: "SELECT * FROM bundles WHERE state = 'live' ORDER BY id") }
    }

    /// Files a backup left in the vault's private staging tree (none once it is done).
    private func stagedLeftovers() throws -> [String] {
        try tree(vaultPath + "/" + Vault.stagingDirectory).keys.sorted()
    }

    private func assertRestoresIdentically(_ user: String, day: Int64, file: StaticString = #filePath, line: UInt = #line) throws {
        let vault = try Vault(root: vaultPath)
        let key = try vault.restoreKey(path: restoreKeyPath)
        let caseId = "T-\(user)-\(day)"
        _ = try vault.placeHold(user: UserID(user)!, caseId: caseId, reason: "test", restoreKey: key, now: at(day))
        _ = try vault.restore(user: UserID(user)!, caseId: caseId, to: dir + "/restored-\(user)-\(day)", restoreKey: key, now: at(day))
        XCTAssertEqual(try tree(dir + "/restored-\(user)-\(day)"), try tree(dir + "/pristine/users/" + user), "restored bytes of \(user)", file: file, line: line)
        _ = try vault.releaseHold(user: UserID(user)!, caseId: caseId, restoreKey: key, now: at(day))
    }

    private func assertReadDataCheckIsClean(day: Int64, file: StaticString = #filePath, line: UInt = #line) throws {
        let vault = try Vault(root: vaultPath)
        let report = try vault.check(now: at(day), readData: true, restoreKey: try vault.restoreKey(path: restoreKeyPath))
        XCTAssertTrue(report.ok, "\(report.violations)", file: file, line: line)
    }

    /// S3 vault → backup to a directory (bundles fetched from the bucket, checked, copied) → an incremental second
    /// backup fetches nothing → vault directory and every object lost → recover from the directory uploads them again.
    func testBackupToADirectoryThenRecoverAfterLosingVaultAndBucket() throws {
        try prepare()
        let live = try liveBundles()
        XCTAssertEqual(live.count, 2)
        let first = try Vault(root: vaultPath).backup(to: backupDir, now: at(1))
        XCTAssertEqual(first.copiedBundles, 2)
        XCTAssertEqual(first.copiedBytes, live.map(\.size).reduce(0, +))
        for b in live {
            let copy = try Data(contentsOf: URL(fileURLWithPath: backupDir + "/" + b.location))
            XCTAssertEqual(copy.count, Int(b.size))
            XCTAssertEqual(try SHA256.hash(Array(copy)), Array(b.sha256!), "the backup holds the bundle's bytes")
            XCTAssertTrue(FileManager.default.fileExists(atPath: backupDir + "/" + DEKSidecar.location(forBundle: b.location)), "and its sidecar")
        }
        let config = try String(contentsOfFile: backupDir + "/config", encoding: .utf8)
        XCTAssertTrue(config.contains("s3://\(bucket)/\(storePrefix)"), "the backup's config keeps bundleStore: \(config)")
        XCTAssertEqual(try stagedLeftovers(), [], "the staging copies are removed")

        // Incremental: a bundle already in the backup is not fetched. Proof: its object now differs (same size), and a
        // backup that fetched it would refuse it.
        let ua = live.first { $0.userId == "ua" }!
        var bytes = try client.getObjectBytes(bucket: bucket, key: storeKey(ua.location))
        bytes[bytes.count / 2] ^= 0x01
        try client.putObject(bucket: bucket, key: storeKey(ua.location), body: bytes)
        let second = try Vault(root: vaultPath).backup(to: backupDir, now: at(1) + 60)
        XCTAssertEqual(second.copiedBundles, 0, "incremental")
        XCTAssertEqual(second.copiedBytes, 0)
        XCTAssertEqual(second.presentBundles, 2)
        XCTAssertEqual(try stagedLeftovers(), [])

        // Disaster: the vault directory and every object of its bucket are lost.
        try FileManager.default.removeItem(atPath: vaultPath)
        _ = try client.deleteObjects(bucket: bucket, keys: try client.listObjects(bucket: bucket).map(\.key))
        XCTAssertEqual(try storeObjects(), [:])
        let recovered = try Vault.recover(from: backupDir, to: vaultPath, restoreKeyPath: restoreKeyPath, keyringPath: nil, now: at(2))
        XCTAssertEqual(recovered.restoredBundles, 2)
        XCTAssertEqual(recovered.missingBundles, [])
        XCTAssertEqual(recovered.uploadedObjects, 4, "two bundles and their sidecars go up again")
        XCTAssertEqual(recovered.keptObjects, 0)
        XCTAssertEqual(recovered.check?.ok, true, "\(recovered.check?.violations ?? [])")
        let stored = try storeObjects()
        for b in live { XCTAssertEqual(stored[b.location], UInt64(b.size), "\(b.location) is an object again") }
        XCTAssertFalse(FileManager.default.fileExists(atPath: vaultPath + "/bundles"), "the recovered vault keeps its bundles in the bucket")
        XCTAssertEqual(try stagedLeftovers(), [])
        try assertReadDataCheckIsClean(day: 2)
        try assertRestoresIdentically("ua", day: 2)
        try assertRestoresIdentically("ub", day: 2)
    }

    /// S3 vault → backup to another bucket → vault directory lost, its bucket intact → recover keeps every object
    /// (HeadObject: the catalog's size) and uploads nothing.
    func testBackupToAnotherBucketThenRecoverKeepsTheObjects() throws {
        try prepare()
        let live = try liveBundles()
        let backupBucket = try newBucket()
        let target = "s3://\(backupBucket)/backups/v1"
        let first = try Vault(root: vaultPath).backup(to: target, now: at(1))
        XCTAssertEqual(first.copiedBundles, 2)
        XCTAssertEqual(first.uploadedSidecars, 2)
        for b in live {
            XCTAssertEqual(try client.getObjectBytes(bucket: backupBucket, key: "backups/v1/" + b.location).count, Int(b.size))
        }
        XCTAssertEqual(try stagedLeftovers(), [])
        let second = try Vault(root: vaultPath).backup(to: target, now: at(1) + 60)
        XCTAssertEqual(second.copiedBundles, 0, "incremental")
        XCTAssertEqual(second.uploadedSidecars, 0)

        let before = try storeObjects()
        try FileManager.default.removeItem(atPath: vaultPath)
        let recovered = try Vault.recover(from: target, to: vaultPath, restoreKeyPath: restoreKeyPath, keyringPath: nil, now: at(2))
        XCTAssertEqual(recovered.restoredBundles, 2)
        XCTAssertEqual(recovered.keptObjects, 4, "bundles and sidecars found in the bucket as backed up")
        XCTAssertEqual(recovered.uploadedObjects, 0, "nothing uploaded")
        XCTAssertEqual(recovered.check?.ok, true, "\(recovered.check?.violations ?? [])")
        XCTAssertEqual(try storeObjects(), before)
        XCTAssertEqual(try stagedLeftovers(), [])
        try assertReadDataCheckIsClean(day: 2)
        try assertRestoresIdentically("ub", day: 2)
    }

    /// A bundle object that differs from the catalog (same size, other bytes) is refused by a backup to a directory
    /// and to a bucket (bundleMismatch, exit 65): no manifest is written and no staging copy stays.
    func testACorruptedBundleObjectIsNotBackedUp() throws {
        try prepare()
        let ub = try liveBundles().first { $0.userId == "ub" }!
        var bytes = try client.getObjectBytes(bucket: bucket, key: storeKey(ub.location))
        bytes[bytes.count - 100] ^= 0x40
        try client.putObject(bucket: bucket, key: storeKey(ub.location), body: bytes)
        let backupBucket = try newBucket()
        for to in [backupDir, "s3://\(backupBucket)/b"] {
            XCTAssertThrowsError(try Vault(root: vaultPath).backup(to: to, now: at(1)), to) {
                guard case VaultError.bundleMismatch(let path, let reason) = $0 else { return XCTFail("\($0)") }
                XCTAssertTrue(path.hasSuffix(ub.location.dropFirst("bundles/".count)), path)
                XCTAssertTrue(reason.contains("SHA-256"), reason)
            }
            XCTAssertEqual(try stagedLeftovers(), [], "the bad copy is removed")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: backupDir + "/backup.json"), "no manifest")
        XCTAssertFalse(FileManager.default.fileExists(atPath: backupDir + "/" + ub.location), "the bad bundle is not in the backup")
        XCTAssertNil(try client.listObjects(bucket: backupBucket).first { $0.key.hasSuffix("backup.json") }, "no manifest object")
        XCTAssertNil(try client.listObjects(bucket: backupBucket).first { $0.key.hasSuffix(ub.location.dropFirst("bundles/".count)) })
    }

    /// A drill recovered from such a backup would share the production bucket: refused, before anything is written.
    func testRecoverDrillOfAnObjectStorageVaultIsRefused() throws {
        try prepare()
        _ = try Vault(root: vaultPath).backup(to: backupDir, now: at(1))
        let drillPath = dir + "/drill"
        XCTAssertThrowsError(try Vault.recover(from: backupDir, to: drillPath, restoreKeyPath: restoreKeyPath, keyringPath: dir + "/k",
                                               rootPath: dir + "/r", drill: true, now: at(2))) {
            guard case VaultError.invalidArgument(let message) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(message.contains("production bucket"), message)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: drillPath), "nothing made")
    }

    /// The CLI: a corrupted bundle object makes `backup` exit 65 with one `error:` line and no manifest; once the
    /// object is good again the backup succeeds, and `recover --json` of the lost vault reports the objects kept.
    func testCLIBackupRefusesABadObjectWithExit65AndRecoverReportsKeptObjects() throws {
        try prepare()
        let ua = try liveBundles().first { $0.userId == "ua" }!
        let good = try client.getObjectBytes(bucket: bucket, key: storeKey(ua.location))
        var bad = good
        bad[10] ^= 0x01
        try client.putObject(bucket: bucket, key: storeKey(ua.location), body: bad)
        let refused = try runCLI(["backup", "--vault", vaultPath, "--now", Timestamp.format(at(1)), "--to", backupDir], environment: objectStore.environment)
        XCTAssertEqual(refused.status, 65, refused.stderr)
        XCTAssertEqual(refused.stderr.split(separator: "\n").count, 1, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("error: ") && refused.stderr.contains("SHA-256"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: backupDir + "/backup.json"))

        try client.putObject(bucket: bucket, key: storeKey(ua.location), body: good)
        let done = try runCLI(["backup", "--vault", vaultPath, "--now", Timestamp.format(at(1) + 60), "--to", backupDir, "--json"],
                              environment: objectStore.environment)
        XCTAssertEqual(done.status, 0, done.stderr)
        try FileManager.default.removeItem(atPath: vaultPath)
        let recover = try runCLI(["recover", "--from", backupDir, "--vault", vaultPath, "--master-key-file", restoreKeyPath,
                                  "--now", Timestamp.format(at(2)), "--json"], environment: objectStore.environment)
        XCTAssertEqual(recover.status, 0, recover.stderr)
        let report = try JSONSerialization.jsonObject(with: Data(recover.stdout.utf8)) as? [String: Any]
        XCTAssertEqual(report?["keptObjects"] as? Int, 4, recover.stdout)
        XCTAssertEqual(report?["uploadedObjects"] as? Int, 0, recover.stdout)
    }

    /// A bundle missing from the bucket whose copy in the backup directory differs from the backed-up catalog is
    /// refused before it is uploaded (bundleMismatch), and the recovery is not declared done.
    func testRecoverRefusesABackupCopyThatDiffersFromTheCatalog() throws {
        try prepare()
        let ua = try liveBundles().first { $0.userId == "ua" }!
        _ = try Vault(root: vaultPath).backup(to: backupDir, now: at(1))
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: backupDir + "/" + ua.location)))
        bytes[bytes.count / 3] ^= 0x08
        try write(backupDir + "/" + ua.location, bytes)
        try FileManager.default.removeItem(atPath: vaultPath)
        _ = try client.deleteObjects(bucket: bucket, keys: [storeKey(ua.location)])
        XCTAssertThrowsError(try Vault.recover(from: backupDir, to: vaultPath, restoreKeyPath: restoreKeyPath, keyringPath: nil, now: at(2))) {
            guard case VaultError.bundleMismatch(let path, let reason) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(path.hasSuffix(ua.location), path)
            XCTAssertTrue(reason.contains("SHA-256"), reason)
        }
        XCTAssertNil(try storeObjects()[ua.location], "the bad copy is not uploaded")
        XCTAssertTrue(FileManager.default.fileExists(atPath: vaultPath + "/" + Vault.recoveryMarkerName), "not declared recovered")
    }

    // MARK: - Helpers

    /// Runs the built `shredvault` with only `environment` plus PATH.
    private func runCLI(_ arguments: [String], environment: [String: String]) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = LocalObjectStore.packageRoot.appendingPathComponent(".build/debug/shredvault")
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

}
