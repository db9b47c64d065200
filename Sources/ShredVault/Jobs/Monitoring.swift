import Foundation
import GRDB

/// What a monitoring system reads: the figures behind `--metrics-file` and the verdict behind `status --health`.
/// Both come from catalog aggregates and `meta` values; neither needs a key.
public struct VaultMetrics: Sendable, Codable {
    /// One bucket of live, unheld bundles by days left before their expiry day ends ("overdue" for days already ended).
    public struct ExpiryBucket: Sendable, Codable { public var daysLeft: String; public var bundles: Int; public var bytes: Int64 }

    public var liveBundles: Int
    public var liveUsers: Int
    public var liveBundleBytes: Int64
    public var livePlaintextBytes: Int64
    public var heldBundles: Int
    public var activeHolds: Int
    /// Always every bucket of `VaultMetrics.expiryBuckets`, in that order, zeros included.
    public var expiryBuckets: [ExpiryBucket]
    /// Live, unheld bundles past their expiry day (the sweep is overdue).
    public var overdueBundles: Int
    /// Deletion requests by state (pending, blocked, done), zeros included.
    public var deletionRequests: [String: Int]
    /// Open deletion requests past their deadline.
    public var overdueDeletionRequests: Int
    /// Keys recorded as destroyed in the erasure ledger, by role.
    public var keysDestroyed: [String: Int]
    /// Keys in the keystore, by role.
    public var keys: [String: Int]
    /// The last successful run of each job (Unix seconds), and how long it took.
    public var lastSuccess: [String: Int64]
    public var lastDurationSeconds: [String: Double]
    /// The last `check`: when it ran and whether it found no violation.
    public var lastCheckAt: Int64?
    public var lastCheckOk: Bool?
    public var auditRecords: Int
    public var auditHeadExportAgeSeconds: Int64?
    /// Seconds since the last successful backup, nil if none.
    public var backupAgeSeconds: Int64?

    /// Upper bounds (days left, inclusive) of the expiry buckets, with their labels; "overdue" for ended days.
    public static let expiryBuckets: [(label: String, upTo: Int64)] = [("0-7", 7), ("8-30", 30), ("31-90", 90), ("91+", Int64.max)]
}

/// Whether the vault needs attention, and why (one reason per problem).
public struct VaultHealth: Sendable, Codable {
    public struct Reason: Sendable, Codable, Equatable {
        /// A stable kind: deletion-overdue, sweep-late, archive-stale, backup-stale, clock-refused, check-failed.
        public var kind: String
        public var message: String
    }
    public var healthy: Bool
    public var reasons: [Reason]
}

/// The thresholds of `status --health` (`--max-archive-age`, `--max-backup-age`).
public struct HealthThresholds: Sendable {
    public var maxArchiveAgeSeconds: Int64
    public var maxBackupAgeSeconds: Int64
    /// 2 days: a nightly archive job may miss one night.
    public static let defaultArchiveAge: Int64 = 2 * 86_400
    /// 8 days: a weekly backup may run a day late.
    public static let defaultBackupAge: Int64 = 8 * 86_400
    public init(maxArchiveAgeSeconds: Int64 = defaultArchiveAge, maxBackupAgeSeconds: Int64 = defaultBackupAge) {
        self.maxArchiveAgeSeconds = maxArchiveAgeSeconds
        self.maxBackupAgeSeconds = maxBackupAgeSeconds
    }
}

extension Vault {
    static let lastSuccessPrefix = "lastSuccessAt."
    static let lastDurationPrefix = "lastDurationSeconds."
    static let lastCheckAtKey = "lastCheckAt"
    static let lastCheckOkKey = "lastCheckOk"

    /// The jobs whose success is recorded (the `job` label of the metrics).
    public static let monitoredJobs = ["archive", "sweep", "delete", "backup", "check"]

