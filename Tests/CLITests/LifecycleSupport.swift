import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

// Support for the lifecycle scenario tests (Lifecycle*Tests.swift): each scenario drives the built `shredvault`
// binary on temporary directories with a simulated clock (`--now`), so its vault is a drill vault (`init --drill`):
// a production vault refuses a simulated clock for every job that changes it (ClockGuardTests).

// MARK: - Simulated clock

/// Day 0 of every scenario is 2026-11-29 (a Sunday), the sample generator's default reference day.
enum SimDay {
    static let day0 = daysFromCivil(2026, 11, 29)

    /// `YYYY-MM-DD` of day `n` (day 0 = 2026-11-29).
    static func iso(_ n: Int) -> String {
        let (y, m, d) = civil(day0 + n)
        return String(format: "%04d-%02d-%02d", y, m, d)
    }

    /// The `--now` value for day `n` at `time` UTC.
    static func now(_ n: Int, _ time: String = "12:00:00") -> String { iso(n) + "T" + time + "Z" }

    static func daysFromCivil(_ year: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    /// Days since 1970-01-01 of an ISO date (comparable with `day0`), for inactivity checks.
    static func days(iso: String) -> Int? {
        let p = iso.split(separator: "-").compactMap { Int($0) }
        guard p.count == 3 else { return nil }
        return daysFromCivil(p[0], p[1], p[2])
    }
}

// MARK: - Running the binary

/// Runs the built `shredvault` with a clean environment: no inherited `SHREDVAULT_*` variable leaks into a
/// scenario (so "no restore key configured" really means none), plus `environment`.
func runShredvault(_ arguments: [String], environment: [String: String] = [:]) throws -> CLI.Result {
    try CLI.execute(CLI.binary, arguments, environment: environment, scrubbed: true)
}

/// A scenario's directories: `dir/vault`, the restore key in `dir/secrets/restore.key` (outside the vault),
/// the source in `dir/src` and an untouched copy of it in `dir/pristine`.
final class Scenario {
    let dir: String
    var vault: String { dir + "/vault" }
    var keyFile: String { dir + "/secrets/restore.key" }
    var source: String { dir + "/src" }
    var pristine: String { dir + "/pristine" }
    var keystore: String { vault + "/keys/keystore.db" }
    var catalog: String { vault + "/catalog.db" }

    init(_ test: XCTestCase) throws {
        dir = try temporaryDirectory(test)
        try FileManager.default.createDirectory(atPath: dir + "/secrets", withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o700])
    }

    /// `shredvault ARGS --vault VAULT --now DAY [--master-key-file KEY] [--json]`. The restore key is passed only
    /// when `key` is given: jobs that do not decrypt run without it, as the nightly cron job would.
    /// `now` overrides the clock text (e.g. an ISO-8601 time with a zone offset).
    func sv(_ args: [String], day: Int, time: String = "12:00:00", now: String? = nil, key: String? = nil, json: Bool = true,
            extra: [String] = [], environment: [String: String] = [:]) throws -> CLI.Result {
        var a = args + ["--vault", vault, "--now", now ?? SimDay.now(day, time)]
        if let key { a += ["--master-key-file", key] }
        if json { a.append("--json") }
        return try runShredvault(a + extra, environment: environment)
    }

    /// Same, with the restore key.
    func svk(_ args: [String], day: Int, time: String = "12:00:00", json: Bool = true) throws -> CLI.Result {
        try sv(args, day: day, time: time, key: keyFile, json: json)
    }

    /// `init --drill` with the restore key file (created if absent): a drill vault, whose clock `--now` may set.
    func initVault(day: Int = 0, extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try sv(["init", "--drill"] + extra, day: day, key: keyFile)
        assertSuccess(r, "init", file: file, line: line)
    }

