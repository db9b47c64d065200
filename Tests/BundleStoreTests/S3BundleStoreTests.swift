import Foundation
import VaultCrypto
import VaultS3
import XCTest

@testable import ShredVault

#if canImport(Glibc)
import Glibc
#endif

/// A vault whose bundles are objects in an S3 bucket (vault-format.md §6.5), against the real local object store
/// (`tools/object-store`, started once for the class and stopped by PID). Each test makes its own bucket and vault.
final class S3BundleStoreTests: XCTestCase {
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
    private let prefix = "vault1"
    private var vaultPath: String { dir + "/vault" }
    private var restoreKeyPath: String { dir + "/restore.key" }
    private let day0 = Timestamp.parse("2026-11-29T00:15:00Z")!
    private func at(_ days: Int64) -> Int64 { day0 + days * 86_400 }

    /// The fixture, in the test body (a throwing setUp would count as a skip): the store's variables in this
    /// process's environment (where the vault reads them), a fresh bucket, a source with a small and a multipart user.
    private func prepare(createVault: Bool = true) throws {
        objectStore = try Self.shared.get()
        for (name, value) in objectStore.environment { setenv(name, value, 1) }
        client = try S3Client(environment: objectStore.environment)
        bucket = "sv-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        try client.createBucket(bucket)
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("s3vault-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { [dir] in try? FileManager.default.removeItem(atPath: dir) }
        try write(dir + "/src/accounts.csv", Array("user_id,plan,last_active\nua,pro,2025-01-01\nub,free,2025-06-01\nuc,free,2026-11-01\n".utf8))
        try write(dir + "/src/users/ua/profile.json", Array("{\"a\":1}".utf8))
        try write(dir + "/src/users/ua/calls/c1/recording.wav", noise(70_000, seed: 5))
        // Incompressible and larger than one 8 MiB part: uploaded in parts.
        try write(dir + "/src/users/ub/big.bin", noise(19 * 1024 * 1024 + 123, seed: 6))
        try write(dir + "/src/users/uc/active.txt", [1, 2, 3])
        try FileManager.default.copyItem(atPath: dir + "/src", toPath: dir + "/pristine")
        if createVault {
            _ = try Vault.create(root: vaultPath, restoreKeyPath: restoreKeyPath, policy: RetentionPolicy(), drill: true,
                                 bundleStore: "s3://\(bucket)/\(prefix)", now: day0)
        }
    }

    private func keys() throws -> [String] { try client.listObjects(bucket: bucket).map(\.key).sorted() }

    func testArchiveUploadsVerifiesAndRestoresRoundTrip() throws {
        try prepare()
        let config = try String(contentsOfFile: vaultPath + "/config", encoding: .utf8)
        XCTAssertTrue(config.contains("s3:\\/\\/\(bucket)\\/\(prefix)") || config.contains("s3://\(bucket)/\(prefix)"), config)
        XCTAssertFalse(config.contains(objectStore.environment["AWS_SECRET_ACCESS_KEY"]!), "no secret in the config")
        XCTAssertFalse(config.contains("127.0.0.1"), "no endpoint in the config")

        let report = try Vault(root: vaultPath).archive(ArchiveOptions(source: dir + "/src"), now: day0)
        XCTAssertEqual(report.archived.map(\.user), ["ua", "ub"])
        XCTAssertEqual(report.removedSources, 2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/src/users/ua"))
        let ids = report.archived.map(\.bundleId)
        XCTAssertEqual(try keys(), ids.flatMap { ["\(prefix)/2027/02/26/\($0).dek", "\(prefix)/2027/02/26/\($0).svb"] }.sorted())
        XCTAssertFalse(FileManager.default.fileExists(atPath: vaultPath + "/bundles"), "no bundle tree in the vault directory")
        XCTAssertEqual(try leftovers(), [], "staging copies removed after the commit")
        XCTAssertEqual(try client.listMultipartUploads(bucket: bucket), [])

        do {
            let vault = try Vault(root: vaultPath)
            let key = try vault.restoreKey(path: restoreKeyPath)
            let check = try vault.check(now: at(1), readData: true, restoreKey: key)
            XCTAssertTrue(check.ok, "\(check.violations)")
            XCTAssertEqual(check.checkedBundles, 2)
            _ = try vault.placeHold(user: UserID("ua")!, caseId: "C1", reason: "litigation", restoreKey: key, now: at(2))
            _ = try vault.placeHold(user: UserID("ub")!, caseId: "C1", reason: "litigation", restoreKey: key, now: at(2))
            for user in ["ua", "ub"] {
                _ = try vault.restore(user: UserID(user)!, caseId: "C1", to: dir + "/r-" + user, restoreKey: key, now: at(3))
                XCTAssertEqual(try tree(dir + "/r-" + user), try tree(dir + "/pristine/users/" + user), user)
            }
            // The hold rewrote the sidecar objects: a check compares them with the catalog.
            let after = try vault.check(now: at(3), readData: false, restoreKey: nil)
            XCTAssertTrue(after.ok, "\(after.violations)")
            XCTAssertEqual(try leftovers(), [], "read copies removed")
        }
        // reindex rebuilds a lost catalog from the store's listing.
        try FileManager.default.removeItem(atPath: vaultPath + "/catalog.db")
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: vaultPath + "/catalog.db" + suffix) }
        do {
            let vault = try Vault(root: vaultPath, createMissingCatalog: true)
            let reindexed = try vault.reindex(now: at(4))
            XCTAssertEqual(reindexed.skipped, [])
            XCTAssertEqual(try vault.catalog.read { db in try String.fetchAll(db, sql: "SELECT id FROM bundles ORDER BY id") }, ids.sorted())
        }
    }

