import Foundation
import VaultS3
import XCTest

@testable import ShredVault

#if canImport(Glibc)
import Glibc
#endif

/// Issue #13 item 6, vault-format.md §6.5 "Faults": the built `shredvault` against the real local object store,
/// through `tools/fault-proxy` (errors, dropped connections, delays, truncated and corrupted bodies, "stop") and with
/// the store itself stopped by PID. Each failure is one `error:` line with a documented exit code; nothing is lost
/// (a source goes only after its commit), no row is half-committed, and once the store answers again the next run
/// converges (`check` clean: no orphan-object, no incomplete-upload) and does the job's work.
final class S3FaultTests: XCTestCase {
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
    private var proxy: FaultProxy!
    private var client: S3Client!
    private var bucket = ""
    private var dir = ""
    private let prefix = "vault1"
    private var vault: String { dir + "/vault" }
    private var key: String { dir + "/restore.key" }
    private var source: String { dir + "/src" }
    private var direct: [String: String] { objectStore.environment }
    private var viaProxy: [String: String] {
        var environment = objectStore.environment
        environment["AWS_ENDPOINT_URL"] = proxy.endpoint
        return environment
    }

    // The regular expressions the rules match request targets with (path-style: /BUCKET/vault1/YYYY/MM/DD/ID.svb).
    private let bundleObject = #"\.svb$"#
    private let secondPart = #"\.svb\?partNumber=2&"#