    /// The live bundles `list --json` reports (one JSON object per line), optionally of one user.
    func listed(user: String? = nil, day: Int, file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
        let r = try sv(["list"] + (user.map { ["--user", $0] } ?? []), day: day)
        assertSuccess(r, "list", file: file, line: line)
        return jsonLines(r.stdout)
    }

    /// Writes a source and keeps a pristine copy of it (archive removes `src/users/<id>`).
    func writeSource(_ users: [SourceUser]) throws {
        try makeSource(at: source, users: users)
        try? FileManager.default.removeItem(atPath: pristine)
        try FileManager.default.copyItem(atPath: source, toPath: pristine)
    }

    func bundlePath(_ listedBundle: [String: Any]) -> String {
        vault + "/" + ((listedBundle["location"] as? String) ?? "?")
    }
}

// MARK: - Assertions

func assertSuccess(_ r: CLI.Result, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(r.status, 0, "\(what) failed: exit \(r.status)\nstderr: \(r.stderr)\nstdout: \(r.stdout.prefix(2000))", file: file, line: line)
}

/// A failure: the documented exit code and exactly one clear line on stderr (`shredvault: error: ...`) that
/// contains every needle.
func assertOneLineError(_ r: CLI.Result, exit code: Int32, _ needles: [String], _ what: String,
                        file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(r.status, code, "\(what): expected exit \(code), got \(r.status); stderr: \(r.stderr) stdout: \(r.stdout.prefix(500))",
                   file: file, line: line)
    let lines = r.stderr.split(separator: "\n", omittingEmptySubsequences: true)
    XCTAssertEqual(lines.count, 1, "\(what): expected one line on stderr, got: \(r.stderr)", file: file, line: line)
    XCTAssertTrue(r.stderr.hasPrefix("shredvault: error: "), "\(what): stderr should start with 'shredvault: error: ': \(r.stderr)",
                  file: file, line: line)
    for needle in needles {
        XCTAssertTrue(r.stderr.contains(needle), "\(what): stderr should mention '\(needle)': \(r.stderr)", file: file, line: line)
    }
}

