import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

// The walk: for every command, learn how many calls of each kind it makes (count mode), then for every chosen point
// (kind, k, mode) copy the prepared vault fresh, run the command with the fault, rerun it normally, run the next
// jobs, and check the invariants. See ChaosSupport.swift for the environment variables, ChaosTests.swift for the
// vault and the commands.

/// The state a command starts from.
enum ChaosBase: String {
    case preSweep     // day 29 state: the sweep of day 30 is due (bundles of day 29 and the epoch of day 0 end)
    case live         // day 30 state after that sweep
    case noVault      // day 30 state, the vault directory lost (disaster): recover
    case noCatalog    // day 30 state, catalog.db lost: reindex
}

struct ChaosJob {
    var args: [String]
    var key = false
    var ok: Set<Int32> = [0]
    var day: Int? = nil
    /// Another vault directory than the walked one (e.g. `recover --vault DIR` of a backup the command wrote).
    var vault: String? = nil
}

/// What must hold after the fault, the rerun and the next jobs.
struct ChaosExpect {
    var day = 30
    /// Live, and restorable byte-identical (hold + restore) to the pristine source.
    var restorable: Set<String> = []
    /// Unrecoverable: no live bundle; `hold place` exits 11 (or a code of `goneExits` for that user).
    var gone: Set<String> = []
    var goneExits: [String: Set<Int32>] = [:]
    /// Either restorable byte-identical, or intact in the source (archive's candidates).
    var sourceOrRestorable: Set<String> = []
    /// Intact in the source and not archived.
    var untouchedSource: Set<String> = []
    /// "user:case" pairs that must be active holds, and pairs that must not.
    var held: Set<String> = []
    var released: Set<String> = []
    /// Keys ("role subject") that must be gone from the keystore and keyring, and keys that must still be there.
    var absentKeys: [String] = []
    var presentKeys: [String] = []
    /// (database, SQL, expected rows as python reprs, sorted).
    var queries: [(String, String, [String])] = []
    /// Restore outputs: a path and the users it must hold (one user: the path is that user's tree; several: path/<user>).
    var outputs: [(String, [String])] = []
}

struct ChaosCommand {
    var name: String
    /// The day the command (and its rerun) runs; `expect.day` is the day of the checks.
    var day = 30
    var base: ChaosBase
    var job: ChaosJob
    /// Exit codes of a run that was not disturbed (the first run without fault, the fault run if it was unaffected).
    var cleanOK: Set<Int32> = [0]
    /// Exit codes accepted from the normal rerun after a fault (e.g. 73 "already exists" when the first run finished).
    var rerunOK: Set<Int32> = [0]
    /// Exit codes also accepted from the rerun when the fault run itself exited 0 (the job was done: e.g. recover's
    /// 73, "the vault already exists").
    var doneOK: Set<Int32> = []
    var next: [ChaosJob] = []
    var expect: ChaosExpect
    /// A backup the command wrote: after the checks, the vault is lost (removed) and recovered from this directory,
    /// and the same checks run on the recovered vault. (A second vault recovered beside the live one would share
    /// its keyring and destruction root, which the live vault's keys cannot survive.)
    var recoverFrom: String? = nil
}

struct ChaosPoint: Hashable {
    var kind: String
    var k: Int
    var mode: String
}

struct ChaosViolation {
    var command: String
    var kind: String
    var k: Int
    var mode: String
    var invariant: String
    var message: String
    var hit: String
    var line: String {
        "\(command)\t\(kind)#\(k)\t\(mode)\t\(invariant)\t\(message.replacingOccurrences(of: "\n", with: " | "))\t\(hit)"
    }
}

struct ChaosRow {
    var command: String
    var counts: [String: Int] = [:]
    var points = 0
    var landed: [String: Int] = [:]
    var missed = 0
    var violatingPoints = 0
    var violations = 0
    var swallowed = 0
    var cleanViolations = 0
    var seconds = 0.0
    /// How the faulted runs ended, "eio:74" -> count ("kill:SIGKILL" for the kills).
    var outcomes: [String: Int] = [:]
}

