import Foundation
import GRDB
import VaultCrypto
import VaultS3
import XCTest

@testable import ShredVault

#if canImport(Glibc)
import Glibc
#endif

/// `archive --source s3://BUCKET/PREFIX` (vault-format.md §6.5) against the real local object store (`tools/object-store`,
/// started once for the class and stopped by PID). Each test makes its own bucket, source objects and vault.
final class S3SourceTests: XCTestCase {
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
    private var jobKeyPath = ""
    private var vaultPath: String { dir + "/vault" }
    private var restoreKeyPath: String { dir + "/restore.key" }
    private var source: String { "s3://\(bucket)/export" }
    private let day0 = Timestamp.parse("2026-11-29T00:15:00Z")!
    private func at(_ days: Int64) -> Int64 { day0 + days * 86_400 }

    /// The accounts of every test: ua and ub inactive with data, uc active with data, ud inactive without data.
    private let accounts = "user_id,plan,last_active\nua,pro,2025-01-01\nub,free,2025-06-01\nuc,free,2026-11-01\nud,free,2025-01-01\n"

    /// The fixture, in the test body (a throwing setUp would count as a skip): the store's variables in this process's
    /// environment, a fresh bucket holding `export/accounts.csv` and `export/users/…` (ub's big file uploaded in parts),
    /// the same tree as a local directory `pristine/` for comparison, and a vault (local, or with its bundles in the
    /// same bucket under `vault/`).
    private func prepare(s3Vault: Bool = false, extraAccounts: String = "") throws {
        objectStore = try Self.shared.get()
        for (name, value) in objectStore.environment { setenv(name, value, 1) }
        client = try S3Client(environment: objectStore.environment)
        bucket = "sv-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        try client.createBucket(bucket)
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("s3source-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { [dir] in try? FileManager.default.removeItem(atPath: dir) }
        let files: [(String, [UInt8])] = [
            ("ua/profile.json", Array("{\"a\":1}".utf8)),
            ("ua/calls/c1/recording.wav", noise(70_000, seed: 5)),
            ("ua/calls/c2/empty.txt", []),
            ("ub/big.bin", noise(11 * 1024 * 1024 + 77, seed: 6)),
            ("uc/active.txt", [1, 2, 3]),
        ]
        try put("export/accounts.csv", Array((accounts + extraAccounts).utf8))
        try write(dir + "/pristine/accounts.csv", Array((accounts + extraAccounts).utf8))
        for (path, bytes) in files {
            try write(dir + "/pristine/users/" + path, bytes)
            if bytes.count > 8 * 1024 * 1024 {
                let uploader = try S3MultipartUploader(client: client, bucket: bucket, key: "export/users/" + path, partSize: 5 * 1024 * 1024,
                                                       maxPartsInFlight: 2)
                try bytes.withUnsafeBytes { try uploader.write($0) }
                _ = try uploader.finish()
            } else {
                try put("export/users/" + path, bytes)
            }
        }
        // A directory marker: an empty directory of ua's tree.
        try put("export/users/ua/notes/", [])
        try FileManager.default.createDirectory(atPath: dir + "/pristine/users/ua/notes", withIntermediateDirectories: true)
        jobKeyPath = try Vault.create(root: vaultPath, restoreKeyPath: restoreKeyPath, policy: RetentionPolicy(), drill: true,
                             bundleStore: s3Vault ? "s3://\(bucket)/vault" : nil, now: day0).jobKeyPath
    }

    private func put(_ key: String, _ bytes: [UInt8]) throws { try client.putObject(bucket: bucket, key: key, body: bytes) }
    private func keys(_ prefix: String = "export/") throws -> [String] { try client.listObjects(bucket: bucket, prefix: prefix).map(\.key).sorted() }
    private func userKeys(_ user: String) throws -> [String] { try keys("export/users/\(user)/") }

    // MARK: - Round trips

    func testArchiveFromS3SourceIntoLocalVaultRestoresByteIdenticalAndDeletesTheObjects() throws {
        try prepare()
        let listed = Dictionary(uniqueKeysWithValues: try client.listObjects(bucket: bucket, prefix: "export/").map { ($0.key, $0) })
        // Downloads land in a later second than the uploads, so an mtime taken from the download would differ.
        Thread.sleep(forTimeInterval: 2.2)
        let report = try Vault(root: vaultPath).archive(ArchiveOptions(source: source), now: day0)
        XCTAssertEqual(report.archived.map(\.user), ["ua", "ub"])
        XCTAssertEqual(report.failed.map(\.user), [])
        XCTAssertEqual(report.removedSources, 2)
        XCTAssertFalse(report.isPartial)
        XCTAssertEqual(try userKeys("ua"), [], "ua's source objects deleted after the commit")
        XCTAssertEqual(try userKeys("ub"), [], "ub's source objects deleted after the commit")
        XCTAssertEqual(try keys(), ["export/accounts.csv", "export/users/uc/active.txt"], "the active user's objects and accounts.csv stay")
        XCTAssertEqual(try stagedFiles(), [], "the downloaded copies are removed")
        try assertNoSourceObjectsRecorded()
        let bundles = try Vault(root: vaultPath, readOnly: true).catalog.read { db in
            try Row.fetchAll(db, sql: "SELECT user_id, source_state FROM bundles ORDER BY user_id").map { "\($0["user_id"] as String) \($0["source_state"] as String)" }
        }
        XCTAssertEqual(bundles, ["ua removed", "ub removed"])

        try restoreAndCompare(["ua", "ub"])
        // Each file's mtime is its object's Last-Modified (as listed); directories get the latest below them.
        let recording = try FileManager.default.attributesOfItem(atPath: dir + "/r-ua/calls/c1/recording.wav")[.modificationDate] as! Date
        let expected = Timestamp.parse(listed["export/users/ua/calls/c1/recording.wav"]!.lastModified!)!
        XCTAssertEqual(Int64(recording.timeIntervalSince1970), expected)
        let calls = try FileManager.default.attributesOfItem(atPath: dir + "/r-ua/calls")[.modificationDate] as! Date
        let latest = ["ua/calls/c1/recording.wav", "ua/calls/c2/empty.txt"].map { Timestamp.parse(listed["export/users/" + $0]!.lastModified!)! }.max()!
        XCTAssertEqual(Int64(calls.timeIntervalSince1970), latest)

        let vault = try Vault(root: vaultPath, readOnly: true)
        let check = try vault.check(now: at(3), readData: true, restoreKey: try vault.restoreKey(path: restoreKeyPath))
        XCTAssertTrue(check.ok, "\(check.violations)")
    }

    func testArchiveFromS3SourceIntoS3VaultRestoresByteIdentical() throws {
        try prepare(s3Vault: true)
        let report = try Vault(root: vaultPath).archive(ArchiveOptions(source: source, jobs: 2), now: day0)
        XCTAssertEqual(report.archived.map(\.user), ["ua", "ub"])
        XCTAssertEqual(try keys(), ["export/accounts.csv", "export/users/uc/active.txt"])
        XCTAssertEqual(try keys("vault/").count, 4, "two bundles and their sidecars in the bundle store")
        XCTAssertEqual(try stagedFiles(), [])
        try restoreAndCompare(["ua", "ub"])
        let vault = try Vault(root: vaultPath, readOnly: true)
        let check = try vault.check(now: at(3), readData: true, restoreKey: try vault.restoreKey(path: restoreKeyPath))
        XCTAssertTrue(check.ok, "\(check.violations)")
    }

    func testKeepSourceKeepsTheObjects() throws {
        try prepare()
        let before = try keys()
        let report = try Vault(root: vaultPath).archive(ArchiveOptions(source: source, keepSource: true), now: day0)
        XCTAssertEqual(report.archived.map(\.user), ["ua", "ub"])
        XCTAssertEqual(report.removedSources, 0)
        XCTAssertEqual(try keys(), before, "--keep-source: every object stays")
        try assertNoSourceObjectsRecorded()
        let states = try Vault(root: vaultPath, readOnly: true).catalog.read { db in
            try String.fetchAll(db, sql: "SELECT DISTINCT source_state FROM bundles")
        }
        XCTAssertEqual(states, ["kept"])
        // A second run archives nobody twice and still deletes nothing.
        let again = try Vault(root: vaultPath).archive(ArchiveOptions(source: source), now: at(1))
        XCTAssertEqual(again.archived.map(\.user), [])
        XCTAssertEqual(Set(again.skipped.filter { $0.reason == "already archived" }.map(\.user)), ["ua", "ub"])
        XCTAssertEqual(try keys(), before)
    }

    /// The same accounts and tree as a directory and as objects select the same users: inactive with data archived,
    /// active skipped (not a candidate), inactive without data skipped.
    func testSelectionIsTheSameAsFromADirectory() throws {
        try prepare()
        let vault = try Vault(root: vaultPath)
        let fromS3 = try vault.archive(ArchiveOptions(source: source, dryRun: true), now: day0)
        let fromDirectory = try vault.archive(ArchiveOptions(source: dir + "/pristine", dryRun: true), now: day0)
        XCTAssertEqual(fromS3.wouldArchive, ["ua", "ub"])
        XCTAssertEqual(fromS3.wouldArchive, fromDirectory.wouldArchive)
        XCTAssertEqual(fromS3.candidates, 3)
        XCTAssertEqual(fromS3.candidates, fromDirectory.candidates)
        XCTAssertEqual(fromS3.skipped.map(\.user), fromDirectory.skipped.map(\.user))
        XCTAssertEqual(fromS3.skipped.map(\.user), ["ud"])
        XCTAssertEqual(fromS3.skipped.first?.reason, "no data in \(source)/users")
        // --user limits the run the same way.
        var only = ArchiveOptions(source: source, dryRun: true)
        only.users = [UserID("ub")!]
        XCTAssertEqual(try vault.archive(only, now: day0).wouldArchive, ["ub"])
    }

    // MARK: - Bad keys and changing objects

    /// Object keys that are not safe relative paths fail their user only: nothing of that user is archived or deleted,
    /// nothing is written outside the staging copy, and the other users are archived.
    func testMaliciousObjectKeysFailOnlyTheirUser() throws {
        try prepare(extraAccounts: "u1,free,2025-01-01\nu2,free,2025-01-01\nu3,free,2025-01-01\nu4,free,2025-01-01\nu5,free,2025-01-01\n")
        let bad: [(String, String)] = [
            ("u1", "export/users/u1/../x"),
            ("u2", "export/users/u2//etc/passwd"),
            ("u3", "export/users/u3/a\u{1}b"),
            ("u4", "export/users/u4/d/./e"),
            ("u5", "export/users/u5/a//b"),
        ]
        for (user, key) in bad {
            try put(key, Array("evil".utf8))
            try put("export/users/\(user)/fine.txt", Array("fine".utf8))
        }
        let before = try keys()
        let report = try Vault(root: vaultPath).archive(ArchiveOptions(source: source), now: day0)
        XCTAssertEqual(report.archived.map(\.user), ["ua", "ub"])
        XCTAssertEqual(report.failed.map(\.user), ["u1", "u2", "u3", "u4", "u5"])
        XCTAssertTrue(report.isPartial, "exit 3")
        let reasons = report.failed.map(\.reason)
        guard reasons.count == 5 else { return XCTFail("\(report.failed)") }
        XCTAssertTrue(reasons[0].contains("'.' or '..' path component"), reasons[0])
        XCTAssertTrue(reasons[1].contains("absolute path"), reasons[1])
        XCTAssertTrue(reasons[2].contains("control character"), reasons[2])
        XCTAssertTrue(reasons[3].contains("'.' or '..' path component"), reasons[3])
        XCTAssertTrue(reasons[4].contains("empty path component"), reasons[4])
        XCTAssertFalse(reasons[2].contains("\u{1}"), "the control character is escaped in the message")
        XCTAssertEqual(report.failed.first?.path, "s3://\(bucket)/export/users/u1/../x")
        for (user, _) in bad {
            XCTAssertEqual(try userKeys(user), before.filter { $0.hasPrefix("export/users/\(user)/") }, "\(user)'s objects all kept")
        }
        XCTAssertTrue(try keys().contains("export/users/u1/../x"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: vaultPath + "/staging/source/x"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: vaultPath + "/staging/x"))
        XCTAssertEqual(try stagedFiles(), [])
        let rows = try Vault(root: vaultPath, readOnly: true).catalog.read { db in
            try String.fetchAll(db, sql: "SELECT user_id FROM bundles ORDER BY user_id")
        }
        XCTAssertEqual(rows, ["ua", "ub"], "nothing of the failed users stays in the vault")
    }

    func testObjectChangedBetweenListingAndDownloadFailsThatUserOnly() throws {
        try prepare()
        let client = self.client!, bucket = self.bucket
        var options = ArchiveOptions(source: source, jobs: 1)
        options.afterSourceListing = { user in
            guard user == "ua" else { return }
            try client.putObject(bucket: bucket, key: "export/users/ua/profile.json", body: Array("{\"a\":2}".utf8))
        }
        let report = try Vault(root: vaultPath).archive(options, now: day0)
        XCTAssertEqual(report.archived.map(\.user), ["ub"])
        XCTAssertEqual(report.failed.map(\.user), ["ua"])
        XCTAssertTrue(report.failed.first?.reason.contains("changed while being archived") == true, "\(report.failed)")
        XCTAssertEqual(report.failed.first?.path, "s3://\(bucket)/export/users/ua/profile.json")
        XCTAssertEqual(try userKeys("ua").count, 4, "ua's objects kept")
        XCTAssertEqual(try userKeys("ub"), [])
        // The next run archives ua as it is now.
        let next = try Vault(root: vaultPath).archive(ArchiveOptions(source: source), now: day0)
        XCTAssertEqual(next.archived.map(\.user), ["ua"])
        XCTAssertEqual(try userKeys("ua"), [])
    }

    /// The CLI: a user with a hostile key makes the job exit 3, named on stderr (control characters escaped) and in
    /// the JSON report with the object's URL; the others are archived and their objects deleted.
    func testCLIReportsAHostileKeyAndExits3() throws {
        try prepare(extraAccounts: "u1,free,2025-01-01\n")
        try put("export/users/u1/a\u{1b}[2Jb", Array("evil".utf8))
        var environment = objectStore.environment
        environment["SHREDVAULT_JOB_KEY"] = jobKeyPath
        let r = try runCLI(["archive", "--vault", vaultPath, "--source", source + "/", "--now", "2026-11-29T00:15:00Z", "--json"],
                           environment: environment)
        XCTAssertEqual(r.status, 3, r.stderr)
        XCTAssertFalse(r.stderr.contains("\u{1b}"), "no raw escape sequence reaches the terminal")
        XCTAssertTrue(r.stderr.contains("user u1 was not archived: object key 'export/users/u1/a\\u{1b}[2Jb' cannot be archived (control character in name)"),
                      r.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let failed = json?["failed"] as? [[String: Any]]
        XCTAssertEqual(failed?.first?["path"] as? String, "s3://\(bucket)/export/users/u1/a\\u{1b}[2Jb")
        XCTAssertEqual((json?["archived"] as? [[String: Any]])?.count, 2)
        XCTAssertEqual(try userKeys("u1").count, 1, "u1's object kept")
        XCTAssertEqual(try userKeys("ua"), [])
    }

    /// An object that disappears between the listing and its download (here: deleted by another process) fails that
    /// user only; its other objects stay, and the other users are archived.
    func testObjectThatDisappearsDuringDownloadFailsThatUserOnly() throws {
        try prepare()
        let client = self.client!, bucket = self.bucket
        var options = ArchiveOptions(source: source, jobs: 1)
        options.afterSourceListing = { user in
            guard user == "ua" else { return }
            try client.deleteObject(bucket: bucket, key: "export/users/ua/profile.json")
        }
        let report = try Vault(root: vaultPath).archive(options, now: day0)
        XCTAssertEqual(report.archived.map(\.user), ["ub"])
        XCTAssertEqual(report.failed.map(\.user), ["ua"])
        XCTAssertTrue(report.failed.first?.reason.contains("disappeared while archiving") == true, "\(report.failed)")
        XCTAssertEqual(try userKeys("ua").count, 3, "ua's other objects kept")
        XCTAssertEqual(try stagedFiles(), [], "its partial copy removed")
    }

    /// Source objects the store will not delete after the commit (here: their recorded source names a bucket that is
    /// gone) keep the user `pending-removal`: reported by every run (exit 3) with the reason, never archived again, and
    /// deleted by the first run that can.
    func testSourceObjectsThatCannotBeDeletedStayPendingAndAreRetried() throws {
        try prepare()
        do {
            let vault = try Vault(root: vaultPath)
            vault.simulatedCrashPoint = "archive:committed"
            XCTAssertThrowsError(try vault.archive(ArchiveOptions(source: source), now: day0))
        }
        let gone = "s3://sv-gone-\(UUID().uuidString.prefix(8).lowercased())/export"
        try Vault(root: vaultPath).catalog.write { db in
            try db.execute(sql: "UPDATE source_objects SET source = ? WHERE key LIKE 'export/users/ub/%'", arguments: [gone])
        }
        let report = try Vault(root: vaultPath).archive(ArchiveOptions(source: source), now: day0)
        XCTAssertEqual(report.archived.map(\.user), [])
        XCTAssertEqual(report.sourcesNotRemoved.map(\.user), ["ub"])
        XCTAssertTrue(report.isPartial, "exit 3")
        XCTAssertTrue(report.sourcesNotRemoved.first?.reason.contains("could not be deleted") == true, "\(report.sourcesNotRemoved)")
        XCTAssertEqual(try userKeys("ua"), [], "ua's recorded objects deleted")
        XCTAssertEqual(try userKeys("ub").count, 1, "ub's objects still there")
        try Vault(root: vaultPath).catalog.write { db in
            try db.execute(sql: "UPDATE source_objects SET source = ?", arguments: [source])
        }
        let again = try Vault(root: vaultPath).archive(ArchiveOptions(source: source), now: day0)
        XCTAssertEqual(again.sourcesNotRemoved.map(\.user), [])
        XCTAssertEqual(again.archived.map(\.user), [], "never archived twice")
        XCTAssertEqual(try userKeys("ub"), [])
        try assertNoSourceObjectsRecorded()
    }

    // MARK: - Crash between the commit and the deletion

    /// A run that stops after the commit and before the source objects are deleted: the bundles are live, the
    /// objects still there and recorded; the next run deletes exactly those keys (an object written since stays),
    /// archives nobody twice, and leaves no record.
    func testCrashAfterCommitIsFinishedByTheNextRun() throws {
        try prepare()
        do {
            let vault = try Vault(root: vaultPath)
            vault.simulatedCrashPoint = "archive:committed"
            XCTAssertThrowsError(try vault.archive(ArchiveOptions(source: source), now: day0))
        }
        XCTAssertEqual(try userKeys("ua").count, 4, "the crash came before the deletion")
        XCTAssertEqual(try userKeys("ub").count, 1)
        let recorded = try Vault(root: vaultPath, readOnly: true).catalog.read { db in
            try String.fetchAll(db, sql: "SELECT key FROM source_objects ORDER BY key")
        }
        XCTAssertEqual(recorded, try userKeys("ua") + userKeys("ub"), "the commit recorded the keys to delete")
        // Written after the archive run listed ua: not archived, so not deleted.
        try put("export/users/ua/later.txt", Array("later".utf8))
        do {
            let pending = try Vault(root: vaultPath).archive(ArchiveOptions(source: source, dryRun: true), now: day0)
            XCTAssertEqual(pending.sourcesNotRemoved.map(\.user), ["ua", "ub"], "a dry run reports what is pending")
        }

        let report = try Vault(root: vaultPath).archive(ArchiveOptions(source: source), now: day0)
        XCTAssertEqual(report.archived.map(\.user), [], "nobody archived twice")
        XCTAssertEqual(Set(report.skipped.filter { $0.reason == "already archived" }.map(\.user)), ["ua", "ub"])
        XCTAssertEqual(report.sourcesNotRemoved.map(\.user), [])
        XCTAssertEqual(try userKeys("ua"), ["export/users/ua/later.txt"])
        XCTAssertEqual(try userKeys("ub"), [])
        try assertNoSourceObjectsRecorded()
        let rows = try Vault(root: vaultPath, readOnly: true).catalog.read { db in
            try Row.fetchAll(db, sql: "SELECT user_id, source_state FROM bundles ORDER BY user_id").map { "\($0["user_id"] as String) \($0["source_state"] as String)" }
        }
        XCTAssertEqual(rows, ["ua removed", "ub removed"], "one bundle per user")
        try restoreAndCompare(["ua", "ub"])
    }

    /// Copies a killed run left under `staging/source/` are removed by the next job that changes the vault (here a
    /// sweep), in a vault whose bundles are local; `check` does not count the staging directory as an unknown file.
    func testLeftoverSourceCopiesAreRemovedByTheNextJob() throws {
        try prepare()
        try write(vaultPath + "/staging/source/0123456789abcdef/ua/profile.json", Array("copy".utf8))
        let sweep = try Vault(root: vaultPath).sweep(now: day0)
        XCTAssertTrue(sweep.converged?.removedLeftovers.contains(vaultPath + "/staging/source/0123456789abcdef") == true, "\(String(describing: sweep.converged))")
        XCTAssertEqual(try stagedFiles(), [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: vaultPath + "/staging/source/0123456789abcdef"))
        let check = try Vault(root: vaultPath, readOnly: true).check(now: day0, readData: false, restoreKey: nil)
        XCTAssertTrue(check.ok, "\(check.violations)")
    }

    // MARK: - A store that does not answer

    /// A missing bucket, wrong credentials and an unreachable endpoint each end `archive` with one line and exit 14
    /// before anything changes: no audit record, no bundle, no staging directory, every object still there.
    func testUnreachableStoreWrongCredentialsOrMissingBucketExit14AndChangeNothing() throws {
        try prepare()
        let secret = objectStore.environment["AWS_SECRET_ACCESS_KEY"]!
        let before = try keys()
        let audit = try auditCount()
        let cases: [(String, [String: String], String)] = [
            ("s3://sv-no-such-bucket-\(UUID().uuidString.prefix(8).lowercased())/export", [:], "does not exist"),
            (source, ["AWS_SECRET_ACCESS_KEY": "wrong" + secret], "rejected the credentials"),
            (source, ["AWS_ENDPOINT_URL": "http://127.0.0.1:9"], "Cannot reach"),
        ]
        for (url, overrides, expected) in cases {
            var environment = objectStore.environment
            for (k, v) in overrides { environment[k] = v }
            let r = try runCLI(["archive", "--vault", vaultPath, "--source", url, "--now", "2026-11-29T00:15:00Z"], environment: environment)
            XCTAssertEqual(r.status, 14, "\(url): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(expected), r.stderr)
            XCTAssertTrue(r.stderr.contains("source:"), r.stderr)
            XCTAssertFalse(r.stderr.contains(secret), "no secret in the error")
        }
        XCTAssertEqual(try keys(), before, "every object still there")
        XCTAssertEqual(try auditCount(), audit, "nothing recorded")
        XCTAssertFalse(FileManager.default.fileExists(atPath: vaultPath + "/staging"), "no staging directory made")
        let rows = try Vault(root: vaultPath, readOnly: true).catalog.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM bundles") }
        XCTAssertEqual(rows, 0)
        // A malformed URL is a usage error (64), and a missing accounts.csv is "not found" (66).
        let usage = try runCLI(["archive", "--vault", vaultPath, "--source", "s3://A_B/x", "--now", "2026-11-29T00:15:00Z"],
                               environment: objectStore.environment)
        XCTAssertEqual(usage.status, 64, usage.stderr)
        let missing = try runCLI(["archive", "--vault", vaultPath, "--source", "s3://\(bucket)/nothing-here", "--now", "2026-11-29T00:15:00Z"],
                                 environment: objectStore.environment)
        XCTAssertEqual(missing.status, 66, missing.stderr)
    }

    // MARK: - Helpers

    private func restoreAndCompare(_ users: [String]) throws {
        let vault = try Vault(root: vaultPath)
        let key = try vault.restoreKey(path: restoreKeyPath)
        for user in users {
            _ = try vault.placeHold(user: UserID(user)!, caseId: "C1", reason: "litigation", restoreKey: key, now: at(2))
            _ = try vault.restore(user: UserID(user)!, caseId: "C1", to: dir + "/r-" + user, restoreKey: key, now: at(2))
            XCTAssertEqual(try tree(dir + "/r-" + user), try tree(dir + "/pristine/users/" + user), user)
        }
    }

    private func assertNoSourceObjectsRecorded(file: StaticString = #filePath, line: UInt = #line) throws {
        let count = try Vault(root: vaultPath, readOnly: true).catalog.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM source_objects") }
        XCTAssertEqual(count, 0, "no source objects left to delete", file: file, line: line)
    }

    private func auditCount() throws -> Int {
        try Vault(root: vaultPath, readOnly: true).catalog.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM audit") ?? 0 }
    }

    /// Files and directories under the vault's staging directory (none when it does not exist).
    private func stagedFiles() throws -> [String] {
        let staging = vaultPath + "/staging"
        guard let walker = FileManager.default.enumerator(atPath: staging) else { return [] }
        return walker.compactMap { $0 as? String }.filter { !isDirectory(staging + "/" + $0) }
    }

    /// Every file and directory below `root` with its contents (directories: nil).
    private func tree(_ root: String) throws -> [String: [UInt8]?] {
        var out: [String: [UInt8]?] = [:]
        for case let path as String in FileManager.default.enumerator(atPath: root)! {
            out[path] = isDirectory(root + "/" + path) ? .some(nil) : Array(try Data(contentsOf: URL(fileURLWithPath: root + "/" + path)))
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
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return (status, String(decoding: stdout, as: UTF8.self), String(decoding: stderr, as: UTF8.self))
    }
}