/// Parses one JSON object per non-empty line.
func jsonLines(_ text: String) -> [[String: Any]] {
    text.split(separator: "\n").compactMap {
        (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
    }
}

// MARK: - Sources

struct SourceUser {
    var id: String
    var lastActive: String
    /// Relative path → contents; nil = no `users/<id>` directory at all.
    var files: [String: Data]?
}

/// Writes `accounts.csv` (user_id,email,plan,last_active) and `users/<id>/...`.
func makeSource(at path: String, users: [SourceUser]) throws {
    let fm = FileManager.default
    try fm.createDirectory(atPath: path + "/users", withIntermediateDirectories: true)
    var csv = "user_id,email,plan,last_active\n"
    for u in users {
        csv += "\(u.id),\(u.id)@example.com,free,\(u.lastActive)\n"
        guard let files = u.files else { continue }
        let base = path + "/users/" + u.id
        try fm.createDirectory(atPath: base, withIntermediateDirectories: true)
        for (rel, data) in files {
            let full = base + "/" + rel
            if rel.hasSuffix("/") {
                try fm.createDirectory(atPath: full, withIntermediateDirectories: true)
                continue
            }
            try fm.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try data.write(to: URL(fileURLWithPath: full))
        }
    }
    try write(csv, to: path + "/accounts.csv", mode: 0o644)
}

/// Deterministic pseudo-random bytes (xorshift64*); `text` keeps them printable.
func pseudoRandom(_ count: Int, seed: UInt64, text: Bool = false) -> Data {
    var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    var out = Data(capacity: count)
    for _ in 0..<count {
        x ^= x >> 12; x ^= x << 25; x ^= x >> 27
        let b = UInt8(truncatingIfNeeded: (x &* 0x2545_F491_4F6C_DD1D) >> 56)
        out.append(text ? (b % 10 == 0 ? 0x0a : 0x20 + b % 94) : b)
    }
    return out
}

/// A varied user export: nested directories, binary and text, an empty file, an empty directory (a path ending
/// in "/"), a non-ASCII name, files that cross 16 KiB chunk boundaries.
func sampleFiles(seed: UInt64) -> [String: Data] {
    [
        "profile.json": Data("{\"name\":\"User \(seed)\",\"email\":\"u\(seed)@example.com\"}\n".utf8),
        "calls/c1/recording.wav": pseudoRandom(40_000 + Int(seed % 7) * 1000, seed: seed),
        "calls/c1/transcript.txt": pseudoRandom(3_000, seed: seed + 1, text: true),
        "usage/events.jsonl": pseudoRandom(20_000, seed: seed + 2, text: true),
        "messages/données-日本語 ✓.txt": Data("bonjour \(seed)\n".utf8),
        "attachments/empty.bin": Data(),
        "attachments/empty folder/": Data(),
    ]
}

/// Inactive on day 0 (2026-11-29) with the default 365-day threshold.
let inactiveDate = "2025-06-01"
/// Active on day 0.
let activeDate = "2026-11-01"

// MARK: - Trees and bytes

/// A directory tree's contents by relative path (directories map to nil), for byte-identical comparison.
struct Tree: Equatable, CustomStringConvertible {
    var entries: [String: Data?] = [:]
    /// Every relative path's UTF-8 bytes, sorted: String keys (Unicode canonical equivalence) cannot tell "é" from
    /// "e" + U+0301, two different files.
    var names: [[UInt8]] = []

    /// Walks with opendir/readdir and reads with open/read: Foundation's enumerator and URL paths treat a name that
    /// starts with a combining mark as part of the "/" before it.
    init(_ root: String) throws {
        func walk(_ rel: String?) throws {
            let dir = rel.map { root + "/" + $0 } ?? root
            guard let handle = opendir(dir) else { return }
            defer { closedir(handle) }
            while let entry = readdir(handle) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                if name == "." || name == ".." { continue }
                let child = rel.map { $0 + "/" + name } ?? name
                var st = stat(), target = stat()
                guard lstat(root + "/" + child, &st) == 0 else { continue }
                names.append(Array(child.utf8))
                if st.st_mode & S_IFMT == S_IFDIR {
                    entries[child] = Optional<Data>.none
                    try walk(child)
                } else if st.st_mode & S_IFMT == S_IFLNK, stat(root + "/" + child, &target) == 0, target.st_mode & S_IFMT == S_IFDIR {
                    entries[child] = Optional<Data>.none  // a link to a directory: listed, not followed
                } else {
                    entries[child] = try readWholeFile(root + "/" + child)
                }
            }
        }
        try walk(nil)
        names.sort { $0.lexicographicallyPrecedes($1) }
    }

    var fileCount: Int { entries.values.filter { $0 != nil }.count }
    var description: String {
        entries.keys.sorted().map { "\($0)\(entries[$0]! == nil ? "/" : " (\(entries[$0]!!.count) B)")" }.joined(separator: ", ")
    }
}

/// A file's bytes through open(2)/read(2), the path's bytes as given.
func readWholeFile(_ path: String) throws -> Data {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw NSError(domain: NSPOSIXErrorDomain, code: Int(errno), userInfo: [NSFilePathErrorKey: path]) }
    defer { close(fd) }
    var out = Data()
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { throw NSError(domain: NSPOSIXErrorDomain, code: Int(errno), userInfo: [NSFilePathErrorKey: path]) }
        if n == 0 { return out }
        out.append(contentsOf: buffer[0..<n])
    }
}

/// Every regular file under `root` (recursive, hidden files included), as absolute paths.
func regularFiles(under root: String) -> [String] {
    let fm = FileManager.default
    guard let e = fm.enumerator(atPath: root) else { return [] }
    var out: [String] = []
    while let rel = e.nextObject() as? String {
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: root + "/" + rel, isDirectory: &isDir), !isDir.boolValue { out.append(root + "/" + rel) }
    }
    return out.sorted()
}