    /// Records that `job` succeeded at `at` (the job's clock) after `durationSeconds`, so that every later metrics file
    /// carries it. Written outside the job's transaction, like the audit head export.
    public func recordJobSuccess(_ job: String, at: Int64, durationSeconds: Double) throws {
        try catalog.writeMeta([Self.lastSuccessPrefix + job: String(at),
                               Self.lastDurationPrefix + job: String(format: "%.3f", max(0, durationSeconds))])
    }

    /// Records the outcome of a `check` (ok: no violation), read by `status --health`.
    public func recordCheckOutcome(ok: Bool, at: Int64) throws {
        try catalog.writeMeta([Self.lastCheckAtKey: String(at), Self.lastCheckOkKey: ok ? "1" : "0"])
    }

    /// The figures of a metrics file at `now` (the job's clock). Aggregates only.
    public func metrics(now: Int64) throws -> VaultMetrics {
        let today = CivilDay(unixSeconds: now).daysSinceEpoch
        let keyCounts = try keystore.count()
        return try catalog.read { db in
            let live = try Row.fetchOne(db, sql: "SELECT bundles AS n, users, size, plain, held FROM live_stats WHERE id = 1")!
            var buckets = VaultMetrics.expiryBuckets.map { VaultMetrics.ExpiryBucket(daysLeft: $0.label, bundles: 0, bytes: 0) }
            var overdue = 0
            let rows = try Row.fetchAll(db, sql: """
                SELECT expiry_day AS day, count(*) AS n, coalesce(sum(size), 0) AS bytes FROM bundles INDEXED BY bundles_live_by_expiry
                WHERE state = 'live' AND outer_role = 'day' GROUP BY expiry_day
                """)
            for row in rows {
                let day: Int64 = row["day"], n: Int = row["n"], bytes: Int64 = row["bytes"]
                let left = day - today
                if left < 0 { overdue += n; continue }
                if let i = VaultMetrics.expiryBuckets.firstIndex(where: { left <= $0.upTo }) {
                    buckets[i].bundles += n
                    buckets[i].bytes += bytes
                }
            }
            var requests = ["pending": 0, "blocked": 0, "done": 0]
            for row in try Row.fetchAll(db, sql: "SELECT state, count(*) AS n FROM deletion_requests GROUP BY state") {
                requests[row["state"] as String] = row["n"]
            }
            let overdueRequests = try Int.fetchOne(db, sql: "SELECT count(*) FROM deletion_requests WHERE state != 'done' AND deadline_day < ?",
                                                   arguments: [today]) ?? 0
            var destroyed: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT role, count(*) AS n FROM erasures GROUP BY role") { destroyed[row["role"] as String] = row["n"] }
            var success: [String: Int64] = [:], duration: [String: Double] = [:]
            var checkAt: Int64?, checkOk: Bool?
            for row in try Row.fetchAll(db, sql: "SELECT key, value FROM meta WHERE key LIKE 'last%'") {
                let key: String = row["key"], value: String = row["value"]
                if key.hasPrefix(Self.lastSuccessPrefix), let t = Int64(value) { success[String(key.dropFirst(Self.lastSuccessPrefix.count))] = t }
                if key.hasPrefix(Self.lastDurationPrefix), let d = Double(value) { duration[String(key.dropFirst(Self.lastDurationPrefix.count))] = d }
                if key == Self.lastCheckAtKey { checkAt = Int64(value) }
                if key == Self.lastCheckOkKey { checkOk = value == "1" }
            }
            let records = try Int.fetchOne(db, sql: "SELECT coalesce(max(seq), 0) FROM audit") ?? 0
            let export = try Self.lastAuditHeadExport(db)
            return VaultMetrics(
                liveBundles: live["n"], liveUsers: live["users"], liveBundleBytes: live["size"], livePlaintextBytes: live["plain"],
                heldBundles: live["held"], activeHolds: try Int.fetchOne(db, sql: "SELECT count(*) FROM holds WHERE released_at IS NULL") ?? 0,
                expiryBuckets: buckets, overdueBundles: overdue, deletionRequests: requests, overdueDeletionRequests: overdueRequests,
                keysDestroyed: destroyed, keys: Dictionary(uniqueKeysWithValues: keyCounts.map { ($0.key.rawValue, $0.value) }),
                lastSuccess: success, lastDurationSeconds: duration, lastCheckAt: checkAt, lastCheckOk: checkOk,
                auditRecords: records, auditHeadExportAgeSeconds: export.map { max(0, now - $0.at) },
                backupAgeSeconds: success["backup"].map { max(0, now - $0) })
        }
    }

