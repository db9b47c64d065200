import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// One user's trouble stays that user's (issue #12 item 4). Each test archives three users, one of them with a problem:
/// the other two are archived, the one is named on stderr and in the JSON report together with the file concerned,
/// keeps its source and leaves nothing in the vault, the job exits 3 (partial), and once the problem is gone the next
/// run archives it. Day 0 = 2026-11-29.
final class ArchiveIsolationTests: XCTestCase {
    static let users = ["ua", "ub", "uc"]

    func scenario(files: [String: [String: Data]] = [:]) throws -> Scenario {
        let s = try Scenario(self)
        try s.writeSource(Self.users.enumerated().map { i, id in
            SourceUser(id: id, lastActive: inactiveDate, files: files[id] ?? sampleFiles(seed: UInt64(70 + i)))
        })
        try s.initVault()
        return s
    }

    /// The run failed `user` only, naming `path` (stderr and JSON), archived the others, and left the user's source as it was.
    func assertFailedOnly(_ r: CLI.Result, _ user: String, path: String, _ needles: [String], _ s: Scenario,
                          file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(r.status, 3, "a run where one user fails exits 3: \(r.stderr)", file: file, line: line)
        XCTAssertEqual(Scenario.users(r, "failed"), [user], r.stdout, file: file, line: line)
        XCTAssertEqual(((r.json?["failed"] as? [[String: Any]])?.first?["path"] as? String), path, r.stdout, file: file, line: line)
        XCTAssertEqual(Scenario.users(r, "archived"), Self.users.filter { $0 != user }, "the others are archived", file: file, line: line)
        let lines = r.stderr.split(separator: "\n").filter { $0.contains("user \(user) was not archived") }
        XCTAssertEqual(lines.count, 1, r.stderr, file: file, line: line)
        for needle in [path] + needles { XCTAssertTrue(lines.first?.contains(needle) ?? false, "stderr names \(needle): \(r.stderr)", file: file, line: line) }
        XCTAssertEqual(listing(s.source + "/users/" + user), listing(s.pristine + "/users/" + user), "\(user)'s source is kept", file: file, line: line)
        XCTAssertEqual(try s.listed(user: user, day: 0).count, 0, file: file, line: line)
        XCTAssertEqual(try s.listed(day: 0).count, Self.users.count - 1, file: file, line: line)
        // Nothing of the failed user is left in the vault: no bundle file, no 'writing' row.
        assertSuccess(try s.sv(["check"], day: 0), "check after the failed user", file: file, line: line)
        XCTAssertEqual(try sqliteRows(s.catalog, "SELECT count(*) FROM bundles WHERE user_id = '\(user)'"), ["0"], file: file, line: line)
    }

    /// The next run, without the problem, archives the user; a restore gives its files back.
    func assertArchivedOnRerun(_ s: Scenario, _ user: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let rerun = try s.sv(["archive", "--source", s.source], day: 0)
        assertSuccess(rerun, "archive once the problem is gone", file: file, line: line)
        XCTAssertEqual(Scenario.users(rerun, "archived"), [user], rerun.stdout, file: file, line: line)
        assertSuccess(try s.svk(["hold", "place", user, "--case", "C1", "--reason", "check"], day: 0), "hold", file: file, line: line)
        assertSuccess(try s.svk(["restore", user, "--case", "C1", "--to", s.dir + "/restored"], day: 0), "restore", file: file, line: line)
        XCTAssertEqual(try Tree(s.dir + "/restored"), try Tree(s.pristine + "/users/" + user), file: file, line: line)
    }

    func testAnUnreadableFileFailsOnlyItsUser() throws {
        let s = try scenario()
        let secret = s.source + "/users/ub/calls/c1/transcript.txt"
        XCTAssertEqual(chmod(secret, 0), 0)
        try assertFailedOnly(try s.svWithoutOverride(["archive", "--source", s.source], day: 0), "ub", path: secret,
                             ["cannot be read", "Permission denied"], s)
        XCTAssertEqual(chmod(secret, 0o644), 0)
        XCTAssertEqual(try Tree(s.source + "/users/ub"), try Tree(s.pristine + "/users/ub"))
        try assertArchivedOnRerun(s, "ub")
    }