/// Files under `root` whose raw bytes contain `needle` anywhere (whole files: live pages, free pages, journals).
func filesContaining(_ needle: Data, under root: String) throws -> [String] {
    try regularFiles(under: root).filter { try Data(contentsOf: URL(fileURLWithPath: $0)).range(of: needle) != nil }
}

func hexData(_ hex: String) -> Data {
    var out = Data()
    var chars = Array(hex.utf8)[...]
    while chars.count >= 2 {
        let s = String(decoding: chars.prefix(2), as: UTF8.self)
        out.append(UInt8(s, radix: 16) ?? 0)
        chars = chars.dropFirst(2)
    }
    return out
}

func fileMode(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

// MARK: - SQLite (read through Debian's python3, which tools/setup installs; no GRDB in the test target)

/// Rows of `sql` on the database at `path`, columns tab-separated, blobs as lowercase hex, NULL as "NULL".
/// `readOnly` opens with `mode=ro` so nothing (no journal) is created beside the file.
func sqliteRows(_ path: String, _ sql: String, readOnly: Bool = true) throws -> [String] {
    let script = """
        import sqlite3, sys
        path, sql, ro = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
        con = sqlite3.connect("file:" + path + "?mode=ro", uri=True) if ro else sqlite3.connect(path)
        for row in con.execute(sql):
            print("\\t".join(v.hex() if isinstance(v, bytes) else ("NULL" if v is None else repr(v)) for v in row))
        con.close()
        """
    let r = try CLI.execute("/usr/bin/env", ["python3", "-c", script, path, sql, readOnly ? "1" : "0"])
    guard r.status == 0 else { throw NSError(domain: "sqlite", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: r.stderr]) }
    return r.stdout.split(separator: "\n").map(String.init)
}

/// Every row of every table except `except` (one python start), each as "table<TAB>repr(row)", sorted.
func sqliteDump(_ path: String, except: [String]) throws -> [String] {
    let script = """
        import sqlite3, sys
        con = sqlite3.connect(sys.argv[1])
        skip = set(sys.argv[2:])
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        for t in tables:
            if t in skip: continue
            for row in con.execute('SELECT * FROM "' + t + '"'):
                print(t + "\\t" + repr(tuple(v.hex() if isinstance(v, bytes) else v for v in row)))
        con.close()
        """
    let r = try CLI.execute("/usr/bin/env", ["python3", "-c", script, path] + except)
    guard r.status == 0 else { throw NSError(domain: "sqlite", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: r.stderr]) }
    return r.stdout.split(separator: "\n").map(String.init).sorted()
}

// MARK: - "Changes nothing"

/// What a failed or dry-run command must leave unchanged: every file the vault owns, byte for byte — the vault
/// directory (config, master.pub, the catalog database and its WAL, the keystore and its journal, bundles and
/// sidecars, the lock file), and the keystore and the keyring with every file beside them wherever the config puts
/// them (by default the keyring sits beside the restore key, which is covered too) — and, as a readable diff, the
/// catalog's rows. Only SQLite's shared-memory WAL index (`*-shm`) is left out: SQLite rewrites it on every open, even
/// a read-only one; it holds no data (the WAL and the database do).
struct VaultSnapshot: Equatable {
    /// Absolute path → bytes.
    var files: [String: Data] = [:]
    var catalogRows: [String] = []

