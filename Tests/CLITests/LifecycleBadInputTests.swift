import Foundation
import XCTest

/// Bad input (DESIGN-BRIEF §6): each case gets one clear line on stderr, its documented exit code, and changes
/// nothing (vault files, catalog tables, source, scenario directory).
final class LifecycleBadInputTests: XCTestCase {
    var s: Scenario!

    /// A vault on day 0 with ua and ub archived and ua under hold C1.
    override func setUpWithError() throws {
        s = try Scenario(self)
        try s.writeSource([
            SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 31)),
            SourceUser(id: "ub", lastActive: inactiveDate, files: sampleFiles(seed: 32)),
        ])
        try s.initVault()
        assertSuccess(try s.sv(["archive", "--source", s.source], day: 0), "archive")
        assertSuccess(try s.svk(["hold", "place", "ua", "--case", "C1", "--reason", "case"], day: 0), "hold place")
    }

    func bundle(_ user: String) throws -> (id: String, path: String) {
        let b = try XCTUnwrap(try s.listed(user: user, day: 0).first, "\(user) has a live bundle")
        return (b["bundleId"] as? String ?? "?", s.bundlePath(b))
    }

    func restoreA(day: Int = 1) throws -> CLI.Result {
        try s.svk(["restore", "ua", "--case", "C1", "--to", s.dir + "/out"], day: day)
    }

    func testMalformedAccountsCSV() throws {
        let cases: [(String, String, String)] = [
            ("missing column", "user_id,email\nuz,uz@example.com\n", "line 1"),
            ("short row", "user_id,email,last_active\nuz,2025-01-01\n", "line 2"),
            ("bad date", "user_id,email,last_active\nuz,uz@example.com,2025-02-30\n", "line 2"),
            ("bad date format", "user_id,email,last_active\nuy,uy@example.com,2025-01-01\nuz,uz@example.com,01/02/2025\n", "line 3"),
            ("bad user id", "user_id,email,last_active\n../uz,uz@example.com,2025-01-01\n", "line 2"),
            ("duplicate user", "user_id,email,last_active\nuz,a@example.com,2025-01-01\nuy,b@example.com,2025-01-01\nuz,c@example.com,2025-01-02\n", "line 4"),
        ]
        for (i, (what, csv, where_)) in cases.enumerated() {
            let src = s.dir + "/bad\(i)"
            try makeSource(at: src, users: [SourceUser(id: "uz", lastActive: inactiveDate, files: sampleFiles(seed: 40)),
                                            SourceUser(id: "uy", lastActive: inactiveDate, files: sampleFiles(seed: 41))])
            try write(csv, to: src + "/accounts.csv", mode: 0o644)
            try assertChangesNothing(s, source: src, what) {
                let r = try s.sv(["archive", "--source", src], day: 1)
                assertOneLineError(r, exit: 65, ["accounts.csv", where_], what)
                if i == 0 {
                    let dry = try s.sv(["archive", "--source", src, "--dry-run"], day: 1)
                    XCTAssertEqual(dry.status, 65, "\(what) (dry run): \(dry.stderr)")
                }
            }
        }
        // A missing source is "not found".
        try assertChangesNothing(s, "missing source") {
            let r = try s.sv(["archive", "--source", s.dir + "/nowhere"], day: 1)
            assertOneLineError(r, exit: 66, ["nowhere"], "missing source")
        }
    }

    /// The "changes nothing" snapshot itself can fail: a change to one byte of the keyring, the keystore, the catalog's
    /// WAL-backed database or the lock file is seen and named.
    func testChangesNothingSeesEveryOwnedFile() throws {
        let config = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: s.vault + "/config"))) as? [String: Any])
        let keyring = try XCTUnwrap(config["keyringPath"] as? String)
        for path in [keyring, s.keystore, s.catalog, s.vault + "/lock", s.vault + "/config"] {
            let before = try VaultSnapshot(s)
            let original = try Data(contentsOf: URL(fileURLWithPath: path))
            var changed = original
            // In a SQLite file, the header's user_version (offset 60-63, unused by the vault): a changed byte there
            // leaves the database readable, so only the byte comparison can see it.
            // In the JSON config, a digit (still a digit after the flip), so the file stays readable too.
            if changed.isEmpty { changed.append(0) } else if path.hasSuffix(".db") { changed[63] ^= 0x01 } else if path.hasSuffix("/config"),
                let digit = changed.indices.first(where: { $0 >= changed.count / 2 && (0x30...0x39).contains(changed[$0]) }) {
                changed[digit] ^= 0x01
            } else { changed[changed.count / 2] ^= 0x01 }
            try changed.write(to: URL(fileURLWithPath: path))
            let after = try VaultSnapshot(s)
            try original.write(to: URL(fileURLWithPath: path))
            XCTAssertNotEqual(before, after, "a changed byte of \(path) is seen")
            XCTAssertTrue(before.differences(after).contains("file \(path) changed"), "\(path): \(before.differences(after))")
            XCTAssertEqual(try VaultSnapshot(s), before, "\(path) restored")
        }
    }

    func testUnknownUser() throws {
        // Every mutating job first runs the day's sweep, which records when it ran: let it run for day 1 here, so the
        // refused commands below have nothing at all to change.
        assertSuccess(try s.sv(["sweep"], day: 1), "the day-1 sweep")
        try assertChangesNothing(s, "unknown user") {
            assertOneLineError(try s.sv(["delete", "nobody", "--request-id", "R9"], day: 1), exit: 66, ["nobody"], "delete unknown user")
            assertOneLineError(try s.svk(["restore", "nobody", "--case", "C1", "--to", s.dir + "/out"], day: 1), exit: 66, ["nobody"],
                               "restore unknown user")
            assertOneLineError(try s.svk(["hold", "place", "nobody", "--case", "C7", "--reason", "r"], day: 1), exit: 66, ["nobody"],
                               "hold place unknown user")
        }
        let status = try s.sv(["status"], day: 1)
        XCTAssertEqual(status.json?["openDeletionRequests"] as? Int, 0, "no request recorded for an unknown user: \(status.stdout)")
        // A vault that does not exist.
        let r = try runShredvault(["status", "--vault", s.dir + "/novault", "--now", SimDay.now(1)])
        assertOneLineError(r, exit: 66, ["novault"], "missing vault")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir + "/novault"), "a missing vault is not created")
    }

    func testWrongOrExposedRestoreKey() throws {
        // Another vault's restore key.
        let other = try Scenario(self)
        try other.initVault()
        try assertChangesNothing(s, "wrong restore key") {
            let r = try s.sv(["restore", "ua", "--case", "C1", "--to", s.dir + "/out"], day: 1, key: other.keyFile)
            assertOneLineError(r, exit: 77, ["restore key"], "restore with another vault's key")
            let h = try s.sv(["hold", "place", "ub", "--case", "C2", "--reason", "r"], day: 1, key: other.keyFile)
            assertOneLineError(h, exit: 77, ["restore key"], "hold place with another vault's key")
            let c = try s.sv(["check", "--read-data"], day: 1, key: other.keyFile)
            assertOneLineError(c, exit: 77, ["restore key"], "check --read-data with another vault's key")
        }
        // The right key, readable by others: refused, whether named by flag or by environment.
        for mode in [0o644, 0o640] {
            let exposed = s.dir + "/secrets/exposed-\(String(mode, radix: 8)).key"
            try FileManager.default.copyItem(atPath: s.keyFile, toPath: exposed)
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: exposed)
            try assertChangesNothing(s, "restore key mode \(String(mode, radix: 8))") {
                let r = try s.sv(["restore", "ua", "--case", "C1", "--to", s.dir + "/out"], day: 1, key: exposed)
                assertOneLineError(r, exit: 77, [exposed], "restore key with mode \(String(mode, radix: 8))")
                let e = try s.sv(["restore", "ua", "--case", "C1", "--to", s.dir + "/out"], day: 1,
                                 environment: ["SHREDVAULT_MASTER_KEY_FILE": exposed])
                assertOneLineError(e, exit: 77, [exposed], "restore key via env with mode \(String(mode, radix: 8))")
            }
            try FileManager.default.removeItem(atPath: exposed)
        }
        // The right key still works: the refusals were about the key.
        assertSuccess(try restoreA(), "restore with the right key")
    }

    func testCorruptedTruncatedAndMovedBundles() throws {
        let a = try bundle("ua"), b = try bundle("ub")
        let good = try Data(contentsOf: URL(fileURLWithPath: a.path))
        let other = try Data(contentsOf: URL(fileURLWithPath: b.path))
        // The same user id archived by another vault.
        let otherVault = try Scenario(self)
        try otherVault.writeSource([SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 31))])
        try otherVault.initVault()
        assertSuccess(try otherVault.sv(["archive", "--source", otherVault.source], day: 0), "archive in another vault")
        let foreign = try Data(contentsOf: URL(fileURLWithPath: otherVault.bundlePath(try XCTUnwrap(try otherVault.listed(user: "ua", day: 0).first))))
        var flipped = good
        flipped[good.count / 2] ^= 0x01
        var header = good
        header[40] ^= 0x80
        let cases: [(String, Data, [String])] = [
            // Restore hashes the file while it decrypts it (vault-format.md §3.10): the chunk fails to authenticate
            // first, but the refusal still names the cause, the file's SHA-256.
            ("flipped byte", flipped, [a.id, "SHA-256 differs from the catalog"]),
            ("flipped header byte", header, [a.id]),
            ("truncated", good.prefix(good.count / 2), [a.id]),
            ("truncated by one byte", good.dropLast(), [a.id]),
            ("extended", good + Data([0]), [a.id]),
            ("another user's bundle at ua's path", other, ["does not match the catalog"]),
            ("ua's bundle from another vault", foreign, ["does not match the catalog"]),
        ]
        // The day-1 sweep first (every mutating job runs it and records when it ran), so the refused restores below
        // have nothing at all to change.
        assertSuccess(try s.sv(["sweep"], day: 1), "the day-1 sweep")
        for (i, (what, bytes, needles)) in cases.enumerated() {
            try bytes.write(to: URL(fileURLWithPath: a.path))
            try assertChangesNothing(s, what, allowingCheckRecord: true) {
                assertOneLineError(try restoreA(), exit: 65, needles, "restore, \(what)")
                if i == 0 {
                    let check = try s.sv(["check"], day: 1, json: false)
                    XCTAssertEqual(check.status, 2, "check, \(what): \(check.stdout) \(check.stderr)")
                    XCTAssertTrue((check.stdout + check.stderr).contains(a.id), "check names the bundle, \(what): \(check.stdout) \(check.stderr)")
                }
                let json = try s.sv(["check"], day: 1)
                XCTAssertEqual(json.status, 2)
                XCTAssertEqual(json.json?["ok"] as? Bool, false, json.stdout)
                let subjects = ((json.json?["violations"] as? [[String: Any]]) ?? []).compactMap { $0["subject"] as? String }
                XCTAssertTrue(subjects.contains { $0.contains(a.id) }, "violation names the bundle, \(what): \(json.stdout)")
                XCTAssertFalse(subjects.contains { $0.contains(b.id) }, "ub's bundle is fine, \(what): \(json.stdout)")
            }
        }
        // A missing bundle file: not found (66), and check names it.
        try FileManager.default.removeItem(atPath: a.path)
        try assertChangesNothing(s, "missing bundle file", allowingCheckRecord: true) {
            assertOneLineError(try restoreA(), exit: 66, [a.id], "restore, missing bundle file")
            let json = try s.sv(["check"], day: 1)
            XCTAssertEqual(json.status, 2, json.stdout)
            XCTAssertTrue(((json.json?["violations"] as? [[String: Any]]) ?? []).contains { ($0["subject"] as? String ?? "").contains(a.id) },
                          json.stdout)
        }
        // Repaired from a replica: everything works again.
        try good.write(to: URL(fileURLWithPath: a.path))
        // A damaged DEK sidecar (vault-format.md §3.5) is named by check too.
        let sidecar = String(a.path.dropLast(4)) + ".dek"
        let goodSidecar = try Data(contentsOf: URL(fileURLWithPath: sidecar))
        var badSidecar = goodSidecar
        badSidecar[badSidecar.count - 1] ^= 0x01
        try badSidecar.write(to: URL(fileURLWithPath: sidecar))
        let sidecarCheck = try s.sv(["check"], day: 1)
        XCTAssertEqual(sidecarCheck.status, 2, "check with a damaged sidecar: \(sidecarCheck.stdout)")
        XCTAssertTrue(((sidecarCheck.json?["violations"] as? [[String: Any]]) ?? []).contains { ($0["subject"] as? String ?? "").contains(a.id) },
                      sidecarCheck.stdout)
        try goodSidecar.write(to: URL(fileURLWithPath: sidecar))
        assertSuccess(try s.sv(["check"], day: 1), "check after repair")
        assertSuccess(try restoreA(), "restore after repair")
        XCTAssertEqual(try Tree(s.dir + "/out"), try Tree(s.pristine + "/users/ua"))
    }

    func testUserWithUnarchivableSourceFailsAndKeepsItsData() throws {
        let src = s.dir + "/src3"
        try makeSource(at: src, users: [SourceUser(id: "uy", lastActive: inactiveDate, files: sampleFiles(seed: 60)),
                                        SourceUser(id: "uz", lastActive: inactiveDate, files: sampleFiles(seed: 61))])
        try FileManager.default.createSymbolicLink(atPath: src + "/users/uz/link", withDestinationPath: "/etc/passwd")
        let uzBefore = try FileManager.default.contentsOfDirectory(atPath: src + "/users/uz").sorted()
        let r = try s.sv(["archive", "--source", src], day: 1)
        XCTAssertEqual(r.status, 3, "a user that cannot be archived makes the job partial (exit 3): \(r.stderr)")
        XCTAssertTrue(r.stderr.contains("uz"), r.stderr)
        XCTAssertEqual(((r.json?["failed"] as? [[String: Any]]) ?? []).compactMap { $0["user"] as? String }, ["uz"], r.stdout)
        XCTAssertEqual(((r.json?["archived"] as? [[String: Any]]) ?? []).compactMap { $0["user"] as? String }, ["uy"], "the others are archived")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: src + "/users/uz").sorted(), uzBefore, "uz's source untouched")
        XCTAssertEqual(try s.listed(user: "uz", day: 1).count, 0)
        assertSuccess(try s.sv(["check"], day: 1), "check after a failed user (no orphan bundle file)")
    }

    func testInvalidPolicyCreatesNothing() throws {
        for (args, needle) in [(["--archive-days", "91"], "archive-days"), (["--archive-days", "0"], "archive-days"),
                               (["--holiday", "2026-02-30"], "2026-02-30")] {
            let r = try runShredvault(["init", "--drill", "--vault", s.dir + "/v2", "--master-key-file", s.dir + "/secrets/k2", "--now", SimDay.now(0)] + args)
            // A usage error (ArgumentParser's format: the error, then a usage hint): exit 64, naming the option.
            XCTAssertEqual(r.status, 64, "init \(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(needle), "init \(args): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir + "/v2"), "init \(args) created the vault directory")
            XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir + "/secrets/k2"), "init \(args) created a restore key")
        }
        // init on an existing vault: 73, and the vault is untouched.
        try assertChangesNothing(s, "init over an existing vault") {
            assertOneLineError(try s.sv(["init", "--drill"], day: 1, key: s.keyFile), exit: 73, [s.vault], "init over an existing vault")
        }
    }

    func testRestoreTargetExists() throws {
        try FileManager.default.createDirectory(atPath: s.dir + "/out", withIntermediateDirectories: false)
        try write("keep me\n", to: s.dir + "/out/mine.txt")
        try assertChangesNothing(s, "existing target") {
            assertOneLineError(try restoreA(), exit: 73, [s.dir + "/out"], "restore to an existing target")
        }
        XCTAssertEqual(listing(s.dir + "/out"), ["mine.txt"], "the existing target is untouched")
        try write("file\n", to: s.dir + "/file-target")
        try assertChangesNothing(s, "existing file target") {
            let r = try s.svk(["restore", "ua", "--case", "C1", "--to", s.dir + "/file-target"], day: 1)
            assertOneLineError(r, exit: 73, ["file-target"], "restore to an existing file")
        }
    }

    /// Holds the vault lock from another process (as an overlapping cron run would) until killed; returns once
    /// /proc/locks shows it holding the lock.
    func lockHolder(file: StaticString = #filePath, line: UInt = #line) throws -> SpawnedProcess {
        let script = "import fcntl, sys, time\nf = open(sys.argv[1])\nfcntl.flock(f, fcntl.LOCK_EX)\ntime.sleep(600)\n"
        let holder = try SpawnedProcess("/usr/bin/env", ["python3", "-c", script, s.vault + "/lock"], environment: ProcessInfo.processInfo.environment,
                                        stdout: s.dir + "/holder.out", stderr: s.dir + "/holder.err")
        try waitFor("the holder takes the lock", file: file, line: line) { holder.holdsLock(on: s.vault + "/lock") }
        return holder
    }

    /// Polls `condition` every 10 ms; fails after 120 s (a bound for a stuck test, not a timing assertion).
    func waitFor(_ what: String, file: StaticString = #filePath, line: UInt = #line, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(120)
        while !condition() {
            guard Date() < deadline else {
                XCTFail("timed out waiting until \(what)", file: file, line: line)
                throw NSError(domain: "test", code: 1, userInfo: [NSLocalizedDescriptionKey: "timed out waiting until \(what)"])
            }
            usleep(10_000)
        }
    }

    func testConcurrentRunIsLockedAndLockWaitSucceeds() throws {
        try makeSource(at: s.dir + "/src2", users: [SourceUser(id: "uz", lastActive: inactiveDate, files: sampleFiles(seed: 50))])
        let holder = try lockHolder()
        try assertChangesNothing(s, source: s.dir + "/src2", "locked vault") {
            assertOneLineError(try s.sv(["archive", "--source", s.dir + "/src2"], day: 1), exit: 75, ["lock"], "archive while locked")
            assertOneLineError(try s.sv(["delete", "ub", "--request-id", "R1"], day: 1), exit: 75, ["lock"], "delete while locked")
            assertOneLineError(try s.sv(["sweep"], day: 100), exit: 75, ["lock"], "sweep while locked")
            assertOneLineError(try s.svk(["restore", "ua", "--case", "C1", "--to", s.dir + "/out"], day: 1), exit: 75, ["lock"],
                               "restore while locked")
            // A read-only job takes a shared lock: it waits for (here: is refused by) a job that changes the vault.
            assertOneLineError(try s.sv(["status"], day: 1), exit: 75, ["lock"], "status while locked")
        }
        XCTAssertTrue(holder.holdsLock(on: s.vault + "/lock"), "the lock holder still holds the lock")

        // With --lock-wait the job waits for the lock and then succeeds. That it waits is observed, not timed: it has
        // the lock file open, does not hold the lock, and has not exited, while the holder holds it.
        let waiter = try SpawnedProcess.shredvault(["archive", "--source", s.dir + "/src2", "--vault", s.vault, "--now", SimDay.now(1),
                                                    "--json", "--lock-wait", "600"], logs: s.dir + "/waiter")
        try waitFor("the waiting job has opened the lock file") { waiter.hasExited() || waiter.hasOpen(s.vault + "/lock") }
        XCTAssertFalse(waiter.hasExited(), "archive --lock-wait 600 waits while the lock is held: \(waiter.stderr)")
        XCTAssertFalse(waiter.holdsLock(on: s.vault + "/lock"), "the waiting job does not hold the lock")
        XCTAssertTrue(FileManager.default.fileExists(atPath: s.dir + "/src2/users/uz"), "nothing archived while waiting")
        usleep(300_000)  // let it retry a few times: it must still be waiting (the holder never let go)
        XCTAssertFalse(waiter.hasExited(), "still waiting: \(waiter.stderr)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: s.dir + "/src2/users/uz"), "nothing archived while waiting")

        XCTAssertTrue(holder.killAndReap(), "the holder was still running when released")
        XCTAssertEqual(waiter.waitUntilExit(), 0, "archive --lock-wait after the lock was released: \(waiter.stderr)")
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(waiter.stdout.utf8)) as? [String: Any], waiter.stdout)
        XCTAssertEqual(((report["archived"] as? [[String: Any]]) ?? []).compactMap { $0["user"] as? String }, ["uz"], waiter.stdout)
    }

    /// Two real `shredvault` processes race for one vault's lock. Without --lock-wait, the one that comes second while
    /// the first holds the lock (observed in /proc/locks, the first frozen there) is refused with exit 75 and changes
    /// nothing; with --lock-wait, several started at once all succeed, one after the other, and every user ends up in
    /// exactly one bundle.
    func testTwoProcessesRaceForTheLock() throws {
        let users = (0..<12).map { SourceUser(id: String(format: "ur%02d", $0), lastActive: inactiveDate, files: sampleFiles(seed: UInt64(70 + $0))) }
        try makeSource(at: s.dir + "/src3", users: users)
        let args = ["archive", "--source", s.dir + "/src3", "--vault", s.vault, "--now", SimDay.now(1), "--json"]

        // First: one job, frozen while it holds the lock; a second one is refused.
        let first = try SpawnedProcess.shredvault(args, logs: s.dir + "/first")
        var holding = false
        while !holding {
            usleep(200)
            guard first.stop() else { break }
            holding = first.holdsLock(on: s.vault + "/lock")
            if !holding { first.resume() }
        }
        XCTAssertTrue(holding, "the first job took the lock (it exited first: \(first.stderr))")
        let second = try s.sv(["archive", "--source", s.dir + "/src3"], day: 1)
        assertOneLineError(second, exit: 75, ["lock"], "the second job while the first holds the lock")
        first.resume()
        XCTAssertEqual(first.waitUntilExit(), 0, "the first job: \(first.stderr)")
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any], first.stdout)
        XCTAssertEqual(((report["archived"] as? [[String: Any]]) ?? []).count, users.count, first.stdout)

        // Then: three jobs with --lock-wait started together on new work; each takes the lock in turn.
        let more = (0..<12).map { SourceUser(id: String(format: "us%02d", $0), lastActive: inactiveDate, files: sampleFiles(seed: UInt64(90 + $0))) }
        try makeSource(at: s.dir + "/src4", users: more)
        let jobs = try (0..<3).map { i in
            try SpawnedProcess.shredvault(["archive", "--source", s.dir + "/src4", "--vault", s.vault, "--now", SimDay.now(1), "--json",
                                           "--lock-wait", "600"], logs: s.dir + "/racer-\(i)")
        }
        var archivedBy: [String: Int] = [:]
        for (i, job) in jobs.enumerated() {
            XCTAssertEqual(job.waitUntilExit(), 0, "racer \(i): \(job.stderr)")
            let r = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(job.stdout.utf8)) as? [String: Any], job.stdout)
            for a in (r["archived"] as? [[String: Any]]) ?? [] { archivedBy[a["user"] as? String ?? "?", default: 0] += 1 }
        }
        XCTAssertEqual(archivedBy, Dictionary(uniqueKeysWithValues: more.map { ($0.id, 1) }), "every user archived by exactly one job")
        for u in users + more { XCTAssertEqual(try s.listed(user: u.id, day: 1).count, 1, "\(u.id): one live bundle") }
        assertSuccess(try s.svk(["check", "--read-data"], day: 1), "check --read-data after the race")
    }
}
