import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Crash safety (G4): `archive` is SIGKILLed 21 times, each time in a state of the run that the test observed and
/// checked while the job was frozen, then re-run until it completes. After every kill, and at the end, every inactive
/// user is either intact in the source or has exactly one live bundle; at the end every one of them has exactly one
/// bundle that restores byte-identical, none is lost or duplicated, and `check` finds no orphan file or violation.
///
/// How a kill is placed: the job runs in short slices; after each slice it is frozen (SIGSTOP, and `waitpid` reports
/// it stopped), and the test reads the vault (catalog rows, files under bundles/, the sources, /proc/locks). When the
/// state the kill is meant for holds, the frozen job gets SIGKILL, so the kill lands exactly in that state; otherwise
/// it is resumed (SIGCONT). No kill is timed by a sleep, and no signal is sent to a child already reaped. A kill
/// counts as landed only when the state held while the job was frozen and `waitpid` then reports the job ended by
/// that SIGKILL; the test asserts that every kill landed.
final class LifecycleCrashTests: XCTestCase {
    /// A state of an archive run, as the vault shows it (vault-format.md §6).
    enum Claim: String, CaseIterable {
        /// A user's bundle is being written: a temporary bundle file exists and its row is 'writing'.
        case sealing
        /// A user's bundle file is in place, its row still 'writing' (verifying, sealing the DEK, waiting for the commit).
        case sealedNotCommitted
        /// Bundles this run committed ('live') whose sources are not all removed yet ('pending-removal').
        case removingSources
        /// The job holds the vault lock and the 'writing' rows the previous crash left are not all cleaned up yet.
        case recoveringPreviousCrash
    }

    /// What the probe saw while the job was frozen.
    struct VaultState {
        struct Row { var id: String; var user: String; var state: String; var sourceState: String }
        var rows: [Row]
        /// Paths under the vault (bundles/…).
        var files: [String]
        /// Users whose source directory exists.
        var sources: Set<String>

        var writingIds: Set<String> { Set(rows.filter { $0.state == "writing" }.map(\.id)) }
        var liveIds: Set<String> { Set(rows.filter { $0.state == "live" }.map(\.id)) }
        func row(_ id: String) -> Row? { rows.first { $0.id == id } }
    }

    /// Reads catalog rows (through a python3 process started once), files under bundles/ and the sources.
    final class Probe {
        let process = Process()
        let input = Pipe(), output = Pipe()
        var buffer = Data()

        init(vault: String, source: String, users: [String]) throws {
            // The catalog is read from a copy of catalog.db and its WAL (never the -shm index): the frozen job may
            // hold SQLite's locks (e.g. while it recovers the WAL a killed run left), and a reader of the live files
            // would wait for it forever. The copy holds exactly what was committed when the job was frozen.
            let script = """
                import json, os, shutil, sqlite3, sys, tempfile
                vault, source, users = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
                tmp = tempfile.mkdtemp(prefix="shredvault-probe-")
                for _ in sys.stdin:
                    for name in ("catalog.db", "catalog.db-wal", "catalog.db-shm"):
                        if os.path.exists(os.path.join(tmp, name)):
                            os.unlink(os.path.join(tmp, name))
                    rows, error = None, None
                    try:
                        for name in ("catalog.db", "catalog.db-wal"):
                            if os.path.exists(os.path.join(vault, name)):
                                shutil.copyfile(os.path.join(vault, name), os.path.join(tmp, name))
                        con = sqlite3.connect(os.path.join(tmp, "catalog.db"), timeout=0)
                        try:
                            rows = con.execute("SELECT id, user_id, state, source_state FROM bundles").fetchall()
                        finally:
                            con.close()
                    except (sqlite3.Error, OSError) as e:
                        error = str(e)
                    files = []
                    for d, _, names in os.walk(vault + "/bundles"):
                        files += [os.path.relpath(os.path.join(d, n), vault) for n in names]
                    present = [u for u in users if os.path.isdir(source + "/users/" + u)]
                    print(json.dumps({"rows": rows, "error": error, "files": files, "sources": present}), flush=True)
                shutil.rmtree(tmp)
                """
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", script, vault, source, users.joined(separator: ",")]
            process.standardInput = input
            process.standardOutput = output
            try process.run()
        }