    func testADirectoryThatCannotBeListedFailsOnlyItsUser() throws {
        let s = try scenario()
        let calls = s.source + "/users/ua/calls"
        XCTAssertEqual(chmod(calls, 0), 0)
        try assertFailedOnly(try s.svWithoutOverride(["archive", "--source", s.source], day: 0), "ua", path: calls, ["cannot be read"], s)
        XCTAssertEqual(chmod(calls, 0o755), 0)
        try assertArchivedOnRerun(s, "ua")
    }

    /// A file listed by the walk that is gone when it is opened (the chaos shim makes its open fail with ENOENT).
    func testAFileThatVanishesFailsOnlyItsUser() throws {
        let s = try scenario()
        let events = s.source + "/users/uc/usage/events.jsonl"
        let r = try s.svWithShim(["archive", "--source", s.source], day: 0, ["CHAOS_OPEN_FAIL": "ENOENT:/users/uc/usage/events.jsonl"])
        try assertFailedOnly(r, "uc", path: events, ["disappeared while archiving"], s)
        try assertArchivedOnRerun(s, "uc")
    }

    /// A bundle that does not read back as it was written (the chaos shim inverts a byte of every read of the first
    /// bundle file opened, as a bad disk or cache would): with one worker that is the first user's.
    func testABundleThatDoesNotReadBackFailsOnlyItsUser() throws {
        let s = try scenario()
        let r = try s.svWithShim(["archive", "--source", s.source, "--jobs", "1"], day: 0, ["CHAOS_READ_FLIP": ".svb"])
        try assertFailedOnly(r, "ua", path: s.source + "/users/ua", ["did not read back as written"], s)
        XCTAssertEqual(try Tree(s.source + "/users/ua"), try Tree(s.pristine + "/users/ua"))
        try assertArchivedOnRerun(s, "ua")
    }

    /// File names are bytes: "é" as one code point (NFC) and as "e" + combining acute (NFD) are two files, and so are a
    /// "K" and a Kelvin sign. They are archived side by side, without failing the user or the run, and restored under
    /// their own bytes with their own contents. (Swift Strings compare and hash such names as equal, so the test keeps
    /// them in arrays and compares bytes.)
    func testNamesThatDifferOnlyByNormalisationAreArchivedAndRestoredByteForByte() throws {
        let s = try scenario()
        let names = ["caf\u{E9}.txt", "cafe\u{301}.txt", "\u{212A}.txt", "K.txt"]
        let dirs = ["dir\u{E9}", "dire\u{301}"]
        for base in [s.source + "/users/ub", s.pristine + "/users/ub"] {
            for (i, name) in names.enumerated() { try writeExactly(base + "/" + name, "spelling \(i)\n") }
            for (i, dir) in dirs.enumerated() {
                XCTAssertEqual(mkdir(base + "/" + dir, 0o755), 0)
                for (j, name) in names.prefix(2).enumerated() { try writeExactly(base + "/" + dir + "/" + name, "dir \(i) spelling \(j)\n") }
            }
        }
        let source = s.pristine + "/users/ub"
        XCTAssertEqual(Set(try rawNames(source)).isSuperset(of: (names + dirs).map { Array($0.utf8) }), true, "the file system keeps every spelling apart")

        let r = try s.sv(["archive", "--source", s.source], day: 0)
        XCTAssertEqual(Scenario.users(r, "failed"), [], r.stderr)
        XCTAssertEqual(Scenario.users(r, "archived"), Self.users, r.stdout)
        assertSuccess(r, "archive with canonically equivalent names")
        assertSuccess(try s.svk(["hold", "place", "ub", "--case", "C1", "--reason", "check"], day: 0), "hold")
        let target = s.dir + "/restored"
        assertSuccess(try s.svk(["restore", "ub", "--case", "C1", "--to", target], day: 0), "restore")
        for dir in [""] + dirs.map({ "/" + $0 }) {
            let restored = try rawNames(target + dir)
            XCTAssertEqual(restored, try rawNames(source + dir), "names in ub\(dir) restored byte for byte")
            for name in restored where isRegularFile(source + dir, name) {
                XCTAssertEqual(try readFile(in: target + dir, rawName: name), try readFile(in: source + dir, rawName: name),
                               "contents of \(String(decoding: name, as: UTF8.self).unicodeScalars.map { String($0.value, radix: 16) })")
            }
        }
    }