    /// The health verdict at `now`: a deletion past its deadline, a late sweep (a live bundle past its expiry day, or no
    /// sweep since the start of yesterday UTC), an archive or backup older than its threshold, a clock the guard would
    /// refuse, or a failed last `check`. A vault younger than a threshold is not held to it.
    public func health(now: Int64, thresholds: HealthThresholds = HealthThresholds()) throws -> VaultHealth {
        let s = try status(now: now)
        let m = try metrics(now: now)
        let createdAt = try catalog.read { db in try Int64.fetchOne(db, sql: "SELECT min(at) FROM audit") } ?? now
        var reasons: [VaultHealth.Reason] = []
        func add(_ kind: String, _ message: String) { reasons.append(.init(kind: kind, message: message)) }
        for r in s.deletionRequestsOverdue {
            add("deletion-overdue", "deletion request \(r.requestId) for \(r.user) is past its deadline \(r.deadline) (\(r.state)"
                + (r.blockedBy.map { " by legal hold \($0)" } ?? "") + ")")
        }
        if s.overdueBundles > 0 {
            add("sweep-late", "\(s.overdueBundles) live bundle(s) past the expiry day: run `shredvault sweep` now")
        } else {
            let yesterday = CivilDay(unixSeconds: now).adding(days: -1).startUnixSeconds
            let lastSweep = try catalog.meta("lastSweepAt").flatMap { Int64($0) }
            if (lastSweep ?? createdAt) < yesterday {
                add("sweep-late", "no sweep since " + (lastSweep.map { Timestamp.format($0) } ?? "the vault was created")
                    + ", before yesterday UTC: schedule `shredvault sweep` nightly")
            }
        }
        func stale(_ job: String, _ limit: Int64, _ kind: String, _ option: String) {
            let last = m.lastSuccess[job]
            guard now - (last ?? createdAt) > limit else { return }
            add(kind, (last.map { "the last successful \(job) ran at \(Timestamp.format($0))" }
                       ?? "no successful \(job) since the vault was created at \(Timestamp.format(createdAt))")
                + ", more than \(Self.describe(seconds: limit)) ago (\(option))")
        }
        stale("archive", thresholds.maxArchiveAgeSeconds, "archive-stale", "--max-archive-age")
        stale("backup", thresholds.maxBackupAgeSeconds, "backup-stale", "--max-backup-age")
        if let problem = s.clockProblem { add("clock-refused", problem) }
        if m.lastCheckOk == false {
            add("check-failed", "the last `shredvault check` (\(m.lastCheckAt.map(Timestamp.format) ?? "?")) found violations")
        }
        return VaultHealth(healthy: reasons.isEmpty, reasons: reasons)
    }

    static func describe(seconds: Int64) -> String {
        if seconds % 86_400 == 0 { return "\(seconds / 86_400)d" }
        if seconds % 3_600 == 0 { return "\(seconds / 3_600)h" }
        return "\(seconds)s"
    }
}

extension VaultMetrics {
    /// Writes a metrics file for node_exporter's textfile collector: a temporary file beside `path` (never named *.prom,
    /// so the collector skips it), fsynced, then renamed over `path`, mode 0644.
    public static func writeFile(_ path: String, _ text: String) throws {
        try Posix.writeFileAtomically(path, Array(text.utf8), mode: 0o644)
    }
}
