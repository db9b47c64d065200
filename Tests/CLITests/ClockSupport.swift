import Foundation
import XCTest

// Support for the tests of the clock guard, the keyring binding and drills (vault-format.md §5.1, §6.4). A production
// vault runs on the real clock: these helpers never pass --now. Its remembered time is moved by writing the catalog's
// `meta` and the keyring's `clock` row directly, which is how a clock that went back or leapt ahead looks to the vault.

/// Inactive on any real date these tests run on.
let longInactiveDate = "2000-01-01"

/// The real clock, in Unix seconds.
func realNow() -> Int64 { Int64(Date().timeIntervalSince1970) }

/// Runs `sql` on the database at `path` and commits (Debian's python3, like `sqliteRows`).
func sqliteExec(_ path: String, _ sql: String) throws {
    let script = """
        import sqlite3, sys
        con = sqlite3.connect(sys.argv[1])
        with con:
            con.executescript(sys.argv[2])
        con.close()
        """
    let r = try CLI.execute("/usr/bin/env", ["python3", "-c", script, path, sql])
    guard r.status == 0 else { throw NSError(domain: "sqlite", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: r.stderr]) }
}

extension Scenario {
    /// `shredvault ARGS --vault VAULT [--master-key-file KEY] [--json]` on the real clock.
    func real(_ args: [String], key: String? = nil, json: Bool = true, vault other: String? = nil, extra: [String] = [],
              environment: [String: String] = [:]) throws -> CLI.Result {
        var a = args + ["--vault", other ?? vault]
        if let key { a += ["--master-key-file", key] }
        if json { a.append("--json") }
        return try runShredvault(a + extra, environment: environment)
    }

    /// A production vault: `init` on the real clock, no --drill.
    func initProduction(extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws {
        assertSuccess(try real(["init"] + extra, key: keyFile), "init (production)", file: file, line: line)
    }

    /// A production vault holding `users` (archived on the real clock, sources kept in `pristine`).
    func productionWithUsers(_ users: [String], extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws {
        try writeSource(users.enumerated().map { SourceUser(id: $1, lastActive: longInactiveDate, files: sampleFiles(seed: UInt64(70 + $0))) })
        try initProduction(extra: extra, file: file, line: line)
        assertSuccess(try real(["archive", "--source", source]), "archive (production)", file: file, line: line)
    }

    var config: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: vault + "/config")))) as? [String: Any] ?? [:]
    }
    var keyringPath: String { config["keyringPath"] as? String ?? "" }
    var rootPath: String { (config["root"] as? [String: Any])?["path"] as? String ?? "" }

    /// Sets (or, with nil, removes) the latest job time the catalog and the keyring remember.
    func setLatestJobTime(catalog: Int64?, keyring: Int64?) throws {
        try sqliteExec(self.catalog, catalog.map {
            "INSERT INTO meta (key, value) VALUES ('latestJobAt', '\($0)') ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        } ?? "DELETE FROM meta WHERE key = 'latestJobAt'")
        try sqliteExec(keyringPath, keyring.map {
            "INSERT INTO clock (id, latest_at) VALUES (1, \($0)) ON CONFLICT (id) DO UPDATE SET latest_at = excluded.latest_at"
        } ?? "DELETE FROM clock")
    }

    /// The latest job time as the catalog and the keyring record it.
    func latestJobTimes() throws -> (catalog: Int64?, keyring: Int64?) {
        (try sqliteRows(self.catalog, "SELECT value FROM meta WHERE key = 'latestJobAt'").first.flatMap { Int64($0.trimmingCharacters(in: CharacterSet(charactersIn: "'"))) },
         try sqliteRows(keyringPath, "SELECT latest_at FROM clock").first.flatMap { Int64($0) })
    }

    /// The audit records of one action, as (at, detail JSON).
    func auditRecords(_ action: String) throws -> [(at: Int64, detail: [String: Any])] {
        try sqliteRows(self.catalog, "SELECT at, detail FROM audit WHERE action = '\(action)' ORDER BY seq").map { row in
            let parts = row.split(separator: "\t", maxSplits: 1).map(String.init)
            let detail = parts.count == 2 ? String(parts[1].dropFirst().dropLast()) : "{}"
            return (Int64(parts[0]) ?? -1, (try? JSONSerialization.jsonObject(with: Data(detail.utf8))) as? [String: Any] ?? [:])
        }
    }
}

/// Every byte of the files under `paths` (files or directories), for "this was never written" comparisons.
func bytesOf(_ paths: [String]) throws -> [String: Data] {
    var out: [String: Data] = [:]
    for p in paths {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else { continue }
        for f in isDir.boolValue ? regularFiles(under: p) : [p] where !f.hasSuffix("-shm") {
            out[f] = try Data(contentsOf: URL(fileURLWithPath: f))
        }
    }
    return out
}
