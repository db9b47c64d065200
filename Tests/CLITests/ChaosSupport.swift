import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

// The chaos harness (issue 9, item 5): an LD_PRELOAD shim (tools/chaos-shim.c, compiled here with cc) kills the
// `shredvault` process just before the k-th call of one kind (fsync, fdatasync, write, pwrite, rename, unlink, ...)
// or fails that call with EIO or ENOSPC. For every such point of every mutating command on a small prepared vault,
// the command is run with the fault, then rerun normally, then the next job runs, and the invariants are checked
// (ChaosWalk.checkInvariants). ChaosTests.swift defines the vault and the commands; tools/chaos runs the full walk.
//
// Environment (all optional):
//   CHAOS_FULL=1          walk every point of every selected kind and mode (default: a seeded sample, CHAOS_SAMPLE)
//   CHAOS_SAMPLE=N        points in the sample over all commands (default 51: 3 per command)
//   CHAOS_SEED=N          seed of the sample (default 1)
//   CHAOS_COMMANDS=a,b    only these commands (names as in the table)
//   CHAOS_KINDS=k1,k2     call kinds walked (default fsync,fdatasync,write,pwrite,rename,unlink; the shim also
//                         knows ftruncate, mkdir, create, rmdir)
//   CHAOS_MODES=m1,m2     fault modes (default kill,eio,enospc)
//   CHAOS_STICKY=1        eio/enospc: every counted call from the k-th on fails, not only the k-th
//   CHAOS_MAX_POINTS=N    full walk: at most N points per kind and command (evenly spread), for partial walks
//   CHAOS_TABLE_OUT=FILE  also write the table there; CHAOS_VIOLATIONS_OUT=FILE: one violation per line (TSV)
//   CHAOS_KEEP=1          keep the work directory of the first violating point (printed)
//   CHAOS_DOUBLE=1        the first rerun gets the same fault again (a job that crashes twice), then a clean rerun
//   CHAOS_BIN=PATH        the shredvault binary to walk (default: the built one; tools/chaos walks a frozen copy)

enum ChaosConfig {
    static let env = ProcessInfo.processInfo.environment
    static var full: Bool { env["CHAOS_FULL"] == "1" }
    static var sample: Int { Int(env["CHAOS_SAMPLE"] ?? "") ?? 51 }
    static var seed: UInt64 { UInt64(env["CHAOS_SEED"] ?? "") ?? 1 }
    static var commands: Set<String>? { list("CHAOS_COMMANDS").map(Set.init) }
    static let allKinds = ["fsync", "fdatasync", "write", "pwrite", "rename", "unlink", "ftruncate", "mkdir", "create", "rmdir"]
    static var kinds: [String] { list("CHAOS_KINDS") ?? ["fsync", "fdatasync", "write", "pwrite", "rename", "unlink"] }
    static var modes: [String] { list("CHAOS_MODES") ?? ["kill", "eio", "enospc"] }
    static var sticky: Bool { env["CHAOS_STICKY"] == "1" }
    static var maxPoints: Int? { Int(env["CHAOS_MAX_POINTS"] ?? "") }
    static var tableOut: String? { env["CHAOS_TABLE_OUT"].flatMap { $0.isEmpty ? nil : $0 } }
    static var violationsOut: String? { env["CHAOS_VIOLATIONS_OUT"].flatMap { $0.isEmpty ? nil : $0 } }
    static var keep: Bool { env["CHAOS_KEEP"] == "1" }
    static var double: Bool { env["CHAOS_DOUBLE"] == "1" }
    static var binary: String { env["CHAOS_BIN"].flatMap { $0.isEmpty ? nil : $0 } ?? CLI.binary }

    private static func list(_ name: String) -> [String]? {
        guard let v = env[name], !v.isEmpty else { return nil }
        return v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}

// MARK: - The shim

enum ChaosShim {
    /// Compiles tools/chaos-shim.c once per test process; the path of the .so.
    static let path: Result<String, Error> = {
        let source = CLI.packageRoot + "/tools/chaos-shim.c"
        let out = NSTemporaryDirectory() + "shredvault-chaos-shim-\(getpid()).so"
        do {
            let r = try CLI.execute("/usr/bin/env", ["cc", "-shared", "-fPIC", "-O2", "-Wall", "-o", out, source, "-ldl"])
            guard r.status == 0 else { throw ChaosError("cc failed (exit \(r.status)): \(r.stderr)") }
            return .success(out)
        } catch { return .failure(error) }
    }()

    /// The order of the counters in CHAOS_COUNT_FILE (tools/chaos-shim.c).
    static let kindOrder = ChaosConfig.allKinds

    static func readCounts(_ file: String) -> [String: Int] {
        guard let data = FileManager.default.contents(atPath: file), data.count >= 8 * kindOrder.count else { return [:] }
        var out: [String: Int] = [:]
        for (i, k) in kindOrder.enumerated() {
            var v: UInt64 = 0
            for b in 0..<8 { v |= UInt64(data[data.startIndex + i * 8 + b]) << (8 * UInt64(b)) }
            out[k] = Int(v)
        }
        return out
    }
}

struct ChaosError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

// MARK: - Processes

struct ChaosRun {
    var status: Int32
    var signaled: Bool
    var stdout: String
    var stderr: String
    var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any] }
    var summary: String {
        let err = stderr.split(separator: "\n").prefix(3).joined(separator: " | ")
        return (signaled ? "signal \(status)" : "exit \(status)") + (err.isEmpty ? "" : ": " + String(err.prefix(400)))
    }
}

