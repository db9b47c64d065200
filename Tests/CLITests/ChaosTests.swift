import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The small vault every chaos point starts from, built once per test through the binary with a simulated clock.
/// Paths are fixed (the vault's config records the keyring's absolute path), so every point works in the same
/// directory `root/w`, refilled with `cp -a` from a template.
///
/// Timeline (day 0 = 2026-11-29; init --archive-days 10, so a bundle archived on day d expires on day d + 9):
///   day 0   archive ua ub uc ue; keystore backup --to ks-day0.svks (epoch of day 0, unreadable from day 30)
///   day 1   hold ua H1, uc H1, ub H3
///   day 2   delete ue (shredded); delete ub (blocked by H3)
///   day 3   backup --to backup; backup --to backup-inc
///   day 10  sweep (the day-9 key ends; held ua ub uc survive)
///   day 20  archive uf (expires day 29)
///   day 25  archive ud ug (expire day 34)
///   day 27  keystore backup --to ks-day27.svks
///   day 28  hold uc H2 (a hold key the day-27 snapshot lacks); backup --to backup (incremental)
///   day 29  template A (the day-30 sweep is due: uf's day key and the day-0 epoch key end)
///   day 30  sweep: template B
/// Source: ui (inactive, never archived: archive's candidate) and uj (active) keep their directories.
final class ChaosVault {
    let root: String
    var work: String { root + "/w" }
    var vault: String { work + "/vault" }
    var keyFile: String { work + "/secrets/restore.key" }
    var keystore: String { vault + "/keys/keystore.db" }
    var source: String { work + "/src" }
    var templateA: String { root + "/template-A" }
    var templateB: String { root + "/template-B" }
    var pristine: String { root + "/pristine" }
    var keyringPath: String?
    var keyBook: [String: ChaosKey] = [:]
    var pristineTrees: [String: Tree] = [:]

    static let archived0 = ["ua", "ub", "uc", "ue"]
    static let users = ["ua", "ub", "uc", "ud", "ue", "uf", "ug", "ui", "uj"]

    init(_ test: XCTestCase) throws {
        root = NSTemporaryDirectory() + "shredvault-chaos-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
        test.addTeardownBlock { [root] in
            if !ChaosConfig.keep { chaosRemoveTree(root) }
        }
    }

    func sv(_ args: [String], day: Int, key: Bool = false, json: Bool = true, vault other: String? = nil,
            environment: [String: String] = [:]) throws -> ChaosRun {
        var a = args + ["--vault", other ?? vault, "--now", SimDay.now(day)]
        if key { a += ["--master-key-file", keyFile] }
        if json { a.append("--json") }
        return try chaosExec(a, environment: environment)
    }

    /// Runs a preparation step; throws unless it exits with `expect`.
    func step(_ args: [String], day: Int, key: Bool = false, expect: Int32 = 0) throws {
        let r = try sv(args, day: day, key: key)
        guard r.status == expect, !r.signaled else {
            throw ChaosError("fixture step day \(day) `\(args.joined(separator: " "))`: expected exit \(expect), got \(r.summary)")
        }
        try learnKeys()
    }

    func learnKeys() throws {
        let s = try ChaosDBState.read(keystore: FileManager.default.fileExists(atPath: keystore) ? keystore : nil, keyring: keyringPath,
                                      catalog: nil, scratch: root + "/scratch")
        for k in s.allKeys { keyBook[k.id] = k }
    }

    func build() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: work + "/secrets", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var source: [SourceUser] = []
        for (i, u) in Self.users.enumerated() {
            var files = sampleFiles(seed: UInt64(900 + i))
            files["calls/c1/recording.wav"] = pseudoRandom(20_000 + i * 500, seed: UInt64(900 + i))   // smaller: fewer points
            source.append(SourceUser(id: u, lastActive: u == "uj" ? activeDate : inactiveDate, files: files))
        }
        try makeSource(at: pristine, users: source)
        for u in Self.users { pristineTrees[u] = try Tree(pristine + "/users/" + u) }
        try chaosCopyTree(pristine, self.source)