    /// G4's read-back at the store level, on an object read as several ranges: an object whose bytes hash to the
    /// SHA-256 written is accepted, one that does not is refused; a fetch writes the ranges back at their offsets.
    func testReadBackAndFetchOfAMultiRangeObject() throws {
        try prepare(createVault: false)
        let store = S3BundleStore(try BundleStoreURL(parsing: "s3://\(bucket)/\(prefix)"), environment: objectStore.environment)
        let bytes = noise(9 * 1024 * 1024 + 77, seed: 11)  // multipart upload, three read-back ranges and more
        try write(dir + "/file.bin", bytes)
        let right = try SHA256.hash(bytes)
        try store.put(location: "bundles/2027/01/01/a.svb", from: dir + "/file.bin", sha256: right)
        var wrong = right
        wrong[31] ^= 1
        XCTAssertThrowsError(try store.put(location: "bundles/2027/01/01/b.svb", from: dir + "/file.bin", sha256: wrong)) {
            // A store that returns other bytes than it was given is a store failure (exit 14), never accepted.
            guard let error = $0 as? VaultError, case .objectStore(let message) = error, message.contains("differs") else {
                return XCTFail("\($0)")
            }
        }
        XCTAssertTrue(try store.get(location: "bundles/2027/01/01/a.svb", to: dir + "/copy.bin"))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/copy.bin")), Data(bytes))
        XCTAssertFalse(try store.get(location: "bundles/2027/01/01/missing.svb", to: dir + "/copy2.bin"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/copy2.bin"), "a missing object leaves no copy")
    }

    func testSweepAndDeleteRemoveTheObjects() throws {
        try prepare()
        let report = try Vault(root: vaultPath).archive(ArchiveOptions(source: dir + "/src"), now: day0)
        let ua = report.archived.first { $0.user == "ua" }!.bundleId
        let ub = report.archived.first { $0.user == "ub" }!.bundleId
        do {
            let vault = try Vault(root: vaultPath)
            let deletion = try vault.delete(user: UserID("ua")!, requestId: "REQ-1", received: nil, now: at(1))
            XCTAssertEqual(deletion.removedBundles, 1)
        }
        XCTAssertEqual(try keys(), ["\(prefix)/2027/02/26/\(ub).dek", "\(prefix)/2027/02/26/\(ub).svb"], "ua's objects deleted, not \(ua)'s")
        do {
            let sweep = try Vault(root: vaultPath).sweep(now: at(90))
            XCTAssertEqual(sweep.expiredBundles, 1)
        }
        XCTAssertEqual(try keys(), [], "the expired bundle's objects deleted")
        let check = try Vault(root: vaultPath, readOnly: true).check(now: at(90), readData: false, restoreKey: nil)
        XCTAssertTrue(check.ok, "\(check.violations)")
    }

    func testCheckReportsMissingModifiedAndUnknownObjectsAndIncompleteUploads() throws {
        try prepare()
        let report = try Vault(root: vaultPath).archive(ArchiveOptions(source: dir + "/src"), now: day0)
        let ua = report.archived.first { $0.user == "ua" }!.bundleId
        let ub = report.archived.first { $0.user == "ub" }!.bundleId
        // ua's object replaced by bytes of the same length with one bit flipped; ub's object gone.
        var bytes = try client.getObjectBytes(bucket: bucket, key: "\(prefix)/2027/02/26/\(ua).svb")
        bytes[bytes.count - 100] ^= 1
        try client.putObject(bucket: bucket, key: "\(prefix)/2027/02/26/\(ua).svb", body: bytes)
        try client.deleteObject(bucket: bucket, key: "\(prefix)/2027/02/26/\(ub).svb")
        try client.putObject(bucket: bucket, key: "\(prefix)/2027/01/01/stray.svb", body: [1, 2, 3])
        let upload = try client.createMultipartUpload(bucket: bucket, key: "\(prefix)/2027/01/02/left.svb")
        _ = upload

        let check = try Vault(root: vaultPath, readOnly: true).check(now: at(1), readData: false, restoreKey: nil)
        let kinds = Set(check.violations.map { "\($0.kind) \($0.subject)" })
        XCTAssertTrue(kinds.contains("bundle-mismatch bundle \(ua) of ua"), "\(kinds)")
        XCTAssertTrue(kinds.contains("bundle-missing bundle \(ub) of ub"), "\(kinds)")
        XCTAssertTrue(kinds.contains("orphan-object s3://\(bucket)/\(prefix)/2027/01/01/stray.svb"), "\(kinds)")
        XCTAssertTrue(kinds.contains("incomplete-upload multipart upload of object key \(prefix)/2027/01/02/left.svb"), "\(kinds)")
        XCTAssertFalse(check.ok)
        XCTAssertEqual(try leftovers(), [], "check removes its read copies")

        // Any job that changes the vault aborts the upload; the unknown object is reported, never deleted (reindex may want it).
        _ = try Vault(root: vaultPath).sweep(now: at(1))
        XCTAssertEqual(try client.listMultipartUploads(bucket: bucket), [])
        XCTAssertTrue(try keys().contains("\(prefix)/2027/01/01/stray.svb"))
    }

    /// G4 and convergence: a run stopped after its uploads but before its commit leaves 'writing' rows and objects;
    /// the sources are all still there, and the next run removes those objects and archives again.
    func testInterruptedArchiveConverges() throws {
        try prepare()
        do {
            let vault = try Vault(root: vaultPath)
            vault.simulatedCrashPoint = "archive:uploaded"
            XCTAssertThrowsError(try vault.archive(ArchiveOptions(source: dir + "/src"), now: day0))
        }
        let stranded = try keys()
        XCTAssertEqual(stranded.count, 4, "both bundles and sidecars were uploaded before the stop")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/src/users/ua/profile.json"), "G4: sources stay until the commit")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/src/users/ub/big.bin"))
        do {
            let check = try Vault(root: vaultPath, readOnly: true).check(now: day0, readData: false, restoreKey: nil)
            XCTAssertTrue(check.violations.isEmpty || check.violations.allSatisfy { $0.kind != "bundle-missing" }, "\(check.violations)")
        }

        let report = try Vault(root: vaultPath).archive(ArchiveOptions(source: dir + "/src"), now: day0)
        XCTAssertEqual(report.archived.map(\.user), ["ua", "ub"])
        let ids = report.archived.map(\.bundleId)
        XCTAssertEqual(try keys(), ids.flatMap { ["\(prefix)/2027/02/26/\($0).dek", "\(prefix)/2027/02/26/\($0).svb"] }.sorted(),
                       "the interrupted run's objects are gone, the new ones are there")
        XCTAssertEqual(try client.listMultipartUploads(bucket: bucket), [])
        XCTAssertEqual(try leftovers(), [])
        let vault = try Vault(root: vaultPath, readOnly: true)
        let check = try vault.check(now: day0, readData: true, restoreKey: try vault.restoreKey(path: restoreKeyPath))
        XCTAssertTrue(check.ok, "\(check.violations)")
    }

