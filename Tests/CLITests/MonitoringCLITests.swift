import Foundation
import XCTest

/// Watching a vault like a service (issue 14, items 2 and 3), through the binary on drill vaults: the metrics file
/// for node_exporter's textfile collector, `status --health` and its exit code 20, and the job logs.
final class MonitoringCLITests: XCTestCase {
    /// A drill vault with three inactive users in its source, initialised on day 0.
    func makeScenario() throws -> Scenario {
        let s = try Scenario(self)
        try s.writeSource([
            SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 11)),
            SourceUser(id: "ub", lastActive: inactiveDate, files: sampleFiles(seed: 12)),
            SourceUser(id: "uc", lastActive: inactiveDate, files: sampleFiles(seed: 13)),
        ])
        try s.initVault()
        return s
    }

    func readMetrics(_ path: String, file: StaticString = #filePath, line: UInt = #line) throws -> Exposition {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        do {
            return try Exposition(text)
        } catch {
            XCTFail("metrics file does not parse: \(error)\n\(text)", file: file, line: line)
            throw error
        }
    }

    // MARK: - Metrics

    func testEveryJobWritesAParsableMetricsFileThatCarriesTheOtherJobs() throws {
        let s = try makeScenario()
        let dir = s.dir + "/textfile"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        let prom = dir + "/shredvault.prom"

        assertSuccess(try s.sv(["archive", "--source", s.source, "--metrics-file", prom], day: 0), "archive")
        var m = try readMetrics(prom)
        XCTAssertEqual(m.value("shredvault_live_bundles"), 3)
        XCTAssertEqual(m.value("shredvault_live_users"), 3)
        XCTAssertGreaterThan(m.value("shredvault_live_bundle_bytes") ?? 0, 1000)
        XCTAssertGreaterThan(m.value("shredvault_live_plaintext_bytes") ?? 0, 1000)
        // 90 days counting the archive day: 89 days left on day 0.
        XCTAssertEqual(m.value("shredvault_expiring_bundles", ["days_left": "31-90"]), 3)
        XCTAssertEqual(m.value("shredvault_expiring_bundles", ["days_left": "0-7"]), 0)
        XCTAssertEqual(m.value("shredvault_last_success_timestamp_seconds", ["job": "archive"]), Double(try epoch(SimDay.now(0))))
        XCTAssertNotNil(m.value("shredvault_run_duration_seconds", ["job": "archive"]))
        XCTAssertNil(m.value("shredvault_backup_age_seconds"), "no backup yet")
        XCTAssertEqual(m.value("shredvault_drill"), 1)
        for (name, family) in m.families {
            XCTAssertTrue(name.hasPrefix("shredvault_"), name)
            XCTAssertNotNil(family.help, "HELP of \(name)")
            XCTAssertNotNil(family.type, "TYPE of \(name)")
            XCTAssertEqual(name.hasSuffix("_total"), family.type == "counter", "only counters end in _total: \(name)")
        }

        // Another job by the environment variable: the file still carries archive's last success. It is a new file
        // renamed over the old one (a new inode), never the old one rewritten in place, which the collector could read half-done.
        let inode = try FileManager.default.attributesOfItem(atPath: prom)[.systemFileNumber] as? UInt64
        assertSuccess(try s.sv(["backup", "--to", s.dir + "/backup"], day: 2, environment: ["SHREDVAULT_METRICS_FILE": prom]), "backup")
        XCTAssertNotEqual(try FileManager.default.attributesOfItem(atPath: prom)[.systemFileNumber] as? UInt64, inode, "replaced by rename")
        assertSuccess(try s.sv(["delete", "ub", "--request-id", "R-1"], day: 3, extra: ["--metrics-file", prom]), "delete")
        m = try readMetrics(prom)
        XCTAssertEqual(m.value("shredvault_last_success_timestamp_seconds", ["job": "archive"]), Double(try epoch(SimDay.now(0))))
        XCTAssertEqual(m.value("shredvault_last_success_timestamp_seconds", ["job": "backup"]), Double(try epoch(SimDay.now(2))))
        XCTAssertEqual(m.value("shredvault_last_success_timestamp_seconds", ["job": "delete"]), Double(try epoch(SimDay.now(3))))
        XCTAssertEqual(m.value("shredvault_backup_age_seconds"), 86_400)
        XCTAssertEqual(m.value("shredvault_deletion_requests", ["state": "done"]), 1)
        XCTAssertEqual(m.value("shredvault_deletion_requests", ["state": "pending"]), 0)
        XCTAssertEqual(m.value("shredvault_keys_destroyed_total", ["role": "user"]), 1)
        XCTAssertEqual(m.value("shredvault_live_bundles"), 2)
        XCTAssertEqual(m.families["shredvault_run_duration_seconds"]?.samples.map { $0.labels["job"] }, ["delete"])

        // On day 87 the bundles have 2 days left; past day 89 they are overdue until a sweep.
        assertSuccess(try s.sv(["sweep"], day: 87), "sweep (destroys the backup epoch's key, which check would flag)")
        assertSuccess(try s.sv(["check"], day: 87, extra: ["--metrics-file", prom]), "check")
        m = try readMetrics(prom)
        XCTAssertEqual(m.value("shredvault_expiring_bundles", ["days_left": "0-7"]), 2)
        XCTAssertEqual(m.value("shredvault_last_check_ok"), 1)
        assertSuccess(try s.sv(["status"], day: 91, extra: ["--metrics-file", prom]), "status")
        m = try readMetrics(prom)
        XCTAssertEqual(m.value("shredvault_overdue_bundles"), 2)
        XCTAssertEqual(m.value("shredvault_healthy"), 0)
        XCTAssertEqual(m.value("shredvault_health_problems", ["kind": "sweep-late"]), 1)
        assertSuccess(try s.sv(["sweep"], day: 91, extra: ["--metrics-file", prom]), "sweep")
        m = try readMetrics(prom)
        XCTAssertEqual(m.value("shredvault_overdue_bundles"), 0)
        XCTAssertEqual(m.value("shredvault_live_bundles"), 0)
        XCTAssertGreaterThanOrEqual(m.value("shredvault_keys_destroyed_total", ["role": "day"]) ?? 0, 1)

        // Only the .prom file is left: the temporary file was renamed over it.
        XCTAssertEqual(listing(dir), ["shredvault.prom"])
        XCTAssertEqual(fileMode(prom), 0o644)

        // A dry run records no success.
        assertSuccess(try s.sv(["sweep", "--dry-run"], day: 95, extra: ["--metrics-file", prom]), "sweep --dry-run")
        XCTAssertEqual(try readMetrics(prom).value("shredvault_last_success_timestamp_seconds", ["job": "sweep"]), Double(try epoch(SimDay.now(91))))

        // A metrics file that cannot be written is one error line, exit 74.
        assertOneLineError(try s.sv(["sweep"], day: 96, extra: ["--metrics-file", s.dir + "/missing/x.prom"]), exit: 74, ["missing/x.prom"],
                           "metrics file in a missing directory")
    }

    func testTheParserRefusesWhatPrometheusRefuses() {
        let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"q\\\"\\\\\\n\"} 1\n"
        XCTAssertNoThrow(try Exposition(good))
        let bad = [
            "a 1",  // no final newline
            "1a 1\n",  // metric name
            "a{1x=\"v\"} 1\n",  // label name
            "a{x=\"\\t\"} 1\n",  // escape
            "a{x=\"v} 1\n",  // unterminated
            "a one\n",  // value
            "a 1\na 2\n",  // duplicate series
            "# TYPE a gauge\n# TYPE a gauge\na 1\n",  // TYPE twice
            "a 1\n# HELP a A.\n",  // HELP after a sample
            "a 1\nb 1\na{x=\"y\"} 2\n",  // family split
            "# TYPE a counter\na 1\n",  // counter without _total
            "# TYPE a_total counter\na_total -1\n",  // negative counter
        ]
        for text in bad { XCTAssertThrowsError(try Exposition(text), text) }
    }

    // MARK: - Health

    func testStatusHealthExitCodeAndReasons() throws {
        let s = try makeScenario()
        // A fresh vault is healthy, with and without --health.
        let fresh = try s.sv(["status", "--health"], day: 0)
        assertSuccess(fresh, "status --health on a fresh vault")
        let health = try XCTUnwrap(fresh.json?["health"] as? [String: Any], fresh.stdout)
        XCTAssertEqual(health["healthy"] as? Bool, true)
        XCTAssertEqual((health["reasons"] as? [Any])?.count, 0)
        XCTAssertEqual(fresh.stderr, "")

        assertSuccess(try s.sv(["archive", "--source", s.source], day: 0), "archive")
        assertSuccess(try s.sv(["backup", "--to", s.dir + "/backup"], day: 0), "backup")
        assertSuccess(try s.sv(["sweep"], day: 1, time: "00:10:00"), "sweep")
        assertSuccess(try s.sv(["status", "--health"], day: 1), "healthy on day 1")

        // Day 3: no sweep since day 1 and the archive is 3 days old.
        let late = try s.sv(["status", "--health"], day: 3)
        XCTAssertEqual(late.status, 20, late.stderr)
        XCTAssertEqual(kinds(late), ["sweep-late", "archive-stale"])
        let lines = late.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 2, late.stderr)
        XCTAssertTrue(lines.allSatisfy { $0.hasPrefix("shredvault: unhealthy: ") }, late.stderr)
        XCTAssertTrue(late.stderr.contains("archive-stale: the last successful archive ran at \(SimDay.iso(0))T12:00:00Z"), late.stderr)
        // Without --health, the same verdict is shown and status exits 0.
        let plain = try s.sv(["status"], day: 3, json: false)
        assertSuccess(plain, "status without --health")
        XCTAssertTrue(plain.stdout.contains("health:     UNHEALTHY (2 reasons)"), plain.stdout)
        XCTAssertTrue(plain.stdout.contains("  sweep-late: no sweep since \(SimDay.iso(1))T00:10:00Z"), plain.stdout)
        // Thresholds: a longer archive age leaves only the sweep.
        XCTAssertEqual(kinds(try s.sv(["status", "--health", "--max-archive-age", "4d"], day: 3)), ["sweep-late"])
        assertSuccess(try s.sv(["sweep"], day: 3, time: "00:10:00"), "sweep")
        assertSuccess(try s.sv(["status", "--health", "--max-archive-age", "72h"], day: 3), "healthy with --max-archive-age 72h")
        XCTAssertEqual(kinds(try s.sv(["status", "--health", "--max-archive-age", "71h"], day: 3)), ["archive-stale"])
        XCTAssertEqual(kinds(try s.sv(["status", "--health", "--max-archive-age", "9d", "--max-backup-age", "2d"], day: 3)), ["backup-stale"])
        assertOneLineUsage(try s.sv(["status", "--health", "--max-archive-age", "two days"], day: 3), "--max-archive-age")

        // A deletion blocked by a hold goes past its deadline (5 business days).
        assertSuccess(try s.svk(["hold", "place", "ua", "--case", "C-9", "--reason", "litigation"], day: 3), "hold place")
        let blocked = try s.sv(["delete", "ua", "--request-id", "R-9"], day: 3)
        XCTAssertEqual(blocked.status, 10, blocked.stderr)
        assertSuccess(try s.sv(["sweep"], day: 12, time: "00:10:00"), "sweep")
        let lenient = ["--max-archive-age", "30d", "--max-backup-age", "30d"]
        let overdue = try s.sv(["status", "--health"], day: 12, extra: lenient)
        XCTAssertEqual(overdue.status, 20, overdue.stderr)
        XCTAssertEqual(kinds(overdue), ["deletion-overdue"])
        XCTAssertTrue(overdue.stderr.contains("deletion request R-9 for ua is past its deadline"), overdue.stderr)
        XCTAssertTrue(overdue.stderr.contains("legal hold C-9"), overdue.stderr)
        assertSuccess(try s.svk(["hold", "release", "ua", "--case", "C-9"], day: 12), "hold release completes the deletion")
        assertSuccess(try s.sv(["status", "--health"], day: 12, extra: lenient), "healthy once the deletion is done")

        // A failed check is remembered until a check passes.
        let bundle = try XCTUnwrap(try s.listed(day: 12).first)
        let path = s.bundlePath(bundle)
        let saved = try Data(contentsOf: URL(fileURLWithPath: path))
        try FileManager.default.removeItem(atPath: path)
        XCTAssertEqual(try s.sv(["check"], day: 12).status, 2)
        try saved.write(to: URL(fileURLWithPath: path))
        let failed = try s.sv(["status", "--health"], day: 12, extra: lenient)
        XCTAssertEqual(failed.status, 20)
        XCTAssertEqual(kinds(failed), ["check-failed"])
        assertSuccess(try s.sv(["check"], day: 12), "check after the file is back")
        assertSuccess(try s.sv(["status", "--health"], day: 12, extra: lenient), "healthy after a passing check")
    }

    func testTheClockGuardMakesAProductionVaultUnhealthy() throws {
        let s = try Scenario(self)
        assertSuccess(try runShredvault(["init", "--vault", s.vault, "--master-key-file", s.keyFile]), "init (production)")
        assertSuccess(try runShredvault(["status", "--vault", s.vault, "--health"]), "healthy now")
        // A real clock 2 days behind the vault's latest job: the guard would refuse it.
        let back = try runShredvault(["status", "--vault", s.vault, "--health", "--json", "--now", isoTime(Date().addingTimeInterval(-2 * 86_400))])
        XCTAssertEqual(back.status, 20, back.stderr)
        XCTAssertTrue(kinds(back).contains("clock-refused"), back.stdout)
    }

    // MARK: - Logs

    func testJobLogsAreOptInLeveledAndJournaldFriendly() throws {
        let s = try makeScenario()
        // Default: no log line on success, the one error line on failure.
        let quietRun = try s.sv(["archive", "--source", s.source], day: 0)
        assertSuccess(quietRun, "archive")
        XCTAssertEqual(quietRun.stderr, "")
        assertOneLineError(try s.sv(["archive", "--source", s.dir + "/nowhere"], day: 0), exit: 66, ["nowhere"], "archive of a missing source")

        // -v: one start and one end line, journald priority <6> off a terminal, with the figures.
        let verbose = try s.sv(["sweep", "-v"], day: 1, time: "00:10:00")
        assertSuccess(verbose, "sweep -v")
        let lines = verbose.stderr.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 2, verbose.stderr)
        XCTAssertTrue(lines[0].hasPrefix("<6>shredvault: info: job started "), verbose.stderr)
        XCTAssertTrue(lines[0].contains("job=sweep") && lines[0].contains("event=start"), verbose.stderr)
        XCTAssertTrue(lines[1].hasPrefix("<6>shredvault: info: job finished "), verbose.stderr)
        for field in ["job=sweep", "event=end", "outcome=success", "duration_seconds=", "destroyed_day_keys=0", "expired_bundles=0"] {
            XCTAssertTrue(lines[1].contains(field), "\(field) in \(lines[1])")
        }

        // --log-format json (and SHREDVAULT_LOG_FORMAT): one object per line with numbers as numbers.
        let json = try s.sv(["backup", "--to", s.dir + "/backup", "-v"], day: 1, environment: ["SHREDVAULT_LOG_FORMAT": "json"])
        assertSuccess(json, "backup -v json")
        let objects = json.stderr.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        XCTAssertEqual(objects.count, 2, json.stderr)
        XCTAssertEqual(objects.map { $0["event"] as? String }, ["start", "end"])
        XCTAssertEqual(objects.last?["level"] as? String, "info")
        XCTAssertEqual(objects.last?["copied_bundles"] as? Int, 3, json.stderr)
        XCTAssertNotNil(objects.last?["duration_seconds"] as? Double, json.stderr)
        assertOneLineError(try s.sv(["sweep", "--log-format", "xml"], day: 1), exit: 64, ["--log-format 'xml'", "text or json"], "bad log format")

        // A failure with -v: the notice line, then the same error line as always, last.
        let failed = try s.sv(["archive", "--source", s.dir + "/nowhere", "-v", "--log-format", "text"], day: 1)
        XCTAssertEqual(failed.status, 66)
        let failedLines = failed.stderr.split(separator: "\n")
        XCTAssertEqual(failedLines.count, 3, failed.stderr)
        XCTAssertTrue(failedLines[1].hasPrefix("<5>shredvault: notice: job failed") && failedLines[1].contains("exit_code=66"), failed.stderr)
        XCTAssertTrue(failedLines[2].hasPrefix("shredvault: error: "), failed.stderr)

        // -q silences warnings (status's overdue warnings on day 91).
        XCTAssertFalse(try s.sv(["status"], day: 91).stderr.isEmpty, "status warns of overdue bundles")
        let quiet = try s.sv(["status", "-q"], day: 91)
        assertSuccess(quiet, "status -q")
        XCTAssertEqual(quiet.stderr, "")
        XCTAssertEqual(try s.sv(["status", "-q", "-v"], day: 91).status, 64)
    }

    func testNoSecretInAnyLogLine() throws {
        let s = try makeScenario()
        let secretsDir = s.dir + "/secrets"
        let jobKey = try XCTUnwrap(try FileManager.default.contentsOfDirectory(atPath: secretsDir).first { $0.hasPrefix("shredvault-job-") })
        let pin = "739164"
        var secrets = [try secretHex(s.keyFile), try secretHex(secretsDir + "/" + jobKey), pin]
        secrets += secrets.map { $0.uppercased() }
        var logs = ""
        let env = ["SHREDVAULT_JOB_KEY": secretsDir + "/" + jobKey, "SHREDVAULT_PKCS11_PIN": pin]
        for format in ["text", "json"] {
            var day = format == "text" ? 0 : 20
            func job(_ args: [String], key: Bool = false, expect: Int32 = 0) throws {
                let r = try s.sv(args + ["-v", "--log-format", format], day: day, key: key ? s.keyFile : nil, environment: env)
                XCTAssertEqual(r.status, expect, "\(args): \(r.stderr)")
                XCTAssertTrue(r.stderr.contains("job started"), "\(args) logged nothing: \(r.stderr)")
                logs += r.stderr
            }
            if format == "json" { try makeSource(at: s.source, users: [SourceUser(id: "ud", lastActive: inactiveDate, files: sampleFiles(seed: 14))]) }
            try job(["archive", "--source", s.source])
            day += 1
            try job(["sweep"])
            try job(["backup", "--to", s.dir + "/backup-\(format)"])
            try job(["check"])
            try job(["check", "--read-data"], key: true)
            try job(["hold", "place", format == "text" ? "ua" : "ud", "--case", "C-\(format)", "--reason", "r"], key: true)
            try job(["delete", format == "text" ? "ua" : "ud", "--request-id", "R-\(format)"], expect: 10)
            try job(["hold", "release", format == "text" ? "ua" : "ud", "--case", "C-\(format)"], key: true)
            try job(["delete", format == "text" ? "uc" : "ub", "--request-id", "R2-\(format)"])
            try job(["status"])
        }
        XCTAssertTrue(logs.contains("job finished"), logs)
        for line in logs.split(separator: "\n") {
            for secret in secrets { XCTAssertFalse(line.contains(secret), "a log line carries a secret: \(line)") }
        }
    }

    // MARK: - Helpers

    private func kinds(_ r: CLI.Result) -> [String] {
        if let health = r.json?["health"] as? [String: Any], let reasons = health["reasons"] as? [[String: Any]] {
            return reasons.compactMap { $0["kind"] as? String }
        }
        return r.stderr.split(separator: "\n").compactMap { line in
            line.hasPrefix("shredvault: unhealthy: ") ? String(line.dropFirst("shredvault: unhealthy: ".count).prefix { $0 != ":" }) : nil
        }
    }

    private func assertOneLineUsage(_ r: CLI.Result, _ needle: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 64, r.stderr, file: file, line: line)
        XCTAssertTrue(r.stderr.contains(needle), r.stderr, file: file, line: line)
    }

    /// The last field of a key file (`shredvault-…-key-v1:…:HEX`): the secret.
    private func secretHex(_ path: String) throws -> String {
        let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let hex = String(text.split(separator: ":").last ?? "")
        XCTAssertEqual(hex.count, 64, "\(path) holds a 32-byte hex secret")
        return hex
    }

    private func epoch(_ iso: String) throws -> Int {
        let f = ISO8601DateFormatter()
        return Int(try XCTUnwrap(f.date(from: iso)).timeIntervalSince1970)
    }

    private func isoTime(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    /// On a terminal (a pseudo-terminal from script(1)) the progress line shows count, bytes and the final count, and is
    /// erased before the result line; off a terminal there is none.
    func testTheProgressLineShowsBytesOnATerminalOnly() throws {
        let s = try Scenario(self)
        try s.writeSource((1...4).map { SourceUser(id: "up\($0)", lastActive: inactiveDate, files: sampleFiles(seed: UInt64(40 + $0))) })
        try s.initVault()
        let command = [CLI.binary, "archive", "--vault", s.vault, "--source", s.source, "--now", SimDay.now(0)].joined(separator: " ")
        let r = try CLI.execute("/usr/bin/script", ["-qec", command, "/dev/null"])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let frames = r.stdout.components(separatedBy: "\r")
        XCTAssertTrue(frames.contains { $0.contains("archiving 4/4 (100%), ") && $0.contains("kB") }, r.stdout)
        XCTAssertTrue(r.stdout.contains("\u{1B}[2Karchived 4 users"), "the line is erased before the result: \(r.stdout)")
        let plain = try s.sv(["check"], day: 0, json: false)
        XCTAssertFalse(plain.stderr.contains("checking"), "no progress line off a terminal: \(plain.stderr)")
    }
}