    /// A committed user whose source cannot be removed (a read-only export directory) is archived, reported by every
    /// run (stderr, JSON `sourcesNotRemoved`, exit 3) and by `status` until a run removes it.
    func testASourceThatCannotBeRemovedIsReportedUntilItIsRemoved() throws {
        let s = try scenario()
        let ub = s.source + "/users/ub"
        if let problem = makeReadOnly(ub, self) { return XCTFail(problem) }
        for run in 1...2 {
            let r = try s.sv(["archive", "--source", s.source], day: 0)
            XCTAssertEqual(r.status, 3, "run \(run): \(r.stderr)")
            XCTAssertEqual(Scenario.users(r, "archived"), run == 1 ? Self.users : [], "run \(run)")
            XCTAssertEqual(Scenario.users(r, "failed"), [], "run \(run)")
            XCTAssertEqual(Scenario.users(r, "sourcesNotRemoved"), ["ub"], "run \(run): \(r.stdout)")
            XCTAssertEqual((r.json?["sourcesNotRemoved"] as? [[String: Any]])?.first?["path"] as? String, ub)
            XCTAssertTrue(r.stderr.split(separator: "\n").contains { $0.contains("user ub") && $0.contains(ub) && $0.contains("could not be removed") },
                          "run \(run): \(r.stderr)")
            XCTAssertEqual(r.json?["removedSources"] as? Int, run == 1 ? 2 : 0)
            XCTAssertEqual(try sqliteRows(s.catalog, "SELECT user_id, source_state FROM bundles ORDER BY user_id"),
                           ["'ua'\t'removed'", "'ub'\t'pending-removal'", "'uc'\t'removed'"], "run \(run)")
            let status = try s.sv(["status"], day: 0)
            assertSuccess(status, "status")
            XCTAssertEqual(((status.json?["sourcesPendingRemoval"] as? [[String: Any]]) ?? []).compactMap { $0["user"] as? String }, ["ub"])
            XCTAssertTrue(status.stderr.contains("user ub was archived"), status.stderr)
        }
        XCTAssertEqual(try Tree(ub), try Tree(s.pristine + "/users/ub"), "nothing was half-removed")
        makeWritable(ub)
        let r = try s.sv(["archive", "--source", s.source], day: 0)
        assertSuccess(r, "archive once the source can be removed")
        XCTAssertEqual(Scenario.users(r, "sourcesNotRemoved"), [])
        XCTAssertFalse(FileManager.default.fileExists(atPath: ub), "the source is removed")
        XCTAssertEqual(try sqliteRows(s.catalog, "SELECT count(*) FROM bundles WHERE source_state != 'removed'"), ["0"])
        let status = try s.sv(["status"], day: 0)
        XCTAssertEqual((status.json?["sourcesPendingRemoval"] as? [Any])?.count, 0, status.stdout)
        XCTAssertEqual(status.stderr, "")
    }
}

/// Writes a new file at exactly this path (its bytes as given: no Foundation path handling in between).
private func writeExactly(_ path: String, _ text: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
    guard fd >= 0 else { throw NSError(domain: "open", code: Int(errno), userInfo: [NSLocalizedDescriptionKey: path]) }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    XCTAssertEqual(Glibc.write(fd, bytes, bytes.count), bytes.count)
}

private func isRegularFile(_ directory: String, _ rawName: [UInt8]) -> Bool {
    let path = Array(directory.utf8) + [0x2f] + rawName + [0]
    var st = stat()
    let r = path.withUnsafeBufferPointer { p in p.baseAddress!.withMemoryRebound(to: CChar.self, capacity: p.count) { lstat($0, &st) } }
    return r == 0 && (st.st_mode & S_IFMT) == S_IFREG
}