final class ChaosWalk {
    let fx: ChaosVault
    var violations: [ChaosViolation] = []
    var swallowed: [String] = []
    var rows: [ChaosRow] = []
    var missedPoints: [String] = []
    var kept: String?
    var outcomes: [String: [String: Int]] = [:]   // command -> outcome -> count

    init(_ fx: ChaosVault) { self.fx = fx }

    // MARK: Running

    func reset(_ base: ChaosBase) throws {
        chaosRemoveTree(fx.work)
        switch base {
        case .preSweep: try chaosCopyTree(fx.templateA, fx.work)
        case .live: try chaosCopyTree(fx.templateB, fx.work)
        case .noVault:
            try chaosCopyTree(fx.templateB, fx.work)
            chaosRemoveTree(fx.vault)
        case .noCatalog:
            try chaosCopyTree(fx.templateB, fx.work)
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: fx.vault + "/catalog.db" + suffix) }
        }
    }

    func run(_ job: ChaosJob, day: Int, environment: [String: String] = [:]) throws -> ChaosRun {
        try fx.sv(job.args, day: job.day ?? day, key: job.key, vault: job.vault, environment: environment)
    }

    /// Count mode: the calls of each kind the command makes on a fresh copy.
    func count(_ c: ChaosCommand) throws -> [String: Int] {
        try reset(c.base)
        let file = fx.root + "/counts"
        try? FileManager.default.removeItem(atPath: file)
        let r = try run(c.job, day: c.expect.day,
                        environment: ["LD_PRELOAD": try ChaosShim.path.get(), "CHAOS_MODE": "count", "CHAOS_COUNT_FILE": file])
        guard c.cleanOK.contains(r.status), !r.signaled else { throw ChaosError("\(c.name): count run \(r.summary)") }
        return ChaosShim.readCounts(file)
    }

    /// The points to walk: all of them (CHAOS_FULL, at most CHAOS_MAX_POINTS per kind), or a seeded sample of `budget`.
    func points(_ c: ChaosCommand, counts: [String: Int], budget: Int?) -> [ChaosPoint] {
        var all: [ChaosPoint] = []
        for kind in ChaosConfig.kinds {
            let n = counts[kind] ?? 0
            guard n > 0 else { continue }
            var ks = Array(1...n)
            if budget == nil, let cap = ChaosConfig.maxPoints, n > cap {
                ks = (0..<cap).map { 1 + $0 * (n - 1) / max(cap - 1, 1) }
                ks = Array(Set(ks)).sorted()
            }
            for k in ks { for mode in ChaosConfig.modes { all.append(ChaosPoint(kind: kind, k: k, mode: mode)) } }
        }
        guard let budget else { return all }
        // A seeded sample: kinds in turn (so a kind with few calls is sampled as often as pwrite), modes in turn, k
        // drawn at random among the kind's calls; no point twice.
        var rng = SplitMix64(state: ChaosConfig.seed ^ fnv1a(c.name))
        var kinds = ChaosConfig.kinds.filter { (counts[$0] ?? 0) > 0 }
        for i in stride(from: kinds.count - 1, to: 0, by: -1) { kinds.swapAt(i, rng.below(i + 1)) }
        let modes = ChaosConfig.modes
        var chosen: [ChaosPoint] = [], seen = Set<ChaosPoint>()
        let possible = kinds.reduce(0) { $0 + (counts[$1] ?? 0) } * modes.count
        var i = 0
        while chosen.count < min(budget, possible) && i < budget * 50 {
            let kind = kinds[i % max(kinds.count, 1)]
            let mode = modes[(i / max(kinds.count, 1) + rng.below(modes.count)) % modes.count]
            let p = ChaosPoint(kind: kind, k: 1 + rng.below(counts[kind] ?? 1), mode: mode)
            if seen.insert(p).inserted { chosen.append(p) }
            i += 1
        }
        return chosen.sorted { ($0.kind, $0.k, $0.mode) < ($1.kind, $1.k, $1.mode) }
    }

    func walk(_ commands: [ChaosCommand], budgetPerCommand: Int?) throws {
        for c in commands {
            let started = Date()
            var row = ChaosRow(command: c.name)
            // A clean run first: the expectations must hold without any fault, or the walk would blame the product
            // for a wrong expectation.
            let clean = try checkPoint(c, point: nil)
            row.cleanViolations = clean
            row.counts = try count(c)
            for p in points(c, counts: row.counts, budget: budgetPerCommand) {
                row.points += 1
                let before = violations.count
                let landed = try checkPoint(c, point: p)
                if landed >= 0 {
                    row.landed[p.kind, default: 0] += 1
                } else {
                    row.missed += 1
                    missedPoints.append("\(c.name) \(p.kind)#\(p.k) \(p.mode)")
                }
                if violations.count > before { row.violatingPoints += 1; row.violations += violations.count - before }
            }
            row.outcomes = outcomes[c.name] ?? [:]
            row.swallowed = swallowed.filter { $0.hasPrefix(c.name + " ") }.count
            row.seconds = Date().timeIntervalSince(started)
            rows.append(row)
            print("chaos: \(c.name): \(row.points) points, \(row.violatingPoints) violating, clean-run violations \(row.cleanViolations), "
                  + "\(String(format: "%.1f", row.seconds)) s")
            fflush(nil)
        }
    }

    // MARK: One point

    /// Runs one point (or the clean run when `point` is nil) and records its violations. Returns 1 if the fault
    /// landed (or for the clean run, the number of violations), -1 if it did not land.
    @discardableResult
    func checkPoint(_ c: ChaosCommand, point: ChaosPoint?) throws -> Int {
        try reset(c.base)
        let before = violations.count
        var hitText = ""
        func violation(_ invariant: String, _ message: String) {
            violations.append(ChaosViolation(command: c.name, kind: point?.kind ?? "-", k: point?.k ?? 0, mode: point?.mode ?? "none",
                                             invariant: invariant, message: message, hit: hitText))
        }
        let day = c.day
        var landed = 1
        if let p = point {
            let hit = fx.root + "/hit"
            try? FileManager.default.removeItem(atPath: hit)
            var env = ["LD_PRELOAD": try ChaosShim.path.get(), "CHAOS_MODE": p.mode, "CHAOS_CALLS": p.kind, "CHAOS_AT": String(p.k),
                       "CHAOS_HIT_FILE": hit]
            if ChaosConfig.sticky { env["CHAOS_STICKY"] = "1" }
            let r = try run(c.job, day: day, environment: env)
            hitText = (try? String(contentsOfFile: hit, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            if !hitText.isEmpty {
                outcomes[c.name, default: [:]][p.mode + ":" + (r.signaled ? (r.status == SIGKILL ? "SIGKILL" : "signal \(r.status)") : String(r.status)), default: 0] += 1
            }
            if hitText.isEmpty {
                landed = -1   // fewer calls this time (threads); the run was a clean run
                if r.signaled || !c.cleanOK.contains(r.status) { violation("I0-clean", "run without the fault landing: \(r.summary)") }
            } else if p.mode == "kill" {
                if !(r.signaled && r.status == SIGKILL) { violation("I0-kill", "the shim hit but the process did not die by SIGKILL: \(r.summary)") }
            } else {
                if r.signaled { violation("I0-crash", "crashed after an injected \(p.mode.uppercased()): \(r.summary)") }
                if !r.signaled && r.status == 0 {
                    swallowed.append("\(c.name) \(p.kind)#\(p.k) \(p.mode): exit 0 after \(hitText)")
                }
            }
            if ChaosConfig.double && !hitText.isEmpty {
                // The first rerun crashes (or fails) at the same point again.
                let again = try run(c.job, day: day, environment: env)
                if again.signaled && again.status != SIGKILL { violation("I0-crash", "the faulted rerun crashed: \(again.summary)") }
            }
            let rerun = try run(c.job, day: day)
            let done = !r.signaled && c.cleanOK.contains(r.status)
            if rerun.signaled || !c.rerunOK.contains(rerun.status) && !c.cleanOK.contains(rerun.status)
                && !(done && c.doneOK.contains(rerun.status)) {
                violation("I0-rerun", "rerun \(c.job.args.prefix(2).joined(separator: " ")): \(rerun.summary)")
            }
        } else {
            let r = try run(c.job, day: day)
            if r.signaled || !c.cleanOK.contains(r.status) { violation("I0-clean", "\(c.job.args.prefix(2).joined(separator: " ")): \(r.summary)") }
        }
        for job in c.next {
            let r = try run(job, day: day)
            if r.signaled || !job.ok.contains(r.status) { violation("I0-next", "next job \(job.args.prefix(3).joined(separator: " ")): \(r.summary)") }
        }
        try checkInvariants(c, violation: violation)
        if let dir = c.recoverFrom {
            chaosRemoveTree(fx.vault)
            chaosRemoveTree(fx.work + "/chaos-check-restore")
            let r = try fx.sv(["recover", "--from", dir], day: c.expect.day, key: true)
            if r.signaled || r.status != 0 {
                violation("I1-backup", "recover from the backup \((dir as NSString).lastPathComponent) after losing the vault: \(r.summary)")
            } else {
                try checkInvariants(c) { inv, msg in violation(inv, "after recover from the backup: " + msg) }
            }
        }
        let found = violations.count - before
        if found > 0, ChaosConfig.keep, kept == nil {
            kept = fx.root + "-kept-" + c.name
            try? chaosCopyTree(fx.work, kept!)
        }
        return point == nil ? found : landed
    }

    // MARK: Invariants

    func checkInvariants(_ c: ChaosCommand, violation: (String, String) -> Void) throws {
        let e = c.expect
        let day = e.day
        // (5) check --read-data and audit verify.
        let check = try fx.sv(["check", "--read-data"], day: day, key: true)
        if check.status != 0 {
            let vs = ((check.json?["violations"] as? [[String: Any]]) ?? []).map { "\($0["kind"] ?? "?") \($0["subject"] ?? "?"): \($0["message"] ?? "")" }
            violation("I5-check", "check --read-data \(check.summary) \(vs.prefix(6).joined(separator: "; "))")
        }
        let audit = try fx.sv(["audit", "verify"], day: day)
        if audit.status != 0 { violation("I5-audit", "audit verify \(audit.summary) \(audit.stdout.prefix(300))") }

        // Live bundles and holds.
        let list = try fx.sv(["list"], day: day)
        if list.status != 0 { violation("I5-list", "list \(list.summary)") }
        let live = jsonLines(list.stdout)
        let liveUsers = Set(live.compactMap { $0["user"] as? String })
        // (4) Nothing outlives its expiry.
        for b in live where (b["held"] as? Bool) != true {
            if let exp = b["expiryDay"] as? String, exp < SimDay.iso(day) {
                violation("I4-expiry", "\(b["user"] ?? "?") bundle \(String(describing: b["bundleId"] ?? "?").prefix(8)) unheld, expiry \(exp) < today \(SimDay.iso(day))")
            }
        }
        let holdList = try fx.sv(["hold", "list"], day: day)
        let holds = Set(((holdList.json?["holds"] as? [[String: Any]]) ?? []).map { "\($0["userId"] ?? "?"):\($0["caseId"] ?? "?")" })
        if holdList.status != 0 { violation("I3-holds", "hold list \(holdList.summary)") }
        for pair in e.held.sorted() where !holds.contains(pair) { violation("I3-holds", "hold \(pair) is not active (active: \(holds.sorted()))") }
        for pair in e.released.sorted() where holds.contains(pair) { violation("I3-holds", "hold \(pair) is still active after its release") }

        // (6) No leftover temporary files anywhere in the work directory.
        for rel in chaosEntries(under: fx.work) {
            let base = (rel as NSString).lastPathComponent
            if base.hasPrefix(".") || base.contains(".tmp") || base.contains(".partial-") || base.hasSuffix("-journal") {
                violation("I6-leftover", "leftover \(rel)")
            }
        }

        // (2) Destroyed keys: gone from the keystore and keyring, and their sealed bytes in no file.
        let db = try ChaosDBState.read(keystore: fx.keystore, keyring: fx.keyringPath, catalog: fx.vault + "/catalog.db",
                                       queries: e.queries.map { ($0.0, $0.1) }, scratch: fx.root + "/scratch")
        for err in db.errors { violation("I5-db", err) }
        let present = Set(db.allKeys.map(\.id))
        let presentNames = Set(db.allKeys.map { "\($0.role) \($0.subject)" })
        var book = fx.keyBook
        for k in db.allKeys { book[k.id] = k }
        var destroyed = Set(book.keys).subtracting(present)
        for l in db.ledger {
            destroyed.insert(l.id)
            if present.contains(l.id) { violation("I2-ledger", "key \(l.role) \(l.subject) is in the erasure ledger but still in the keystore/keyring") }
        }
        for name in e.absentKeys where presentNames.contains(name) { violation("I2-key", "key \(name) should have been destroyed") }
        for name in e.presentKeys where !presentNames.contains(name) { violation("I3-key", "key \(name) is missing") }
        let needles = destroyed.compactMap { id -> (ChaosKey, Data)? in
            guard let k = book[id], !k.sealed.isEmpty else { return nil }
            return (k, hexData(k.sealed))
        }
        if !needles.isEmpty {
            for path in regularFiles(under: fx.work) {
                guard let data = FileManager.default.contents(atPath: path) else { continue }
                for (k, needle) in needles where data.range(of: needle) != nil {
                    violation("I2-bytes", "destroyed key \(k.label) found in \(path.dropFirst(fx.work.count + 1))")
                }
            }
        }
        for (i, q) in e.queries.enumerated() {
            let got = i < db.queries.count ? db.queries[i].sorted() : ["<missing>"]
            if got != q.2.sorted() { violation("I3-catalog", "\(q.1): got \(got), expected \(q.2.sorted())") }
        }

        // Source users that must be untouched.
        for u in e.untouchedSource.sorted() {
            let path = fx.work + "/src/users/" + u
            if !FileManager.default.fileExists(atPath: path) || (try? Tree(path)) != fx.pristineTrees[u] {
                violation("I1-source", "\(u)'s source is gone or changed")
            }
            if liveUsers.contains(u) { violation("I1-source", "\(u) (active or not a candidate) was archived") }
        }

        // (2) Gone users are unrecoverable (exit 11) and have no live bundle.
        for u in e.gone.sorted() {
            if liveUsers.contains(u) { violation("I2-gone", "\(u) still has a live bundle") }
            let h = try fx.sv(["hold", "place", u, "--case", "CHAOS-GONE", "--reason", "chaos check"], day: day, key: true)
            if !(e.goneExits[u] ?? [11]).contains(h.status) { violation("I2-gone", "\(u): hold place should be unrecoverable (exit 11), got \(h.summary)") }
        }

        // (1)(3) Every user that must survive restores byte-identical: one hold on all live users, one restore.
        let mustRestore = e.restorable.union(e.sourceOrRestorable)
        for u in e.restorable.sorted() where !liveUsers.contains(u) { violation("I1-lost", "\(u) has no live bundle") }
        if !mustRestore.isEmpty && !liveUsers.isEmpty {
            let hold = try fx.sv(["hold", "place", "--all", "--case", "CHAOS-CHK", "--reason", "chaos check"], day: day, key: true)
            let target = fx.work + "/chaos-check-restore"
            if hold.status != 0 {
                violation("I1-restore", "hold place --all \(hold.summary)")
            } else {
                let r = try fx.sv(["restore", "--all-held", "--case", "CHAOS-CHK", "--to", target], day: day, key: true)
                if r.status != 0 { violation("I1-restore", "restore --all-held \(r.summary)") }
            }
            for u in mustRestore.sorted() where liveUsers.contains(u) {
                let path = target + "/" + u
                let ok = FileManager.default.fileExists(atPath: path) && (try? Tree(path)) == fx.pristineTrees[u]
                if !ok { violation(e.held.contains { $0.hasPrefix(u + ":") } ? "I3-held" : "I1-restore", "\(u) does not restore byte-identical") }
            }
        }
        for u in e.sourceOrRestorable.sorted() where !liveUsers.contains(u) {
            let path = fx.work + "/src/users/" + u
            if !FileManager.default.fileExists(atPath: path) || (try? Tree(path)) != fx.pristineTrees[u] {
                violation("I1-lost", "\(u) is neither archived nor intact in the source")
            }
        }
        // Restore outputs of the command itself.
        for (path, users) in e.outputs {
            if users.count == 1 {
                if !FileManager.default.fileExists(atPath: path) || (try? Tree(path)) != fx.pristineTrees[users[0]] {
                    violation("I1-output", "\(path.dropFirst(fx.work.count + 1)) is not \(users[0])'s files")
                }
            } else {
                let got = listing(path)
                if got != users.sorted() { violation("I1-output", "\(path.dropFirst(fx.work.count + 1)) holds \(got), expected \(users.sorted())") }
                for u in users where (try? Tree(path + "/" + u)) != fx.pristineTrees[u] {
                    violation("I1-output", "\(path.dropFirst(fx.work.count + 1))/\(u) is not \(u)'s files")
                }
            }
        }
    }

    // MARK: Report

    func table(wall: Double, full: Bool) -> String {
        let kinds = ChaosConfig.kinds
        var out = "shredvault chaos walk (\(full ? "full" : "sample, seed \(ChaosConfig.seed), \(ChaosConfig.sample) points requested")), "
            + "modes \(ChaosConfig.modes.joined(separator: ",")), kinds \(kinds.joined(separator: ","))\(ChaosConfig.sticky ? ", sticky errors" : "")\n"
        out += "calls: calls of each kind one clean run makes; faults: points walked per kind whose fault landed (all modes)\n"
        func pad(_ s: String, _ w: Int) -> String { s.count >= w ? s : s + String(repeating: " ", count: w - s.count) }
        func lpad(_ s: String, _ w: Int) -> String { s.count >= w ? s : String(repeating: " ", count: w - s.count) + s }
        let short = ["fsync": "fsync", "fdatasync": "fdsync", "write": "write", "pwrite": "pwrite", "rename": "rename", "unlink": "unlink",
                     "ftruncate": "ftrunc", "mkdir": "mkdir", "create": "create", "rmdir": "rmdir"]
        var header = pad("command", 24) + " | calls " + kinds.map { lpad(short[$0] ?? $0, 6) }.joined(separator: " ")
        header += " | points | faults " + kinds.map { lpad(short[$0] ?? $0, 6) }.joined(separator: " ")
        header += " | missed | viol.pts | viol. | swallowed | clean-viol | secs"
        out += header + "\n" + String(repeating: "-", count: header.count) + "\n"
        var tot = ChaosRow(command: "TOTAL")
        for r in rows {
            out += pad(r.command, 24) + " |       " + kinds.map { lpad(String(r.counts[$0] ?? 0), 6) }.joined(separator: " ")
            out += " | " + lpad(String(r.points), 6) + " |        " + kinds.map { lpad(String(r.landed[$0] ?? 0), 6) }.joined(separator: " ")
            out += " | " + lpad(String(r.missed), 6) + " | " + lpad(String(r.violatingPoints), 8) + " | " + lpad(String(r.violations), 5)
            out += " | " + lpad(String(r.swallowed), 9) + " | " + lpad(String(r.cleanViolations), 10) + " | " + lpad(String(format: "%.0f", r.seconds), 4) + "\n"
            for k in kinds { tot.counts[k, default: 0] += r.counts[k] ?? 0; tot.landed[k, default: 0] += r.landed[k] ?? 0 }
            tot.points += r.points; tot.missed += r.missed; tot.violatingPoints += r.violatingPoints; tot.violations += r.violations
            tot.swallowed += r.swallowed; tot.cleanViolations += r.cleanViolations; tot.seconds += r.seconds
        }
        out += String(repeating: "-", count: header.count) + "\n"
        out += pad("TOTAL", 24) + " |       " + kinds.map { lpad(String(tot.counts[$0] ?? 0), 6) }.joined(separator: " ")
        out += " | " + lpad(String(tot.points), 6) + " |        " + kinds.map { lpad(String(tot.landed[$0] ?? 0), 6) }.joined(separator: " ")
        out += " | " + lpad(String(tot.missed), 6) + " | " + lpad(String(tot.violatingPoints), 8) + " | " + lpad(String(tot.violations), 5)
        out += " | " + lpad(String(tot.swallowed), 9) + " | " + lpad(String(tot.cleanViolations), 10) + " | " + lpad(String(format: "%.0f", tot.seconds), 4) + "\n"
        out += String(format: "wall time %.1f s (%.2f s per point)\n", wall, wall / Double(max(tot.points + rows.count, 1)))
        // Violations grouped by command and invariant, with the points that showed them.
        if !violations.isEmpty {
            out += "\nviolations by command and invariant (points: kind#k/mode; 'none' = the clean run):\n"
            var groups: [String: [ChaosViolation]] = [:]
            for v in violations { groups[v.command + "\t" + v.invariant, default: []].append(v) }
            for key in groups.keys.sorted() {
                let vs = groups[key]!
                let parts = key.split(separator: "\t")
                let pts = vs.map { $0.mode == "none" ? "none" : "\($0.kind)#\($0.k)/\($0.mode)" }
                var uniq: [String] = []
                for p in pts where !uniq.contains(p) { uniq.append(p) }
                out += "  \(parts[0]) \(parts[1]) x\(vs.count) at \(uniq.prefix(12).joined(separator: " "))\(uniq.count > 12 ? " ..." : "")\n"
                var msgs: [String] = []
                for v in vs where !msgs.contains(v.message) { msgs.append(v.message) }
                for m in msgs.prefix(3) { out += "      e.g. \(m.prefix(300))\n" }
                if let h = vs.first(where: { !$0.hit.isEmpty })?.hit { out += "      first fault: \(h)\n" }
            }
        }
        out += "\nhow the faulted runs ended (mode:exit code x count; 74 = I/O error, 1 = internal error):\n"
        for r in rows where !r.outcomes.isEmpty {
            out += "  \(pad(r.command, 24)) " + r.outcomes.keys.sorted().map { "\($0) x\(r.outcomes[$0]!)" }.joined(separator: ", ") + "\n"
        }
        if !swallowed.isEmpty {
            // Grouped by command, call and file (hex and numbers in names folded), so SQLite's best-effort unlink of
            // a checkpointed -wal/-shm at close shows as one line per command.
            out += "\nexit 0 after an injected error (\(swallowed.count) points; informational, not counted as violations):\n"
            var groups: [String: [String]] = [:]
            for line in swallowed {
                let parts = line.split(separator: " ").map(String.init)   // command kind#k mode: exit 0 after MODE KIND SYMBOL N TARGET...
                let target = parts.count > 10 ? (parts[10] as NSString).lastPathComponent : "?"
                let folded = target.replacingOccurrences(of: "[0-9a-f]{6,}", with: "*", options: .regularExpression)
                    .replacingOccurrences(of: "[0-9]+", with: "N", options: .regularExpression)
                let kind = parts.count > 1 ? String(parts[1].split(separator: "#").first ?? "") : "?"
                groups["\(parts.first ?? "?") \(kind) on \(folded)", default: []].append(parts.count > 2 ? parts[1] + "/" + parts[2].dropLast() : "?")
            }
            for key in groups.keys.sorted() {
                out += "  \(key) x\(groups[key]!.count): \(groups[key]!.prefix(6).joined(separator: " "))\n"
            }
        }
        if !missedPoints.isEmpty { out += "\nfaults that did not land (the run made fewer calls): \(missedPoints.prefix(20).joined(separator: "; "))\n" }
        return out
    }
}