        try step(["init", "--drill", "--archive-days", "10"], day: 0, key: true)
        keyringPath = (try fm.contentsOfDirectory(atPath: work + "/secrets")).first { $0.hasPrefix("shredvault-keyring-") }.map { work + "/secrets/" + $0 }
        guard keyringPath != nil else { throw ChaosError("init made no keyring beside the restore key") }
        try learnKeys()
        func archive(_ users: [String], day: Int) throws {
            try step(["archive", "--source", self.source] + users.flatMap { ["--user", $0] }, day: day)
        }
        try archive(Self.archived0, day: 0)
        try step(["keystore", "backup", "--to", work + "/ks-day0.svks"], day: 0)
        try step(["hold", "place", "ua", "--case", "H1", "--reason", "chaos fixture"], day: 1, key: true)
        try step(["hold", "place", "uc", "--case", "H1", "--reason", "chaos fixture"], day: 1, key: true)
        try step(["hold", "place", "ub", "--case", "H3", "--reason", "chaos fixture"], day: 1, key: true)
        try step(["delete", "ue", "--request-id", "DSR-E"], day: 2)
        try step(["delete", "ub", "--request-id", "DSR-B"], day: 2, expect: 10)
        try step(["backup", "--to", work + "/backup"], day: 3)
        try step(["backup", "--to", work + "/backup-inc"], day: 3)
        try step(["sweep"], day: 10)
        try archive(["uf"], day: 20)
        try archive(["ud", "ug"], day: 25)
        try step(["keystore", "backup", "--to", work + "/ks-day27.svks"], day: 27)
        try step(["hold", "place", "uc", "--case", "H2", "--reason", "chaos fixture"], day: 28, key: true)
        try step(["backup", "--to", work + "/backup"], day: 28)
        try step(["sweep"], day: 29)
        try chaosCopyTree(work, templateA)
        try step(["sweep"], day: 30)
        try chaosCopyTree(work, templateB)
    }

    /// The commands walked, with what must hold afterwards.
    func commands() -> [ChaosCommand] {
        let w = work
        let base = ChaosExpect(day: 30, restorable: ["ua", "ub", "uc", "ud", "ug"], gone: ["ue", "uf"], untouchedSource: ["ui", "uj"],
                               held: ["ua:H1", "uc:H1", "uc:H2", "ub:H3"])
        let sweep = ChaosJob(args: ["sweep"])
        var out: [ChaosCommand] = []
        func add(_ name: String, _ b: ChaosBase, _ args: [String], key: Bool = false, clean: Set<Int32> = [0], rerun: Set<Int32> = [0],
                 next: [ChaosJob]? = nil, _ edit: (inout ChaosExpect) -> Void = { _ in }) {
            var e = base
            edit(&e)
            out.append(ChaosCommand(name: name, base: b, job: ChaosJob(args: args, key: key, ok: clean), cleanOK: clean, rerunOK: rerun,
                                    next: next ?? [sweep], expect: e))
        }
        add("archive", .live, ["archive", "--source", w + "/src"]) {
            $0.untouchedSource = ["uj"]; $0.sourceOrRestorable = ["ui"]
        }
        add("sweep", .preSweep, ["sweep"]) {
            $0.absentKeys = ["day \(SimDay.iso(29))", "epoch \(SimDay.iso(0))"]
        }
        add("delete", .live, ["delete", "ud", "--request-id", "DSR-D"]) {
            $0.restorable.remove("ud"); $0.gone.insert("ud"); $0.absentKeys = ["user ud"]
            $0.queries = [("catalog", "SELECT state FROM deletion_requests WHERE request_id = 'DSR-D'", ["('done',)"])]
        }
        add("delete-held", .live, ["delete", "ua", "--request-id", "DSR-A"], clean: [10]) {
            $0.presentKeys = ["user ua", "hold H1"]
            $0.queries = [("catalog", "SELECT state FROM deletion_requests WHERE request_id = 'DSR-A'", ["('blocked',)"])]
        }
        add("hold-place", .live, ["hold", "place", "ud", "--case", "H4", "--reason", "chaos"], key: true) {
            $0.held.insert("ud:H4"); $0.presentKeys = ["hold H4"]
        }
        add("hold-place-all", .live, ["hold", "place", "--all", "--case", "H5", "--reason", "chaos"], key: true) {
            for u in $0.restorable { $0.held.insert(u + ":H5") }
            $0.presentKeys = ["hold H5"]
        }
        // A rerun of a release that completed reports that the hold is no longer active (exit 10 or 66): the state
        // decides whether it completed.
        add("hold-release-last", .live, ["hold", "release", "ub", "--case", "H3"], key: true, rerun: [0, 10, 66]) {
            $0.restorable.remove("ub"); $0.gone.insert("ub"); $0.held.remove("ub:H3"); $0.released = ["ub:H3"]
            $0.absentKeys = ["hold H3", "user ub"]
            $0.queries = [("catalog", "SELECT state FROM deletion_requests WHERE request_id = 'DSR-B'", ["('done',)"])]
        }
        add("hold-release-one-of-two", .live, ["hold", "release", "uc", "--case", "H1"], key: true, rerun: [0, 10, 66]) {
            $0.held.remove("uc:H1"); $0.released = ["uc:H1"]; $0.presentKeys = ["hold H1", "hold H2"]
        }
        // Releasing ua's last hold on day 30 reseals it to the day key of day 30 (its original expiry, day 9, has
        // passed): the sweep of day 31 must expire it.
        add("hold-release-expiring", .live, ["hold", "release", "ua", "--case", "H1"], key: true, rerun: [0, 10, 66],
            next: [ChaosJob(args: ["sweep"], day: 31)]) {
            $0.day = 31; $0.held.remove("ua:H1"); $0.released = ["ua:H1"]; $0.restorable.remove("ua"); $0.gone.insert("ua")
            $0.absentKeys = ["day \(SimDay.iso(30))"]; $0.presentKeys = ["hold H1", "user ua"]
        }
        add("restore", .live, ["restore", "ua", "--case", "H1", "--to", w + "/out-ua"], key: true, rerun: [0, 73]) {
            $0.outputs = [(w + "/out-ua", ["ua"])]
        }
        add("restore-all-held", .live, ["restore", "--all-held", "--case", "H1", "--to", w + "/out-h1"], key: true, rerun: [0, 73]) {
            $0.outputs = [(w + "/out-h1", ["ua", "uc"])]
        }
        add("keystore-backup", .live, ["keystore", "backup", "--to", w + "/ks-new.svks"], rerun: [0, 73],
            next: [ChaosJob(args: ["keystore", "restore", w + "/ks-new.svks"], key: true), sweep])
        add("keystore-restore", .live, ["keystore", "restore", w + "/ks-day27.svks"], key: true) {
            $0.presentKeys = ["hold H1", "hold H2", "hold H3", "user ua", "user ud"]
            $0.absentKeys = ["day \(SimDay.iso(29))", "user ue"]
        }
        // A backup is good if the vault, lost after it, recovers from it: checked after the live vault's checks.
        add("backup-incremental", .live, ["backup", "--to", w + "/backup-inc"])
        out[out.count - 1].recoverFrom = w + "/backup-inc"
        add("backup-first", .live, ["backup", "--to", w + "/backup-new"])
        out[out.count - 1].recoverFrom = w + "/backup-new"
        // A recover whose vault is complete refuses to run again ("already exists", 73): accepted from the rerun,
        // and the invariants (every user, hold, key and check) decide whether the vault really was complete.
        add("recover", .noVault, ["recover", "--from", w + "/backup"], key: true, rerun: [0, 73])
        // uf expired on day 30: its bundle files are gone with the catalog rows, so nothing tells reindex that uf
        // existed ("unknown user", 66, is as unrecoverable as 11). ue was deleted: the erasure ledger (keyring
        // mirror) records its user key, so it must still be reported as deleted (11).
        add("reindex", .noCatalog, ["reindex"], rerun: [0, 64]) { $0.goneExits = ["uf": [11, 66]] }
        return out
    }
}