        func read() throws -> VaultState {
            try input.fileHandleForWriting.write(contentsOf: Data("\n".utf8))
            while buffer.firstIndex(of: 0x0a) == nil {
                let more = output.fileHandleForReading.availableData
                guard !more.isEmpty else { throw NSError(domain: "probe", code: 1, userInfo: [NSLocalizedDescriptionKey: "probe ended"]) }
                buffer += more
            }
            let newline = buffer.firstIndex(of: 0x0a)!
            let line = buffer[buffer.startIndex..<newline]
            buffer = Data(buffer[buffer.index(after: newline)...])
            let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: line) as? [String: Any])
            guard let rows = json["rows"] as? [[Any]] else {
                throw NSError(domain: "probe", code: 2, userInfo: [NSLocalizedDescriptionKey: "catalog unreadable: \(json["error"] ?? "?")"])
            }
            return VaultState(
                rows: rows.map { .init(id: $0[0] as? String ?? "?", user: $0[1] as? String ?? "?", state: $0[2] as? String ?? "?",
                                       sourceState: $0[3] as? String ?? "?") },
                files: json["files"] as? [String] ?? [], sources: Set(json["sources"] as? [String] ?? []))
        }

        deinit {
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }
    }

    /// The claim's proof in `now` (read while the job is frozen), relative to `before` (read before it started); nil if
    /// the state does not hold.
    static func proof(of claim: Claim, now: VaultState, before: VaultState, holdsLock: Bool) -> String? {
        // Sealing kills are placed before this run's first commit, so they never use up work the schedule needs later.
        let committedNow = now.liveIds.subtracting(before.liveIds)
        let newWriting = now.writingIds.subtracting(before.writingIds)
        switch claim {
        case .sealing:
            guard committedNow.isEmpty else { return nil }
            for f in now.files {
                let name = (f as NSString).lastPathComponent
                guard name.hasPrefix("."), let r = name.range(of: ".svb.partial-") else { continue }
                let id = String(name[name.index(after: name.startIndex)..<r.lowerBound])
                if newWriting.contains(id), let row = now.row(id) { return "sealing \(row.user): \(name) exists, row 'writing'" }
            }
            return nil
        case .sealedNotCommitted:
            guard committedNow.isEmpty else { return nil }
            for id in newWriting.sorted() where now.files.contains(where: { $0.hasSuffix("/" + id + ".svb") }) {
                return "\(now.row(id)!.user)'s bundle \(id).svb in place, row still 'writing'"
            }
            return nil
        case .removingSources:
            let pending = now.rows.filter { committedNow.contains($0.id) && $0.sourceState == "pending-removal" }
            guard !pending.isEmpty else { return nil }
            let gone = pending.filter { !now.sources.contains($0.user) }.count
            return "\(committedNow.count) bundles committed by this run, \(pending.count) sources pending removal (\(gone) of them already gone)"
        case .recoveringPreviousCrash:
            guard holdsLock, !before.writingIds.isEmpty else { return nil }
            let left = before.writingIds.intersection(now.writingIds)
            guard !left.isEmpty else { return nil }
            return "job holds the lock; \(left.count) of the \(before.writingIds.count) 'writing' rows of the previous crash still there"
        }
    }

    /// A cheap look at the frozen vault, without SQLite: nil when the claim cannot hold yet, else a fingerprint of what
    /// it depends on (the catalog is read again only when that changed). Sealing states need a temporary or final
    /// bundle file of a bundle unknown before the run; the others depend on the catalog's files.
    static func look(_ vault: String, for claim: Claim, before: VaultState) -> String? {
        var files: [String] = []
        // bundles/YYYY/MM/DD/<files> (vault-format.md §6)
        func walk(_ dir: String, depth: Int = 0) {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
            if depth == 3 { files += names } else { for name in names { walk(dir + "/" + name, depth: depth + 1) } }
        }
        let known = Set(before.rows.map(\.id))
        func id(_ name: String) -> String { String(name.drop { $0 == "." }.prefix(32)) }
        switch claim {
        case .sealing:
            walk(vault + "/bundles")
            let temporary = files.filter { $0.hasPrefix(".") && $0.contains(".svb.partial-") && !known.contains(id($0)) }
            return temporary.isEmpty ? nil : temporary.sorted().joined(separator: ",")
        case .sealedNotCommitted:
            walk(vault + "/bundles")
            let sealed = files.filter { !$0.hasPrefix(".") && $0.hasSuffix(".svb") && !known.contains(id($0)) }
            return sealed.isEmpty ? nil : sealed.sorted().joined(separator: ",")
        case .removingSources, .recoveringPreviousCrash:
            var out = ""
            for name in ["catalog.db", "catalog.db-wal"] {
                var st = stat()
                if stat(vault + "/" + name, &st) == 0 { out += "\(name) \(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec) \(st.st_ino);" }
            }
            return out
        }
    }

    func testArchiveSurvivesSIGKILLAtManyPointsAndConverges() throws {
        let s = try Scenario(self)
        let fm = FileManager.default
        // 80 inactive users (5 batches of 16), 6 active ones, 2 inactive ones without data. The first user of every
        // batch has 400 small files (its source removal takes a while) and the fourth a 1 MB incompressible file (its
        // sealing takes a while): every state of the schedule lasts long enough to be seen between two slices.
        var users: [SourceUser] = []
        for i in 0..<80 {
            var files = sampleFiles(seed: UInt64(100 + i))
            if i % 16 == 0 { for k in 0..<400 { files["many/f\(k).txt"] = Data("file \(k) of user \(i)\n".utf8) } }
            if i % 16 == 3 { files["calls/c2/recording.wav"] = pseudoRandom(1 << 20, seed: UInt64(900 + i)) }
            users.append(SourceUser(id: String(format: "uc%03d", i), lastActive: inactiveDate, files: files))
        }
        for i in 0..<6 { users.append(SourceUser(id: String(format: "ua%03d", i), lastActive: activeDate, files: sampleFiles(seed: UInt64(300 + i)))) }
        for i in 0..<2 { users.append(SourceUser(id: String(format: "un%03d", i), lastActive: inactiveDate, files: nil)) }
        try s.writeSource(users)
        let withData = users.filter { $0.lastActive == inactiveDate && $0.files != nil }.map(\.id).sorted()
        let active = users.filter { $0.lastActive == activeDate }.map(\.id)
        var pristineTrees: [String: Tree] = [:]
        for u in users where u.files != nil { pristineTrees[u.id] = try Tree(s.pristine + "/users/" + u.id) }

        func reset() throws {
            for p in [s.vault, s.source] where fm.fileExists(atPath: p) { try fm.removeItem(atPath: p) }
            try fm.copyItem(atPath: s.pristine, toPath: s.source)
            try s.initVault()
        }
        let archiveArgs = ["archive", "--source", s.source, "--vault", s.vault, "--now", SimDay.now(0), "--jobs", "2"]

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
                XCTAssertEqual(try Tree(s.source + "/users/" + u), pristineTrees[u], "\(label): active user \(u) changed")
            }
            return bundles.compactMapValues { $0.count == 1 ? $0[0] : nil }
        }

        // Within a round, sealing kills come before this run's first commit; every removing-sources kill uses up one or
        // two batches, so a round has at most two and there is always work left for the kills after them.
        let rounds: [[Claim]] = [
            [.sealing, .recoveringPreviousCrash, .sealedNotCommitted, .recoveringPreviousCrash, .removingSources, .sealing, .removingSources],
            [.sealedNotCommitted, .recoveringPreviousCrash, .removingSources, .sealing, .recoveringPreviousCrash, .removingSources, .sealedNotCommitted],
            [.sealing, .sealing, .recoveringPreviousCrash, .removingSources, .sealedNotCommitted, .removingSources, .recoveringPreviousCrash],
        ]
        let probe = try Probe(vault: s.vault, source: s.source, users: withData)
        var landed: [String] = []
        var notLanded: [String] = []
        var landedByClaim: [Claim: Int] = [:]
        var steps = 0, probes = 0
        let started = Date()
        for (round, claims) in rounds.enumerated() {
            let lastRound = round == rounds.count - 1
            try reset()
            var committed: [String: String] = [:]
            var inFlight = Set<String>()
            for (k, claim) in claims.enumerated() {
                let label = "round \(round) kill \(k) (\(claim.rawValue))"
                let before = try probe.read()
                let job = try SpawnedProcess.shredvault(archiveArgs, logs: s.dir + "/job-\(round)-\(k)")
                var proof: String?
                // Every state of the schedule needs the job to hold the vault lock: until it does (start-up), slices grow
                // from 0.2 ms to 1 ms and the vault is not read; then they are 0.5 ms. The catalog is read only when a
                // cheap look at the frozen vault says the state may hold and differs from the last read (`look`), and
                // then at least every 25th step.
                var slice: useconds_t = 200
                var lastLook: String?
                var sinceProbe = 0
                while true {
                    usleep(slice)
                    guard job.stop() else { break }  // it exited first: reaped, never signalled again
                    steps += 1
                    guard job.holdsLock(on: s.vault + "/lock") else {
                        slice = min(slice * 2, 1000)
                        job.resume()
                        continue
                    }
                    slice = 500
                    let look = Self.look(s.vault, for: claim, before: before)
                    sinceProbe += 1
                    if let look, look != lastLook || sinceProbe >= 25 {
                        lastLook = look
                        sinceProbe = 0
                        probes += 1
                        if let state = try? probe.read(), let p = Self.proof(of: claim, now: state, before: before, holdsLock: true) {
                            proof = p
                            break
                        }
                    }
                    job.resume()
                }
                if let proof {
                    // Frozen in the claimed state: the SIGKILL lands there.
                    if job.killAndReap() {
                        landed.append("\(label): \(proof)")
                        landedByClaim[claim, default: 0] += 1
                    } else {
                        notLanded.append("\(label): frozen in the state but not ended by SIGKILL (status \(job.waitStatus.map(String.init) ?? "?"))")
                    }
                } else {
                    notLanded.append("\(label): the job finished (exit \(job.waitUntilExit().map(String.init) ?? "signal")) before the state was seen; stderr: \(job.stderr)")
                }
                let live = try invariant(label)
                // A committed bundle is final: the same bundle must still be the user's bundle later.
                for (u, id) in live {
                    if let earlier = committed[u] { XCTAssertEqual(id, earlier, "round \(round): \(u)'s bundle was replaced") }
                    committed[u] = id
                }
                // The users the crash hit: the next ones to archive, and any whose source removal was cut short.
                inFlight.formUnion(withData.filter { live[$0] == nil }.prefix(2))
                inFlight.formUnion(withData.filter { live[$0] != nil && fm.fileExists(atPath: s.source + "/users/" + $0) })
            }
            // Re-run without killing until the job completes; then once more: it has converged.
            let finish = try s.sv(["archive", "--source", s.source], day: 0)
            assertSuccess(finish, "round \(round): archive after the crashes")
            let again = try s.sv(["archive", "--source", s.source], day: 0)
            assertSuccess(again, "round \(round): archive again")
            XCTAssertEqual(try XCTUnwrap(again.json?["archived"] as? [[String: Any]], again.stdout).count, 0, "round \(round): converged: \(again.stdout)")

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
            let restoreRoot = s.dir + "/restored-\(round)"  // `restore --all-held` creates it
            let toRestore = lastRound ? withData : inFlight.sorted()
            if lastRound {
                assertSuccess(try s.svk(["hold", "place", "--all", "--case", "G4-\(round)", "--reason", "crash test"], day: 0, json: false), "hold all")
            } else {
                for u in toRestore {
                    assertSuccess(try s.svk(["hold", "place", u, "--case", "G4-\(round)", "--reason", "crash test"], day: 0, json: false), "hold \(u)")
                }
            }
            assertSuccess(try s.svk(["restore", "--all-held", "--case", "G4-\(round)", "--to", restoreRoot], day: 0, json: false), "restore")
            for u in toRestore {
                XCTAssertEqual(try Tree(restoreRoot + "/" + u), pristineTrees[u], "round \(round): \(u) restores byte-identical")
            }
            try fm.removeItem(atPath: restoreRoot)
        }
        let total = rounds.map(\.count).reduce(0, +)
        // The proof, counted: every kill landed in the state it was meant for, and every kind of state was hit.
        XCTAssertEqual(landed.count, total, "kills that landed mid-run in their state; the others: \(notLanded)")
        XCTAssertEqual(notLanded, [])
        for claim in Claim.allCases {
            XCTAssertEqual(landedByClaim[claim] ?? 0, rounds.flatMap { $0 }.filter { $0 == claim }.count, "kills landed while \(claim.rawValue)")
        }
        print("crash test: \(landed.count) of \(total) kills landed mid-run in the observed state "
              + "(\(Claim.allCases.map { "\($0.rawValue) \(landedByClaim[$0] ?? 0)" }.joined(separator: ", "))); "
              + "\(steps) freeze-and-look steps, \(probes) catalog reads, \(Int(Date().timeIntervalSince(started))) s")
        for line in landed { print("  " + line) }
    }
}