    /// A fresh bucket, an S3 vault made by `init`, a source with a small user (ua), a user larger than one 8 MiB part
    /// (ub, uploaded in two parts) and an active one (uc), and a proxy in front of the store.
    private func prepare(archived: Bool = false) throws {
        objectStore = try Self.shared.get()
        client = try S3Client(environment: objectStore.environment)
        bucket = "sf-" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
        try client.createBucket(bucket)
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("s3fault-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { [dir] in try? FileManager.default.removeItem(atPath: dir) }
        try write(source + "/accounts.csv", Array("user_id,plan,last_active\nua,pro,2025-01-01\nub,free,2025-06-01\nuc,free,2026-11-01\n".utf8))
        try write(source + "/users/ua/profile.json", Array("{\"a\":1}".utf8))
        try write(source + "/users/ua/calls/c1/recording.wav", noise(70_000, seed: 5))
        try write(source + "/users/ub/big.bin", noise(9 * 1024 * 1024 + 123, seed: 6))
        try write(source + "/users/uc/active.txt", [1, 2, 3])
        try FileManager.default.copyItem(atPath: source, toPath: dir + "/pristine")
        proxy = try FaultProxy.start(upstream: objectStore.environment["AWS_ENDPOINT_URL"]!)
        addTeardownBlock { [proxy] in proxy?.stop() }
        try expect(cli(["init", "--vault", vault, "--master-key-file", key, "--drill", "--now", "2026-11-29",
                        "--bundle-store", "s3://\(bucket)/\(prefix)"], direct), 0)
        if archived { try expect(cli(archive, direct), 0) }
    }

    private var archive: [String] { ["archive", "--vault", vault, "--source", source, "--now", "2026-11-29"] }
    private func check(_ day: String = "2026-11-30") -> [String] { ["check", "--vault", vault, "--now", day] }
    private func restore(_ user: String, to target: String) -> [String] {
        ["restore", user, "--vault", vault, "--case", "C1", "--to", target, "--master-key-file", key, "--now", "2026-12-01"]
    }

    // MARK: - The store stops in the middle of a job

    /// The store stops (the proxy refuses every connection) while the large user's second part is uploaded.
    func testArchiveStoppedDuringUploadConvergesOnTheNextRun() throws {
        try prepare()
        try proxy.setRules([["method": "PUT", "path": secondPart, "action": "stop"]])
        let failed = try cli(archive, viaProxy)
        try expectOneErrorLine(failed, 14)
        XCTAssertEqual(proxy.events().first, "stop", "the fault hit: \(proxy.requests())")
        try assertNothingLost()
        // The upload could not be aborted while the store was away: check names it (and changes nothing).
        let before = try cli(check(), direct)
        XCTAssertEqual(before.status, 2, before.stdout + before.stderr)
        XCTAssertTrue(before.stdout.contains("incomplete-upload"), before.stdout)

        try proxy.setRules([])
        try expect(cli(archive, viaProxy), 0)
        try assertConverged(archived: ["ua", "ub"])
    }

    /// The store stops while the first bundle is read back (after its upload, before the commit).
    func testArchiveStoppedDuringReadBackConvergesOnTheNextRun() throws {
        try prepare()
        try proxy.setRules([["method": "GET", "path": bundleObject, "action": "stop"]])
        try expectOneErrorLine(try cli(archive, viaProxy), 14)
        XCTAssertTrue(proxy.requests().contains { $0.method == "PUT" && $0.status == 200 }, "an object was uploaded before the stop")
        try assertNothingLost()
        try proxy.setRules([])
        try expect(cli(archive, viaProxy), 0)
        try assertConverged(archived: ["ua", "ub"])
    }

    /// The store stops during the sweep's DeleteObjects of the expired bundles.
    func testSweepStoppedDuringDeleteObjectsConvergesOnTheNextRun() throws {
        try prepare(archived: true)
        XCTAssertEqual(try keys().count, 4)
        let sweep = ["sweep", "--vault", vault, "--now", "2027-02-28"]
        try proxy.setRules([["method": "POST", "path": #"\?delete"#, "action": "stop"]])
        try expectOneErrorLine(try cli(sweep, viaProxy), 14)
        XCTAssertEqual(proxy.requests().last.map { "\($0.method) \($0.fault ?? "")" }, "POST stop", "\(proxy.requests())")
        XCTAssertEqual(try keys().count, 4, "nothing was deleted")
        try assertNoHalfCommittedRows()
        // The day key went before the deletes (G1 does not wait for the store); check names what is left to do.
        let between = try cli(check("2027-02-28"), direct)
        XCTAssertEqual(between.status, 2, between.stderr)
        XCTAssertTrue(between.stdout.contains("overdue-expiry") && between.stdout.contains("key-missing"), between.stdout)
        try proxy.setRules([])
        try expect(cli(sweep, viaProxy), 0)
        XCTAssertTrue(proxy.requests().contains { $0.method == "POST" && $0.status == 200 })
        XCTAssertEqual(try keys(), [], "the expired bundles' objects are deleted")
        try expect(cli(check("2027-02-28"), direct), 0)
        try assertNoHalfCommittedRows()
    }

    /// The store stops while a held user's bundle is downloaded for a restore.
    func testRestoreStoppedDuringTheDownloadConvergesOnTheNextRun() throws {
        try prepare(archived: true)
        try expect(cli(["hold", "place", "ub", "--vault", vault, "--case", "C1", "--reason", "claim", "--master-key-file", key,
                        "--now", "2026-11-30"], direct), 0)
        let target = dir + "/restored"
        try proxy.setRules([["method": "GET", "path": bundleObject, "action": "stop"]])
        try expectOneErrorLine(try cli(restore("ub", to: target), viaProxy), 14)
        XCTAssertFalse(FileManager.default.fileExists(atPath: target), "no half-restored target")
        XCTAssertEqual(try stagingFiles(), [], "no copy left in staging")
        try proxy.setRules([])
        try expect(cli(restore("ub", to: target), viaProxy), 0)
        XCTAssertEqual(try tree(target), try tree(dir + "/pristine/users/ub"))
        try expect(cli(check(), direct), 0)

        // check (read-only) whose bundle downloads keep failing (503 on every attempt), and check --quick whose HEADs
        // do: exit 14, never a violation reported against a bundle that is fine.
        for (arguments, method) in [(check(), "GET"), (["check", "--quick", "--vault", vault, "--now", "2026-11-30"], "HEAD")] {
            try proxy.setRules([["method": method, "path": bundleObject, "action": "error", "status": 503, "times": -1]])
            let failing = try cli(arguments, viaProxy)
            try expectOneErrorLine(failing, 14, arguments.joined(separator: " "))
            XCTAssertTrue(failing.stderr.contains("HTTP 503"), failing.stderr)
            XCTAssertEqual(failing.stdout, "", "no report of violations")
        }
        try proxy.setRules([])
        try expect(cli(check(), viaProxy), 0)
    }

    /// The store itself (its four servers and memcached) stopped by PID while the archive waits on a read-back, and
    /// started again with its data.
    func testStoreStoppedByPIDDuringArchiveConvergesAfterItComesBack() throws {
        try prepare()
        try proxy.setRules([["method": "GET", "path": bundleObject, "action": "delay", "seconds": 4]])
        let running = try spawnCLI(archive, viaProxy)
        XCTAssertTrue(proxy.waitFor(event: "held", seconds: 60), "the archive reached its read-back")
        try objectStore.stopServers()
        let failed = running.wait()
        try objectStore.restart()
        try expectOneErrorLine(failed, 14)
        XCTAssertTrue(failed.stderr.contains("Cannot reach") || failed.stderr.contains("failed"), failed.stderr)
        try assertNothingLost()
        try expect(cli(archive, direct), 0)
        try assertConverged(archived: ["ua", "ub"])
    }

    // MARK: - Transient faults, bad bytes, a killed job

    /// 503, SlowDown, a request dropped mid-body, answers dropped mid-body and a 500 on HEAD: each retried (or the
    /// download resumed), and the archive succeeds.
    func testTransientFaultsAreRetriedAndTheArchiveSucceeds() throws {
        try prepare()
        try proxy.setRules([
            ["method": "PUT", "path": bundleObject, "action": "error", "status": 503, "code": "ServiceUnavailable"],
            ["method": "PUT", "path": #"\.svb\?partNumber=1&"#, "action": "error", "status": 503, "code": "SlowDown"],
            ["method": "PUT", "path": secondPart, "action": "drop-request", "bytes": 65536],
            ["method": "GET", "path": bundleObject, "action": "drop-response", "bytes": 40000, "times": 2],
            // (The read-back sends no HEAD: its ranged GETs carry the size.) A sidecar's read-back fails once.
            ["method": "GET", "path": #"\.dek$"#, "action": "error", "status": 500, "code": "InternalError"],
        ])
        try expect(cli(archive, viaProxy), 0)
        let log = proxy.requests()
        for fault in ["ServiceUnavailable", "SlowDown", "drop-request", "drop-response", "InternalError"] {
            guard let hit = log.firstIndex(where: { $0.fault == fault }) else {
                XCTFail("fault \(fault) never hit: \(log)")
                continue
            }
            let (method, path) = (log[hit].method, log[hit].path)
            XCTAssertTrue(log[(hit + 1)...].contains { $0.method == method && $0.path == path && (200..<300).contains($0.status) },
                          "\(fault) on \(method) \(path) was retried and then succeeded: \(log)")
        }
        XCTAssertEqual(log.filter { $0.fault == "drop-response" }.count, 2)
        XCTAssertTrue(log.contains { $0.method == "GET" && $0.status == 206 }, "a dropped download resumed with a ranged GET")
        try assertConverged(archived: ["ua", "ub"])
    }

    /// A read-back whose body is corrupted (one bit) or truncated (a short but complete answer) is never accepted:
    /// exit 14, nothing committed, the sources kept; a restore of a corrupted download is refused (exit 65) and
    /// leaves no target.
    func testCorruptedOrTruncatedBodiesAreNeverAccepted() throws {
        try prepare()
        for action in ["corrupt", "truncate"] {
            try proxy.setRules([["method": "GET", "path": bundleObject, "action": action]])
            let failed = try cli(archive, viaProxy)
            try expectOneErrorLine(failed, 14)
            // A corrupted body hashes wrong; a truncated one is caught by the client's own length and range checks (or,
            // were it not, by the size compared with what was written).
            XCTAssertTrue(action == "corrupt" ? failed.stderr.contains("differs from what was written")
                                              : failed.stderr.contains("bytes, not the") || failed.stderr.contains("failed its integrity check"),
                          failed.stderr)
            XCTAssertTrue(proxy.requests().contains { $0.fault == action }, "\(proxy.requests())")
            try assertNothingLost()
            XCTAssertEqual(try liveUsers(), [], "\(action): nothing committed")
        }
        try proxy.setRules([])
        try expect(cli(archive, viaProxy), 0)
        try assertConverged(archived: ["ua", "ub"])

        try expect(cli(["hold", "place", "ua", "--vault", vault, "--case", "C1", "--reason", "claim", "--master-key-file", key,
                        "--now", "2026-11-30"], direct), 0)
        let target = dir + "/restored"
        try proxy.setRules([["method": "GET", "path": bundleObject, "action": "corrupt"]])
        let refused = try cli(restore("ua", to: target), viaProxy)
        try expectOneErrorLine(refused, 65)
        XCTAssertTrue(refused.stderr.contains("SHA-256"), refused.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: target))
        try proxy.setRules([])
        try expect(cli(restore("ua", to: target), viaProxy), 0)
        XCTAssertEqual(try tree(target), try tree(dir + "/pristine/users/ua"))
    }

    /// SIGKILL of the CLI while a part of the large user is on its way: `check` reports the multipart upload (and
    /// changes nothing); the next job aborts it and deletes the objects of the uncommitted bundles.
    func testKilledArchiveMidMultipartUploadIsCleanedUpByTheNextJob() throws {
        try prepare()
        try proxy.setRules([["method": "PUT", "path": secondPart, "action": "delay", "seconds": 60]])
        let running = try spawnCLI(archive, viaProxy)
        XCTAssertTrue(proxy.waitFor(event: "held", seconds: 60), "the archive reached its second part")
        kill(running.pid, SIGKILL)
        let killed = running.wait()
        XCTAssertEqual(killed.status, -SIGKILL)
        let deadline = Date().addingTimeInterval(5)
        while !proxy.requests().contains(where: { $0.fault == "client-gone" }) && Date() < deadline { usleep(20_000) }
        XCTAssertTrue(proxy.requests().contains { $0.fault == "client-gone" }, "the held part never reached the store")
        try assertNothingLost()
        let before = try cli(check(), direct)
        XCTAssertEqual(before.status, 2, before.stderr)
        XCTAssertTrue(before.stdout.contains("incomplete-upload"), before.stdout)
        XCTAssertEqual(try client.listMultipartUploads(bucket: bucket).count, 1)

        try expect(cli(archive, direct), 0)
        try assertConverged(archived: ["ua", "ub"])
    }

    // MARK: - A store that cannot be used at all

    /// Wrong credentials, a missing bucket and an unreachable endpoint, for archive, sweep, delete, restore and check
    /// of an existing S3 vault: one line, exit 14, and nothing changed (the vault directory byte for byte, the sources, the
    /// objects).
    func testUnusableStoreStopsEveryJobBeforeAnythingChanges() throws {
        try prepare()
        try expect(cli(["archive", "--vault", vault, "--source", source, "--now", "2026-11-29", "--user", "ua"], direct), 0)
        try expect(cli(["hold", "place", "ua", "--vault", vault, "--case", "C1", "--reason", "claim", "--master-key-file", key,
                        "--now", "2026-11-30"], direct), 0)
        // A second vault whose bucket is then deleted.
        let gone = "sf-gone-" + UUID().uuidString.lowercased().prefix(8)
        try client.createBucket(gone)
        let vault2 = dir + "/vault2"
        try expect(cli(["init", "--vault", vault2, "--master-key-file", dir + "/key2", "--drill", "--now", "2026-11-29",
                        "--bundle-store", "s3://\(gone)/p"], direct), 0)
        try client.deleteBucket(gone)

        let secret = direct["AWS_SECRET_ACCESS_KEY"]!
        var wrongSecret = direct
        wrongSecret["AWS_SECRET_ACCESS_KEY"] = "x" + secret
        var unreachable = direct
        unreachable["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"
        let settings: [(String, String, [String: String], String)] = [
            ("wrong credentials", vault, wrongSecret, "rejected the credentials"),
            ("unreachable endpoint", vault, unreachable, "Cannot reach the object store"),
            ("missing bucket", vault2, direct, "Bucket \(gone) does not exist"),
        ]
        // A leftover of an interrupted job: a job that cannot reach its store must not even clean this up.
        try write(vault + "/staging/read/0123456789ab-stale.svb", [1, 2, 3])
        let objects = try keys()
        for (what, vaultDir, environment, expected) in settings {
            let commands: [(String, [String])] = [
                ("archive", ["archive", "--vault", vaultDir, "--source", source, "--now", "2026-11-30"]),
                ("sweep", ["sweep", "--vault", vaultDir, "--now", "2027-03-01"]),
                ("delete", ["delete", "ua", "--request-id", "REQ-1", "--not-archived", "--vault", vaultDir, "--now", "2026-12-01"]),
                ("restore", ["restore", "ua", "--vault", vaultDir, "--case", "C1", "--to", dir + "/r",
                             "--master-key-file", vaultDir == vault ? key : dir + "/key2",
                             "--now", "2026-12-01"]),
                ("check", ["check", "--vault", vaultDir, "--now", "2026-12-01"]),
                ("check --quick", ["check", "--quick", "--vault", vaultDir, "--now", "2026-12-01"]),
            ]
            for (name, arguments) in commands {
                let snapshot = try tree(vaultDir)
                let result = try cli(arguments, environment)
                try expectOneErrorLine(result, 14, "\(what), \(name)")
                XCTAssertTrue(result.stderr.contains(expected), "\(what), \(name): \(result.stderr)")
                XCTAssertFalse(result.stderr.contains(secret), "no secret in the error")
                // sweep and delete do the deadline work that needs no store (keys, the request) before they stop:
                // testDeadlineKeysAreDestroyedWhileTheStoreCannotBeUsed.
                guard name != "sweep" && name != "delete" else { continue }
                XCTAssertEqual(try tree(vaultDir), snapshot, "\(what), \(name): the vault directory is unchanged")
                XCTAssertEqual(try tree(source), try tree(dir + "/pristine").filter { !$0.key.hasPrefix("users/ua/") },
                               "\(what), \(name): sources unchanged")
                XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/r"))
            }
        }
        XCTAssertEqual(try keys(), objects, "no object changed")
        try expect(cli(["sweep", "--vault", vault, "--now", "2026-12-01"], direct), 0)
        XCTAssertEqual(try stagingFiles(), [], "the next job with a working store removes the leftover")
        try expect(cli(check("2026-12-01"), direct), 0)
    }

    /// G1/G2 follow the clock, not the store: with the store unusable, `delete` still records the request and destroys
    /// the user's key, and `sweep` the day keys of ended days; both then stop with exit 14 saying so, and no object
    /// changes. Once the store answers, the next job deletes the objects, ends the rows and issues the receipt.
    func testDeadlineKeysAreDestroyedWhileTheStoreCannotBeUsed() throws {
        try prepare(archived: true)
        let objects = try keys()
        XCTAssertEqual(objects.count, 4)
        var wrongSecret = direct
        wrongSecret["AWS_SECRET_ACCESS_KEY"] = "x" + direct["AWS_SECRET_ACCESS_KEY"]!

        let delete = try cli(["delete", "ua", "--request-id", "REQ-9", "--vault", vault, "--now", "2026-12-01"], wrongSecret)
        try expectOneErrorLine(delete, 14, "delete")
        XCTAssertTrue(delete.stderr.contains("rejected the credentials") && delete.stderr.contains("user's key destroyed anyway"),
                      delete.stderr)
        do {
            let v = try Vault(root: vault, readOnly: true)
            XCTAssertNil(try v.keystore.key(role: .user, subject: "ua"), "ua's key is destroyed without the store")
            XCTAssertNotNil(try v.keystore.key(role: .user, subject: "ub"))
            XCTAssertEqual(try v.catalog.read { db in try String.fetchOne(db, sql: "SELECT state FROM deletion_requests WHERE request_id = 'REQ-9'") },
                           "pending", "the request is recorded and left for the store")
        }

        let sweep = try cli(["sweep", "--vault", vault, "--now", "2027-03-01"], wrongSecret)
        try expectOneErrorLine(sweep, 14, "sweep")
        XCTAssertTrue(sweep.stderr.contains("due by the clock destroyed anyway"), sweep.stderr)
        do {
            let v = try Vault(root: vault, readOnly: true)
            XCTAssertEqual(try v.keystore.dayKeys(endedBefore: CivilDay(iso: "2027-03-01")!), [], "every ended day key is gone")
        }
        XCTAssertEqual(try keys(), objects, "no object changed while the store refused the credentials")

        try expect(cli(["sweep", "--vault", vault, "--now", "2027-03-01"], direct), 0)
        XCTAssertEqual(try keys(), [], "the objects go once the store answers")
        do {
            let v = try Vault(root: vault, readOnly: true)
            XCTAssertEqual(try v.catalog.read { db in try String.fetchOne(db, sql: "SELECT state FROM deletion_requests WHERE request_id = 'REQ-9'") },
                           "done")
            XCTAssertEqual(try v.catalog.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM receipts") }, 1, "REQ-9's receipt")
        }
        try expect(cli(check("2027-03-01"), direct), 0)
        try assertNoHalfCommittedRows()
    }

    /// Why the proxy forwards the `Host` header as the client sent it: the client signs for the proxy's host:port,
    /// and the store checks the signature against the `Host` it receives. The same request with `Host` rewritten to
    /// the store's own address is refused (SignatureDoesNotMatch): exit 14, one line.
    func testTheProxyMustKeepTheSignedHostHeader() throws {
        try prepare(archived: true)
        try proxy.setRules([])
        try expect(cli(check(), viaProxy), 0)
        try proxy.setRules([["action": "rewrite-host", "times": -1]])
        let refused = try cli(check(), viaProxy)
        try expectOneErrorLine(refused, 14)
        XCTAssertTrue(refused.stderr.contains("SignatureDoesNotMatch"), refused.stderr)
        XCTAssertEqual(proxy.requests().first?.status, 403, "\(proxy.requests())")
    }

    // MARK: - check --quick

    /// `check --quick` of an S3 vault reads each bundle's size (HeadObject) and signed prefix (one ranged GET), never
    /// the whole object, and still finds a replaced object.
    func testQuickCheckReadsSizesAndHeadersNotWholeObjects() throws {
        try prepare(archived: true)
        try proxy.setRules([])
        try expect(cli(["check", "--quick", "--vault", vault, "--now", "2026-11-30"], viaProxy), 0)
        let bundleGets = proxy.requests().filter { $0.method == "GET" && $0.path.hasSuffix(".svb") }
        XCTAssertEqual(bundleGets.count, 2, "one ranged GET per bundle: \(proxy.requests())")
        XCTAssertTrue(bundleGets.allSatisfy { $0.status == 206 }, "ranged answers only: \(bundleGets)")
        XCTAssertEqual(proxy.requests().filter { $0.method == "HEAD" && $0.path.hasSuffix(".svb") }.count, 2)
        // hold place checks each bundle's size, header and signatures the same way before it reseals.
        try proxy.setRules([])
        try expect(cli(["hold", "place", "ua", "ub", "--vault", vault, "--case", "C1", "--reason", "claim", "--master-key-file", key,
                        "--now", "2026-11-30"], viaProxy), 0)
        let holdGets = proxy.requests().filter { $0.method == "GET" && $0.path.hasSuffix(".svb") }
        XCTAssertEqual(holdGets.count, 2, "\(proxy.requests())")
        XCTAssertTrue(holdGets.allSatisfy { $0.status == 206 }, "hold reads no whole bundle: \(holdGets)")

        // A bundle object replaced by another bundle's bytes (ub's by ua's): same store, wrong size and header.
        let svb = try keys().filter { $0.hasSuffix(".svb") }
        let bytes = try client.getObjectBytes(bucket: bucket, key: svb[0])
        try client.putObject(bucket: bucket, key: svb[1], body: bytes)
        let found = try cli(["check", "--quick", "--vault", vault, "--now", "2026-11-30"], viaProxy)
        XCTAssertEqual(found.status, 2, found.stderr)
        XCTAssertTrue(found.stdout.contains("bundle-mismatch"), found.stdout)
        let release = try cli(["hold", "release", "ua", "ub", "--vault", vault, "--case", "C1", "--master-key-file", key,
                               "--now", "2026-12-01"], viaProxy)
        try expectOneErrorLine(release, 65, "hold release of a replaced bundle")
    }

    // MARK: - Assertions

    /// Sources are intact unless committed: a user with a live row has no source left; every other user's source is
    /// byte for byte the original.
    private func assertNothingLost(file: StaticString = #filePath, line: UInt = #line) throws {
        let live = Set(try liveUsers())
        for user in ["ua", "ub", "uc"] {
            let path = source + "/users/" + user
            if live.contains(user) {
                XCTAssertFalse(FileManager.default.fileExists(atPath: path), "\(user) committed, source removed", file: file, line: line)
            } else {
                XCTAssertEqual(try tree(path), try tree(dir + "/pristine/users/" + user), "\(user): source intact", file: file, line: line)
            }
        }
        try assertNoHalfCommittedRows(file: file, line: line)
    }

    /// Every live row has both objects with the catalog's size; a live row never lacks its hash or sealed key.
    private func assertNoHalfCommittedRows(file: StaticString = #filePath, line: UInt = #line) throws {
        let objects = Dictionary(uniqueKeysWithValues: try client.listObjects(bucket: bucket).map { ($0.key, $0.size) })
        let rows = try withVault { v in
            try v.catalog.read { db in
                try BundleRecord.fetchAll(db, sql: "SELECT * FROM bundles WHERE state = 'live'")
            }
        }
        for row in rows {
            let key = prefix + "/" + row.location.dropFirst("bundles/".count)
            XCTAssertEqual(objects[key], UInt64(row.size), "live \(row.userId): its object is there", file: file, line: line)
            XCTAssertNotNil(objects[String(key.dropLast(4)) + ".dek"], "live \(row.userId): its sidecar is there", file: file, line: line)
            XCTAssertNotNil(row.sha256, file: file, line: line)
            XCTAssertNotNil(row.sealedDek, file: file, line: line)
        }
    }

    /// After convergence: `check` exits 0 (no orphan-object, no incomplete-upload), the bucket holds exactly the live
    /// bundles' objects, no multipart upload and no staging copy is left, and `users` are archived.
    private func assertConverged(archived users: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let checked = try cli(check(), direct)
        XCTAssertEqual(checked.status, 0, checked.stdout + checked.stderr, file: file, line: line)
        let rows = try withVault { v in
            try v.catalog.read { db in try BundleRecord.fetchAll(db, sql: "SELECT * FROM bundles WHERE state IN ('live', 'writing')") }
        }
        XCTAssertTrue(rows.allSatisfy { $0.state == .live }, "no writing row left", file: file, line: line)
        XCTAssertEqual(rows.map(\.userId).sorted(), users, file: file, line: line)
        let expected = rows.flatMap { row -> [String] in
            let key = prefix + "/" + row.location.dropFirst("bundles/".count)
            return [key, String(key.dropLast(4)) + ".dek"]
        }
        XCTAssertEqual(try keys(), expected.sorted(), "exactly the live bundles' objects", file: file, line: line)
        XCTAssertEqual(try client.listMultipartUploads(bucket: bucket).count, 0, file: file, line: line)
        XCTAssertEqual(try stagingFiles(), [], file: file, line: line)
        for user in users {
            XCTAssertFalse(FileManager.default.fileExists(atPath: source + "/users/" + user), "\(user)'s source removed", file: file, line: line)
        }
        try assertNoHalfCommittedRows(file: file, line: line)
    }

    private func expect(_ result: CLIResult, _ status: Int32, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(result.status, status, "\(result.arguments.first ?? ""): \(result.stderr)\(result.stdout.prefix(2000))", file: file, line: line)
    }

    /// Exactly one line on stderr, `shredvault: error: …`, and the exit code.
    private func expectOneErrorLine(_ result: CLIResult, _ status: Int32, _ what: String = "", file: StaticString = #filePath,
                                    line: UInt = #line) throws {
        XCTAssertEqual(result.status, status, "\(what) \(result.arguments.first ?? ""): \(result.stderr)", file: file, line: line)
        let lines = result.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "\(what): one line: \(result.stderr)", file: file, line: line)
        XCTAssertTrue(lines.first?.hasPrefix("shredvault: error: ") == true, "\(what): \(result.stderr)", file: file, line: line)
    }

    // MARK: - Helpers

    private func withVault<T>(_ body: (Vault) throws -> T) throws -> T {
        let v = try Vault(root: vault, readOnly: true)
        return try body(v)
    }

    private func liveUsers() throws -> [String] {
        try withVault { v in
            try v.catalog.read { db in try String.fetchAll(db, sql: "SELECT user_id FROM bundles WHERE state = 'live' ORDER BY user_id") }
        }
    }

    private func keys() throws -> [String] { try client.listObjects(bucket: bucket).map(\.key).sorted() }

    private func stagingFiles() throws -> [String] {
        guard let walker = FileManager.default.enumerator(atPath: vault + "/staging") else { return [] }
        return walker.compactMap { $0 as? String }.filter { !isDirectory(vault + "/staging/" + $0) }
    }

    private func tree(_ root: String) throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        guard let walker = FileManager.default.enumerator(atPath: root) else { return out }
        for case let path as String in walker where !isDirectory(root + "/" + path) {
            out[path] = Array(try Data(contentsOf: URL(fileURLWithPath: root + "/" + path)))
        }
        return out
    }

    struct CLIResult {
        var arguments: [String]
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// A running `shredvault`: its PID, and `wait()` for its result (a signal as a negative status).
    struct RunningCLI {
        var pid: pid_t
        var arguments: [String]
        var out: String
        var err: String

        func wait() -> CLIResult {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
            let code: Int32 = status & 0x7f == 0 ? (status >> 8) & 0xff : -(status & 0x7f)
            let stdout = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
            let stderr = (try? String(contentsOfFile: err, encoding: .utf8)) ?? ""
            return CLIResult(arguments: arguments, status: code, stdout: stdout, stderr: stderr)
        }
    }

    /// Starts the built `shredvault` with only `environment` plus PATH (no AWS_* of this process); output to files.
    private func spawnCLI(_ arguments: [String], _ environment: [String: String]) throws -> RunningCLI {
        let binary = LocalObjectStore.packageRoot.appendingPathComponent(".build/debug/shredvault").path
        let base = dir + "/cli-\(UUID().uuidString.prefix(8))"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, base + ".out", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, base + ".err", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        var env = environment
        env["PATH"] = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let argv: [UnsafeMutablePointer<CChar>?] = ([binary] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, binary, &actions, nil, argv, envp)
        guard rc == 0 else { throw LocalObjectStore.StoreError("posix_spawn shredvault: \(String(cString: strerror(rc)))") }
        return RunningCLI(pid: child, arguments: arguments, out: base + ".out", err: base + ".err")
    }

    private func cli(_ arguments: [String], _ environment: [String: String]) throws -> CLIResult {
        try spawnCLI(arguments, environment).wait()
    }
}