final class ChaosTests: XCTestCase {
    /// The shim itself: counting, killing at the k-th call, failing it with EIO/ENOSPC, each proven.
    func testChaosShimCountsKillsAndFails() throws {
        let shim = try ChaosShim.path.get()
        let fx = try ChaosVault(self)
        try FileManager.default.createDirectory(atPath: fx.work + "/secrets", withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try makeSource(at: fx.source, users: ["ua", "ub", "uc", "ud"].enumerated().map {
            SourceUser(id: $1, lastActive: inactiveDate, files: sampleFiles(seed: UInt64(5 + $0)))
        })
        try fx.step(["init", "--drill"], day: 0, key: true)
        let counts = fx.root + "/counts"
        let r = try fx.sv(["status"], day: 0, environment: ["LD_PRELOAD": shim, "CHAOS_MODE": "count", "CHAOS_COUNT_FILE": counts])
        XCTAssertEqual(r.status, 0, r.summary)
        // Each run archives another user, so each has work to do.
        func archiveArgs(_ user: String) -> [String] { ["archive", "--source", fx.source, "--user", user] }
        try? FileManager.default.removeItem(atPath: counts)
        let trace = fx.root + "/trace"
        let c = try fx.sv(archiveArgs("ua"), day: 0, environment: ["LD_PRELOAD": shim, "CHAOS_MODE": "count", "CHAOS_COUNT_FILE": counts,
                                                            "CHAOS_TRACE": trace])
        XCTAssertEqual(c.status, 0, c.summary)
        let n = ChaosShim.readCounts(counts)
        for kind in ["fsync", "write", "pwrite", "rename", "unlink"] { XCTAssertGreaterThan(n[kind] ?? 0, 0, "archive makes \(kind) calls: \(n)") }
        let traced = try String(contentsOfFile: trace, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(traced.count, n.values.reduce(0, +), "one trace line per counted call")
        XCTAssertFalse(c.stdout.isEmpty, "the CLI's output is not swallowed")

        // Kill before the first rename: SIGKILL, the hit file names the call; then the archive converges.
        let hit = fx.root + "/hit"
        let k = try fx.sv(archiveArgs("ub"), day: 0, environment: ["LD_PRELOAD": shim, "CHAOS_MODE": "kill", "CHAOS_CALLS": "rename",
                                                             "CHAOS_AT": "1", "CHAOS_HIT_FILE": hit])
        XCTAssertTrue(k.signaled && k.status == SIGKILL, "killed by SIGKILL: \(k.summary)")
        XCTAssertTrue((try String(contentsOfFile: hit, encoding: .utf8)).hasPrefix("kill rename "), "hit file")
        // EIO on the first fsync: the hit file exists and the command fails with an I/O error, not a crash.
        try? FileManager.default.removeItem(atPath: hit)
        let e = try fx.sv(archiveArgs("uc"), day: 0, environment: ["LD_PRELOAD": shim, "CHAOS_MODE": "eio", "CHAOS_CALLS": "fsync",
                                                             "CHAOS_AT": "1", "CHAOS_HIT_FILE": hit])
        XCTAssertTrue(FileManager.default.fileExists(atPath: hit), "the EIO landed")
        XCTAssertFalse(e.signaled, e.summary)
        XCTAssertNotEqual(e.status, 0, "an fsync that fails is reported: \(e.summary)")
        // ENOSPC on a write: same.
        try? FileManager.default.removeItem(atPath: hit)
        let s = try fx.sv(archiveArgs("ud"), day: 0, environment: ["LD_PRELOAD": shim, "CHAOS_MODE": "enospc", "CHAOS_CALLS": "write,pwrite",
                                                             "CHAOS_AT": "3", "CHAOS_HIT_FILE": hit])
        XCTAssertTrue((try? String(contentsOfFile: hit, encoding: .utf8))?.hasPrefix("enospc ") == true, "the ENOSPC landed")
        XCTAssertFalse(s.signaled, s.summary)
        // A point past the last call does not land (no hit file) and the run is clean.
        try? FileManager.default.removeItem(atPath: hit)
        let past = try fx.sv(["status"], day: 1, environment: ["LD_PRELOAD": shim, "CHAOS_MODE": "kill", "CHAOS_CALLS": "rename",
                                                               "CHAOS_AT": "1000000", "CHAOS_HIT_FILE": hit])
        XCTAssertEqual(past.status, 0, past.summary)
        XCTAssertFalse(FileManager.default.fileExists(atPath: hit))
    }

    /// Walks the fault points of every mutating command (a seeded sample; CHAOS_FULL=1 for all of them) and checks
    /// the invariants after a normal rerun. Prints the table.
    func testChaosWalk() throws {
        _ = try ChaosShim.path.get()
        let started = Date()
        let fx = try ChaosVault(self)
        try fx.build()
        var commands = fx.commands()
        if let only = ChaosConfig.commands { commands = commands.filter { only.contains($0.name) } }
        XCTAssertFalse(commands.isEmpty, "no command selected (CHAOS_COMMANDS)")
        let walk = ChaosWalk(fx)
        let budget = ChaosConfig.full ? nil : max(2, ChaosConfig.sample / max(commands.count, 1))
        try walk.walk(commands, budgetPerCommand: budget)
        let wall = Date().timeIntervalSince(started)
        let table = walk.table(wall: wall, full: ChaosConfig.full)
        print(table)
        if let path = ChaosConfig.tableOut { try table.write(toFile: path, atomically: true, encoding: .utf8) }
        if let path = ChaosConfig.violationsOut {
            try (["command\tpoint\tmode\tinvariant\tmessage\tfault"] + walk.violations.map(\.line)).joined(separator: "\n")
                .appending("\n").write(toFile: path, atomically: true, encoding: .utf8)
        }
        if let kept = walk.kept { print("chaos: kept the work directory of the first violating point in \(kept)") }

        // The walk must have exercised what it claims: every command makes calls, faults landed.
        for row in walk.rows {
            XCTAssertGreaterThan(row.counts.values.reduce(0, +), 0, "\(row.command): count mode saw no call")
            XCTAssertGreaterThan(row.landed.values.reduce(0, +), 0, "\(row.command): no fault landed")
            XCTAssertLessThanOrEqual(row.missed * 5, row.points, "\(row.command): too many faults did not land")
        }
        XCTAssertEqual(walk.violations.count, 0,
                       "chaos violations:\n" + walk.violations.prefix(60).map(\.line).joined(separator: "\n"))
    }
}
