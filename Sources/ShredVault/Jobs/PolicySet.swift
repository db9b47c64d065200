import Foundation
import GRDB

/// What `policy set` did.
public struct PolicySetReport: Sendable, Codable {
    /// The fields that changed, old → new (empty when every requested value was already in place).
    public var changes: [PolicyChange.Field]
    /// The policy now in the config.
    public var policy: RetentionPolicy
    /// The sweep run before the change, and after it when `backupDays` was shortened (its epoch keys die sooner).
    public var sweep: SweepReport?
}

extension Vault {
    /// Changes the retention policy of an existing vault (`PolicyChange` decides what may change). A refused change
    /// throws before anything is touched. An accepted one is a job that changes the vault: it admits the clock and
    /// finishes interrupted work (`sweep`), then, in one catalog transaction, appends one `policy-set` audit record
    /// per changed field (detail: field, old, new) and replaces `config` atomically before the transaction commits,
    /// so a failed write leaves neither. Existing bundles keep their expiry days and recorded deletion requests their
    /// deadlines; a shortened `backupDays` is applied by a second sweep at once.
    public func setPolicy(_ change: PolicyChange, now: Int64) throws -> PolicySetReport {
        var report = PolicySetReport(changes: try change.applied(to: policy).changes, policy: policy)
        if report.changes.isEmpty { return report }
        report.sweep = try sweep(now: now)
        // The sweep finished interrupted jobs, which never change the policy; recompute against the config as it is.
        let (again, changed) = try change.applied(to: policy)
        var updated = config
        updated.policy = again
        try catalog.write { db in
            for c in changed {
                try Catalog.audit(db, at: now, action: "policy-set", user: nil, detail: ["field": c.field, "old": c.old, "new": c.new])
            }
            try Self.writeConfig(updated, root: root)
        }
        config = updated
        report.changes = changed
        report.policy = again
        if changed.contains(where: { $0.field == "backupDays" }) { report.sweep = try sweep(now: now) }
        return report
    }
}