    /// `init --bundle-store`: a missing bucket, wrong credentials and an unreachable endpoint each give one line and
    /// exit 14 before anything is created (no vault directory, no restore key, no keyring).
    func testInitRefusesAStoreThatDoesNotAnswerAndCreatesNothing() throws {
        try prepare(createVault: false)
        let secret = objectStore.environment["AWS_SECRET_ACCESS_KEY"]!
        let cases: [(String, [String: String], String)] = [
            ("s3://sv-no-such-bucket-\(UUID().uuidString.prefix(8).lowercased())/p", [:], "does not exist"),
            ("s3://\(bucket)/p", ["AWS_SECRET_ACCESS_KEY": "wrong" + secret], "rejected the credentials"),
            ("s3://\(bucket)/p", ["AWS_ENDPOINT_URL": "http://127.0.0.1:9"], "Cannot reach"),
        ]
        for (i, (url, overrides, expected)) in cases.enumerated() {
            var environment = objectStore.environment
            for (k, v) in overrides { environment[k] = v }
            let vault = dir + "/v\(i)", key = dir + "/k\(i).key"
            let r = try runCLI(["init", "--vault", vault, "--master-key-file", key, "--drill", "--now", "2026-11-29", "--bundle-store", url],
                               environment: environment)
            XCTAssertEqual(r.status, 14, "\(url): \(r.stderr)")
            let lines = r.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(expected), r.stderr)
            XCTAssertFalse(r.stderr.contains(secret), "no secret in the error")
            XCTAssertFalse(FileManager.default.fileExists(atPath: vault), "nothing created")
            XCTAssertFalse(FileManager.default.fileExists(atPath: key), "no restore key created")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("shredvault-") }, [], "no keyring or root")
        // The same command with a good store works, and records only the URL.
        let ok = try runCLI(["init", "--vault", dir + "/good", "--master-key-file", dir + "/good.key", "--drill", "--now", "2026-11-29",
                             "--bundle-store", "s3://\(bucket)/p/"], environment: objectStore.environment)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        let config = try String(contentsOfFile: dir + "/good/config", encoding: .utf8).replacingOccurrences(of: "\\/", with: "/")
        XCTAssertTrue(config.contains("\"bundleStore\":\"s3://\(bucket)/p\"") || config.contains("\"bundleStore\" : \"s3://\(bucket)/p\""), config)
    }

    // MARK: - Helpers

    private func leftovers() throws -> [String] {
        let staging = vaultPath + "/staging"
        guard let walker = FileManager.default.enumerator(atPath: staging) else { return [] }
        return walker.compactMap { $0 as? String }.filter { !$0.isEmpty && !isDirectory(staging + "/" + $0) }
    }

    private func tree(_ root: String) throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for case let path as String in FileManager.default.enumerator(atPath: root)! where !isDirectory(root + "/" + path) {
            out[path] = Array(try Data(contentsOf: URL(fileURLWithPath: root + "/" + path)))
        }
        return out
    }

    /// Runs the built `shredvault` with only `environment` plus PATH and HOME (no AWS_* of this process).
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