    /// The directories a vault's files live in: the vault, and the directories of its keystore and keyring.
    static func ownedRoots(_ s: Scenario) throws -> [String] {
        var roots = [s.vault]
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: s.vault + "/config"))) as? [String: Any]
        for key in ["keystorePath", "keyringPath"] {
            guard var path = config?[key] as? String else {
                if key == "keyringPath" { XCTFail("the vault config names no keyringPath") }
                continue
            }
            if !path.hasPrefix("/") { path = s.vault + "/" + path }
            let parent = (path as NSString).deletingLastPathComponent
            XCTAssertTrue(FileManager.default.fileExists(atPath: path), "\(key) \(path) exists")
            if !roots.contains(where: { parent == $0 || parent.hasPrefix($0 + "/") }) { roots.append(parent) }
        }
        return roots
    }

    init(_ s: Scenario) throws {
        for root in try Self.ownedRoots(s) {
            for path in regularFiles(under: root) where !path.hasSuffix("-shm") {
                files[path] = try Data(contentsOf: URL(fileURLWithPath: path))
            }
        }
        XCTAssertNotNil(files.keys.first { $0.hasSuffix("/keystore.db") }, "the snapshot holds the keystore")
        XCTAssertNotNil(files.keys.first { $0.hasPrefix(s.dir + "/secrets/") && $0 != s.keyFile }, "the snapshot holds the keyring")
        // The rows, read from a copy of the catalog and its WAL: opening the vault's own files, even read-only, can
        // create or remove a WAL file and would change what is being compared.
        let copy = NSTemporaryDirectory() + "shredvault-snapshot-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: copy) }
        for suffix in ["", "-wal"] {
            if let bytes = files[s.catalog + suffix] { try bytes.write(to: URL(fileURLWithPath: copy + "/catalog.db" + suffix)) }
        }
        catalogRows = try sqliteDump(copy + "/catalog.db", except: [])
    }

    func differences(_ other: VaultSnapshot) -> String {
        var d: [String] = []
        for k in Set(files.keys).union(other.files.keys).sorted() where files[k] != other.files[k] {
            d.append("file \(k) \(files[k] == nil ? "appeared" : other.files[k] == nil ? "disappeared" : "changed")")
        }
        let a = Set(catalogRows), b = Set(other.catalogRows)
        d += a.subtracting(b).sorted().map { "catalog row gone: \($0)" }
        d += b.subtracting(a).sorted().map { "catalog row added: \($0)" }
        return d.joined(separator: "\n")
    }
}

extension VaultSnapshot {
    /// The snapshot without what a `check` records (its outcome in the catalog's `meta`, read by `status --health`):
    /// the rows `lastCheckAt`, `lastCheckOk`, `lastSuccessAt.check` and `lastDurationSeconds.check`, and the catalog's
    /// bytes (its rows are still compared).
    func withoutCheckRecord(_ s: Scenario) -> VaultSnapshot {
        var copy = self
        copy.files = files.filter { $0.key != s.catalog && $0.key != s.catalog + "-wal" }
        copy.catalogRows = catalogRows.filter { row in
            !["lastCheckAt", "lastCheckOk", "lastSuccessAt.check", "lastDurationSeconds.check"].contains { row.hasPrefix("meta\t('\($0)'") }
        }
        return copy
    }
}

/// Asserts the vault (and optionally a source) did not change across `body`; with `allowingCheckRecord`, except for
/// the outcome a `check` in `body` records.
func assertChangesNothing(_ s: Scenario, source: String? = nil, _ what: String, allowingCheckRecord: Bool = false,
                          file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void) throws {
    var before = try VaultSnapshot(s)
    let sourceBefore = try source.map { try Tree($0) }
    let parentBefore = listing(s.dir)
    try body()
    var after = try VaultSnapshot(s)
    if allowingCheckRecord {
        before = before.withoutCheckRecord(s)
        after = after.withoutCheckRecord(s)
    }
    XCTAssertEqual(before, after, "\(what) changed the vault:\n\(before.differences(after))", file: file, line: line)
    if let source, let sourceBefore {
        XCTAssertEqual(try Tree(source), sourceBefore, "\(what) changed the source", file: file, line: line)
    }
    XCTAssertEqual(listing(s.dir), parentBefore, "\(what) left something in the scenario directory", file: file, line: line)
}
