import Foundation
import ShredVault

/// The Prometheus text exposition of a vault's metrics (format 0.0.4): one HELP and one TYPE line per family,
/// then its samples; names `shredvault_*` with base units (`_bytes`, `_seconds`), `_total` only on counters.
/// README "Metrics" lists every family.
struct MetricsFile {
    private var lines: [String] = []

    /// The metrics of `vault` at `now`; `job` and `duration` describe this run (its own duration family).
    static func render(_ m: VaultMetrics, health: VaultHealth, drill: Bool, job: String?, durationSeconds: Double?) -> String {
        var f = MetricsFile()
        f.family("shredvault_live_bundles", .gauge, "Live bundles in the vault (held ones included).", [([], Double(m.liveBundles))])
        f.family("shredvault_live_users", .gauge, "Users with at least one live bundle.", [([], Double(m.liveUsers))])
        f.family("shredvault_live_bundle_bytes", .gauge, "Size of the live bundle files (encrypted).", [([], Double(m.liveBundleBytes))])
        f.family("shredvault_live_plaintext_bytes", .gauge, "Size of the files inside the live bundles.", [([], Double(m.livePlaintextBytes))])
        f.family("shredvault_held_bundles", .gauge, "Live bundles under a legal hold (no expiry day).", [([], Double(m.heldBundles))])
        f.family("shredvault_active_holds", .gauge, "Legal holds placed and not released.", [([], Double(m.activeHolds))])
        f.family("shredvault_expiring_bundles", .gauge, "Live unheld bundles by days left before their expiry day ends.",
                 m.expiryBuckets.map { ([("days_left", $0.daysLeft)], Double($0.bundles)) })
        f.family("shredvault_expiring_bundle_bytes", .gauge, "Size of the live unheld bundles by days left before their expiry day ends.",
                 m.expiryBuckets.map { ([("days_left", $0.daysLeft)], Double($0.bytes)) })
        f.family("shredvault_overdue_bundles", .gauge, "Live unheld bundles past their expiry day: the sweep is overdue.", [([], Double(m.overdueBundles))])
        f.family("shredvault_deletion_requests", .gauge, "Deletion requests by state (pending, blocked by a hold, done).",
                 m.deletionRequests.keys.sorted().map { ([("state", $0)], Double(m.deletionRequests[$0]!)) })
        f.family("shredvault_deletion_requests_overdue", .gauge, "Open deletion requests past their deadline.", [([], Double(m.overdueDeletionRequests))])
        let liveRoles = Set(m.keys.keys).union(["day", "user", "hold", "epoch"]).sorted()
        f.family("shredvault_keys", .gauge, "Keys in the keystore by role.", liveRoles.map { ([("role", $0)], Double(m.keys[$0] ?? 0)) })
        let roles = Set(m.keysDestroyed.keys).union(["day", "user", "hold", "epoch"]).sorted()
        f.family("shredvault_keys_destroyed_total", .counter, "Keys destroyed (crypto-shredded) since the vault was created, by role.",
                 roles.map { ([("role", $0)], Double(m.keysDestroyed[$0] ?? 0)) })
        f.family("shredvault_last_success_timestamp_seconds", .gauge, "Unix time of the last successful run of each job (the job's clock).",
                 m.lastSuccess.keys.sorted().map { ([("job", $0)], Double(m.lastSuccess[$0]!)) })
        f.family("shredvault_job_duration_seconds", .gauge, "Wall-clock duration of the last successful run of each job.",
                 m.lastDurationSeconds.keys.sorted().map { ([("job", $0)], m.lastDurationSeconds[$0]!) })
        if let job, let durationSeconds {
            f.family("shredvault_run_duration_seconds", .gauge, "Wall-clock duration of the run that wrote this file.",
                     [([("job", job)], durationSeconds)])
        }
        if let age = m.backupAgeSeconds {
            f.family("shredvault_backup_age_seconds", .gauge, "Seconds since the last successful backup (absent: never).", [([], Double(age))])
        }
        if let age = m.auditHeadExportAgeSeconds {
            f.family("shredvault_audit_head_export_age_seconds", .gauge, "Seconds since the signed audit head was last exported (absent: never).",
                     [([], Double(age))])
        }
        f.family("shredvault_audit_records", .gauge, "Records in the audit log.", [([], Double(m.auditRecords))])
        if let ok = m.lastCheckOk {
            f.family("shredvault_last_check_ok", .gauge, "1 if the last check found no violation, 0 if it found some (absent: never ran).",
                     [([], ok ? 1 : 0)])
        }
        f.family("shredvault_healthy", .gauge, "1 if `shredvault status --health` would exit 0 with the default thresholds.", [([], health.healthy ? 1 : 0)])
        let kinds = ["deletion-overdue", "sweep-late", "archive-stale", "backup-stale", "clock-refused", "check-failed"]
        f.family("shredvault_health_problems", .gauge, "Health problems by kind (see `shredvault status --help`).",
                 kinds.map { kind in ([("kind", kind)], Double(health.reasons.filter { $0.kind == kind }.count)) })
        f.family("shredvault_drill", .gauge, "1 for a drill vault (simulated clocks), 0 for a production vault.", [([], drill ? 1 : 0)])
        return f.lines.joined(separator: "\n") + "\n"
    }

    enum Kind: String { case gauge, counter }

    private mutating func family(_ name: String, _ kind: Kind, _ help: String, _ samples: [([(String, String)], Double)]) {
        lines.append("# HELP \(name) \(Self.escapeHelp(help))")
        lines.append("# TYPE \(name) \(kind.rawValue)")
        for (labels, value) in samples {
            let text = labels.isEmpty ? "" : "{" + labels.map { "\($0.0)=\"\(Self.escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
            lines.append("\(name)\(text) \(Self.format(value))")
        }
    }

    /// HELP text escapes backslash and line feed.
    static func escapeHelp(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Label values escape backslash, double quote and line feed.
    static func escapeLabel(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Integers without a fraction, others with up to millisecond precision.
    static func format(_ v: Double) -> String {
        if v.rounded() == v, abs(v) < 1e15 { return String(Int64(v)) }
        return String(format: "%.3f", v)
    }
}
