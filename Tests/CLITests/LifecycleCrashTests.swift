import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Crash safety (G4): `archive` is SIGKILLed at many points while it archives dozens of users, then re-run until
/// it completes. After every kill, and at the end, every inactive user is either intact in the source or has
/// exactly one live bundle; at the end every one of them has exactly one bundle that restores byte-identical,
/// none is lost or duplicated, and `check` finds no orphan file or other violation.
final class LifecycleCrashTests: XCTestCase {
    struct Account { var id: String; var lastActive: String }

    func accounts(_ csvPath: String) throws -> [Account] {
        let lines = try String(contentsOfFile: csvPath, encoding: .utf8).split(separator: "\n").map(String.init)
        let header = lines[0].split(separator: ",").map(String.init)
        let u = try XCTUnwrap(header.firstIndex(of: "user_id")), d = try XCTUnwrap(header.firstIndex(of: "last_active"))
        return lines.dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
            .map { Account(id: $0[u], lastActive: $0[d]) }
    }

    func testArchiveSurvivesSIGKILLAtManyPointsAndConverges() throws {
        let s = try Scenario(self)
        let pristine = s.pristine
        let gen = try CLI.execute(CLI.packageRoot + "/tools/gen-samples",
                                  ["--out", pristine, "--users", "40", "--seed", "3", "--median-kib", "8", "--quiet"])
        XCTAssertEqual(gen.status, 0, gen.stderr)
        let all = try accounts(pristine + "/accounts.csv")
        XCTAssertEqual(all.count, 40)
        let fm = FileManager.default
        // Policy: inactive when today − last_active ≥ 365 days.
        let inactive = Set(all.filter { SimDay.day0 - SimDay.days(iso: $0.lastActive)! >= 365 }.map(\.id))
        let withData = inactive.filter { fm.fileExists(atPath: pristine + "/users/" + $0) }.sorted()
        let active = all.map(\.id).filter { !inactive.contains($0) }
        XCTAssertGreaterThanOrEqual(withData.count, 20, "dozens of users to archive")
        var pristineTrees: [String: Tree] = [:]
        for u in all.map(\.id) where fm.fileExists(atPath: pristine + "/users/" + u) { pristineTrees[u] = try Tree(pristine + "/users/" + u) }

        func reset() throws {
            for p in [s.vault, s.source] where fm.fileExists(atPath: p) { try fm.removeItem(atPath: p) }
            try fm.copyItem(atPath: pristine, toPath: s.source)
            try s.initVault()
        }
        let archiveArgs = ["archive", "--source", s.source, "--vault", s.vault, "--now", SimDay.now(0)]

        // Calibrate: how long an uninterrupted archive and a no-op command take on this machine.
        try reset()
        var start = Date()
        assertSuccess(try s.sv(["status"], day: 0), "status")
        let startup = Date().timeIntervalSince(start)
        start = Date()
        let calibration = try s.sv(["archive", "--source", s.source], day: 0)
        let full = Date().timeIntervalSince(start)
        assertSuccess(calibration, "uninterrupted archive")
        XCTAssertEqual(((calibration.json?["archived"] as? [[String: Any]]) ?? []).compactMap { $0["user"] as? String }.sorted(), withData,
                       "an uninterrupted run archives exactly the inactive users with data")

        /// G4 at any instant: intact source, or exactly one live bundle; never two.
        func invariant(_ label: String) throws -> [String: String] {
            let r = try s.sv(["list"], day: 0)
            assertSuccess(r, "list (\(label))")
            var bundles: [String: [String]] = [:]
            for b in jsonLines(r.stdout) { bundles[b["user"] as? String ?? "?", default: []].append(b["bundleId"] as? String ?? "?") }
            for (u, ids) in bundles { XCTAssertEqual(ids.count, 1, "\(label): \(u) has \(ids.count) live bundles") }
            for u in withData {
                let intact = fm.fileExists(atPath: s.source + "/users/" + u) ? (try Tree(s.source + "/users/" + u)) == pristineTrees[u] : false
                XCTAssertTrue(intact || bundles[u]?.count == 1, "\(label): \(u) is neither intact in the source nor archived (lost)")
            }
            for u in active {
                XCTAssertNil(bundles[u], "\(label): active user \(u) was archived")
                if let t = pristineTrees[u] { XCTAssertEqual(try Tree(s.source + "/users/" + u), t, "\(label): active user \(u) changed") }
            }
            return bundles.compactMapValues { $0.count == 1 ? $0[0] : nil }
        }

        // Kill points. A fixed delay alone mostly lands in the start-up (every run re-reads accounts.csv, recovers
        // and sweeps), so most kills are triggered by what the run has done so far, polled every millisecond:
        // `.files(n)`: n more files under bundles/ (temporary bundle, renamed bundle, sidecar: sealing and
        // verifying); `.removed(n)`: n more user sources gone (after a batch commit, during source removal);
        // `.delay(f)`: f × the calibrated run time (start-up, recovery of the previous crash, sweep, commit).
        enum Trigger: CustomStringConvertible {
            case files(Int), removed(Int), delay(Double)
            var description: String {
                switch self {
                case .files(let n): return "after \(n) more files in bundles/"
                case .removed(let n): return "after \(n) sources removed"
                case .delay(let f): return "after \(Int(f * 100))% of a run"
                }
            }
        }
        // Within a round, kills before the first commit leave only 'writing' rows (undone by the next run), so
        // they come first; the removal-phase kills come last (the run after one finishes the pending removals).
        let rounds: [[Trigger]] = [
            [.files(1), .files(9), .files(30), .files(5), .delay(0.3), .removed(1), .delay(0.2)],
            [.files(3), .files(20), .files(45), .files(12), .removed(2), .removed(1)],
            [.delay(0.35), .files(16), .files(40), .files(52), .removed(6), .removed(1), .files(1)],
        ]
        func sourcesLeft() -> Int { withData.filter { fm.fileExists(atPath: s.source + "/users/" + $0) }.count }
        func bundleFiles() -> Int { regularFiles(under: s.vault + "/bundles").count }

        var interrupted = 0
        var statesSeen = Set<String>()
        var sawSealing = false, sawPendingRemoval = false
        var finishedBeforeTrigger: [String] = []
        for (round, triggers) in rounds.enumerated() {
            let lastRound = round == rounds.count - 1
            try reset()
            var committed: [String: String] = [:]
            var inFlight = Set<String>()
            for (k, trigger) in triggers.enumerated() {
                // Files are counted from the lowest point since the start (the run first deletes what the previous
                // crash left); sources only ever decrease.
                var filesLow = bundleFiles()
                let sources0 = sourcesLeft()
                let started = Date()
                let p = try spawnShredvault(archiveArgs)
                while p.isRunning && Date().timeIntervalSince(started) < 3 * full + 2 {
                    let fire: Bool
                    switch trigger {
                    case .files(let n):
                        let now = bundleFiles()
                        filesLow = min(filesLow, now)
                        fire = now - filesLow >= n
                    case .removed(let n): fire = sources0 - sourcesLeft() >= n
                    case .delay(let f): fire = Date().timeIntervalSince(started) >= f * full
                    }
                    if fire { break }
                    usleep(1000)
                }
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
                if p.terminationReason == .uncaughtSignal { interrupted += 1 } else { finishedBeforeTrigger.append("round \(round) \(trigger)") }
                let live = try invariant("round \(round) kill \(k) \(trigger)")
                // A committed bundle is final: the same bundle must still be the user's bundle later.
                for (u, id) in live {
                    if let earlier = committed[u] { XCTAssertEqual(id, earlier, "round \(round): \(u)'s bundle was replaced") }
                    committed[u] = id
                }
                // The users the crash hit: the next ones to archive, and any whose source removal was cut short.
                inFlight.formUnion(withData.filter { live[$0] == nil }.prefix(2))
                inFlight.formUnion(withData.filter { live[$0] != nil && fm.fileExists(atPath: s.source + "/users/" + $0) })
                statesSeen.insert("\(live.count) live, \(bundleFiles()) files, \(sourcesLeft()) sources")
                // Killed while sealing: bundle files on disk beyond the committed bundles and their sidecars.
                if bundleFiles() > 2 * live.count { sawSealing = true }
                // Killed between a commit and the removal of its sources.
                if withData.contains(where: { live[$0] != nil && fm.fileExists(atPath: s.source + "/users/" + $0) }) { sawPendingRemoval = true }
            }
            // Re-run without killing until the job completes; then once more: it has converged.
            let finish = try s.sv(["archive", "--source", s.source], day: 0)
            assertSuccess(finish, "round \(round): archive after the crashes")
            let again = try s.sv(["archive", "--source", s.source], day: 0)
            assertSuccess(again, "round \(round): archive again")
            XCTAssertEqual(((again.json?["archived"] as? [[String: Any]]) ?? []).count, 0, "round \(round): converged: \(again.stdout)")

            let live = try invariant("round \(round) final")
            XCTAssertEqual(live.keys.sorted(), withData, "round \(round): every inactive user with data has exactly one bundle")
            for (u, id) in committed { XCTAssertEqual(live[u], id, "round \(round): \(u)'s committed bundle survived the crashes") }
            for u in withData {
                XCTAssertFalse(fm.fileExists(atPath: s.source + "/users/" + u), "round \(round): \(u)'s source removed once archived")
            }
            // Each bundle holds as many files as the pristine source (a partly removed source was never re-archived).
            let listedBundles = try s.listed(day: 0)
            for b in listedBundles {
                let u = b["user"] as? String ?? "?"
                XCTAssertEqual(b["files"] as? Int, pristineTrees[u]?.fileCount, "round \(round): \(u)'s bundle file count")
            }
            // No orphan or temporary file: bundles/ holds exactly each live bundle and its DEK sidecar; check agrees.
            var expected = Set<String>()
            for b in listedBundles {
                let loc = b["location"] as? String ?? "?"
                expected.insert(loc)
                expected.insert(String(loc.dropLast(4)) + ".dek")
            }
            let present = Set(regularFiles(under: s.vault + "/bundles").map { String($0.dropFirst(s.vault.count + 1)) })
            XCTAssertEqual(present.subtracting(expected).sorted(), [], "round \(round): unexpected files under bundles/")
            XCTAssertEqual(expected.subtracting(present).sorted(), [], "round \(round): missing files under bundles/")
            let check = try s.svk(["check", "--read-data"], day: 0)
            assertSuccess(check, "round \(round): check --read-data")
            XCTAssertEqual(check.json?["checkedBundles"] as? Int, withData.count, check.stdout)

            // Restores byte-identical to the pristine source, under a legal hold: the users the crashes hit, and in
            // the last round every user.
            let restoreRoot = s.dir + "/restored-\(round)"
            try fm.createDirectory(atPath: restoreRoot, withIntermediateDirectories: false)
            for u in lastRound ? withData : inFlight.sorted() {
                assertSuccess(try s.svk(["hold", "place", u, "--case", "G4-\(round)", "--reason", "crash test"], day: 0, json: false), "hold \(u)")
                assertSuccess(try s.svk(["restore", u, "--case", "G4-\(round)", "--to", restoreRoot + "/" + u], day: 0, json: false), "restore \(u)")
                XCTAssertEqual(try Tree(restoreRoot + "/" + u), pristineTrees[u], "round \(round): \(u) restores byte-identical")
            }
            try fm.removeItem(atPath: restoreRoot)
        }
        let total = rounds.map(\.count).reduce(0, +)
        // The kills must have exercised the crash windows that matter for G4 (not only start-up or finished runs).
        XCTAssertGreaterThanOrEqual(interrupted, total / 4, "kills hit running archives; finished first: \(finishedBeforeTrigger)")
        XCTAssertTrue(sawSealing, "some kill interrupted the sealing of bundles: \(statesSeen.sorted())")
        XCTAssertTrue(sawPendingRemoval, "some kill fell between a commit and the source removal: \(statesSeen.sorted())")
        XCTAssertGreaterThanOrEqual(statesSeen.count, 5, "kills left the vault in different states: \(statesSeen.sorted())")
        print("crash test: \(interrupted) of \(total) kills interrupted a run (finished first: \(finishedBeforeTrigger)); full archive \(Int(full * 1000)) ms, start-up \(Int(startup * 1000)) ms; states after kills: \(statesSeen.sorted())")
    }
}