/// Runs the built `shredvault` with a clean environment (no SHREDVAULT_*, LD_PRELOAD or CHAOS_* inherited) plus `environment`.
func chaosExec(_ arguments: [String], environment: [String: String] = [:], executable: String = ChaosConfig.binary) throws -> ChaosRun {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    var env = ProcessInfo.processInfo.environment.filter {
        !$0.key.hasPrefix("SHREDVAULT_") && !$0.key.hasPrefix("CHAOS_") && $0.key != "LD_PRELOAD"
    }
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle(forReadingAtPath: "/dev/null")
    try p.run()
    nonisolated(unsafe) var errData = Data()
    let group = DispatchGroup()
    group.enter()
    DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    p.waitUntilExit()
    return ChaosRun(status: p.terminationStatus, signaled: p.terminationReason == .uncaughtSignal,
                    stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
}

// MARK: - Keys seen and databases

struct ChaosKey: Hashable {
    var id: String       // hex key id
    var role: String
    var subject: String
    var sealed: String   // hex sealed private key as stored
    var label: String { "\(role) \(subject) (\(id.prefix(8)))" }
}

/// What one python start reads from the vault's databases: the keys of the keystore and keyring, the erasure ledger
/// of the catalog and keyring, and extra queries. Each database is copied (with its -wal or -journal) to a scratch
/// directory first, so nothing is created beside the real files and a hot journal is rolled back on the copy only.
struct ChaosDBState {
    var keys: [String: [ChaosKey]] = [:]       // "keystore" / "keyring" -> keys
    var ledger: [ChaosKey] = []                // sealed = ""
    var queries: [[String]] = []
    var errors: [String] = []

    static let script = """
        import sqlite3, sys, shutil, os, json, tempfile
        req = json.loads(sys.argv[1])
        scratch = req["scratch"]
        out = {"keys": {}, "ledger": [], "queries": [], "errors": []}
        def copy(path):
            if not path or not os.path.exists(path): return None
            d = tempfile.mkdtemp(dir=scratch)
            for suf in ["", "-wal", "-journal"]:
                if os.path.exists(path + suf): shutil.copyfile(path + suf, os.path.join(d, "db" + suf))
            return sqlite3.connect(os.path.join(d, "db"))
        cons = {}
        for name in ["keystore", "keyring", "catalog"]:
            try: cons[name] = copy(req.get(name))
            except Exception as e: out["errors"].append(name + ": " + str(e)); cons[name] = None
        for name in ["keystore", "keyring"]:
            rows = []
            try:
                if cons[name]: rows = [list(r) for r in cons[name].execute("SELECT lower(hex(key_id)), role, subject, lower(hex(sealed_private)) FROM keys")]
            except Exception as e: out["errors"].append(name + " keys: " + str(e))
            out["keys"][name] = rows
        for name in ["catalog", "keyring"]:
            try:
                if cons[name]: out["ledger"] += [list(r) for r in cons[name].execute("SELECT lower(hex(key_id)), role, subject FROM erasures")]
            except Exception as e: out["errors"].append(name + " erasures: " + str(e))
        for db, sql in req.get("queries", []):
            try: out["queries"].append([repr(tuple(r)) for r in cons[db].execute(sql)] if cons[db] else ["<no " + db + ">"])
            except Exception as e: out["queries"].append(["<error " + str(e) + ">"])
        print(json.dumps(out))
        """

    static func read(keystore: String?, keyring: String?, catalog: String?, queries: [(String, String)] = [], scratch: String) throws -> ChaosDBState {
        try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        var req: [String: Any] = ["scratch": scratch, "queries": queries.map { [$0.0, $0.1] }]
        if let keystore { req["keystore"] = keystore }
        if let keyring { req["keyring"] = keyring }
        if let catalog { req["catalog"] = catalog }
        let arg = String(decoding: try JSONSerialization.data(withJSONObject: req), as: UTF8.self)
        let r = try CLI.execute("/usr/bin/env", ["python3", "-c", script, arg])
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        guard r.status == 0, let obj = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any] else {
            throw ChaosError("reading the databases failed: \(r.stderr)")
        }
        var s = ChaosDBState()
        for (name, rows) in (obj["keys"] as? [String: [[String]]]) ?? [:] {
            s.keys[name] = rows.map { ChaosKey(id: $0[0], role: $0[1], subject: $0[2], sealed: $0[3]) }
        }
        s.ledger = ((obj["ledger"] as? [[String]]) ?? []).map { ChaosKey(id: $0[0], role: $0[1], subject: $0[2], sealed: "") }
        s.queries = (obj["queries"] as? [[String]]) ?? []
        s.errors = (obj["errors"] as? [String]) ?? []
        return s
    }

    var allKeys: [ChaosKey] { keys.values.flatMap { $0 } }
}

// MARK: - Deterministic choice

struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
}

func fnv1a(_ s: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
}

// MARK: - Files

/// Every entry (files and directories, hidden ones included) under `root`, relative paths.
func chaosEntries(under root: String) -> [String] {
    guard let e = FileManager.default.enumerator(atPath: root) else { return [] }
    var out: [String] = []
    while let rel = e.nextObject() as? String { out.append(rel) }
    return out.sorted()
}

func chaosCopyTree(_ from: String, _ to: String) throws {
    let r = try CLI.execute("/bin/cp", ["-a", from, to])
    guard r.status == 0 else { throw ChaosError("cp -a \(from) \(to): \(r.stderr)") }
}

func chaosRemoveTree(_ path: String) {
    guard FileManager.default.fileExists(atPath: path) else { return }
    _ = try? CLI.execute("/bin/chmod", ["-R", "u+rwx", path])
    _ = try? CLI.execute("/bin/rm", ["-rf", path])
}
