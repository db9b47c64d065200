import Foundation
import GRDB

/// What a sweep did (or, with dry run, would do).
public struct SweepReport: Sendable, Codable {
    public var today: String
    /// Day keys destroyed, by day.
    public var destroyedDayKeys: [String] = []
    /// Backup-epoch keys destroyed (G3), by epoch start day.
    public var destroyedEpochKeys: [String] = []
    /// Bundles whose day ended, now expired and removed.
    public var expiredBundles: Int = 0
    public var freedBytes: Int64 = 0
    public var dryRun: Bool = false
    /// What the sweep finished first for interrupted jobs (absent when there was nothing to finish).
    public var converged: ConvergeReport?
    /// Destruction-root operations of this job so far (create, seal, open, destroy; §3.7).
    public var rootOperations: Int?
}

extension Vault {
    /// G1: destroys the day private keys of every day that has ended, then removes the bundles that expired with
    /// them. Idempotent; every mutating job runs it first so a missed cron night does not stretch the window.
    /// Order: what interrupted jobs left (`converge`), erasure ledger with its audit records, key destruction,
    /// bundle files, catalog rows — a crash at any point leaves work the next run finishes.
    public func sweep(now: Int64, dryRun: Bool = false) throws -> SweepReport {
        let today = CivilDay(unixSeconds: now)
        var report = SweepReport(today: today.iso, dryRun: dryRun)
        if !dryRun {
            // Before anything changes: a sweep on a wrong clock destroys keys of days that have not ended (§6.4).
            try admitClock(now: now)
            // G1 and G3 follow the clock, not the object store: a store that cannot be used still stops the job
            // (exit 14), but only after the keys whose time has come are destroyed (§6.5 "Faults").
            do { try store.probe() } catch VaultError.objectStore(let message) {
                let destroyed = try destroyDueKeysWithoutStore(now: now)
                throw VaultError.objectStore(message + Self.keysDestroyedAnyway(destroyed.count))
            }
            let converged = try converge(now: now)
            if !converged.isEmpty { report.converged = converged }
        }
        let endedKeys = try keystore.dayKeys(endedBefore: today)
        // The partial index of live bundles by expiry day, named: without ANALYZE statistics SQLite would walk every
        // live row through the state index (0.5 s at a million bundles instead of milliseconds).
        let due = try catalog.read { db in
            try BundleRecord.fetchAll(db, sql: """
                SELECT * FROM bundles INDEXED BY bundles_live_by_expiry
                WHERE state = 'live' AND outer_role = 'day' AND expiry_day < ? ORDER BY expiry_day, id
                """, arguments: [today.daysSinceEpoch])
        }
        let endedEpochs = try endedEpochKeys(today: today)
        report.destroyedEpochKeys = endedEpochs.map(\.subject)
        report.destroyedDayKeys = endedKeys.map(\.subject)
        report.expiredBundles = due.count
        report.freedBytes = due.reduce(0) { $0 + $1.size }
        // A dry run reports exactly what this sweep would do, convergence included, and changes nothing.
        if dryRun { return try plannedSweep(report, due: due, today: today) }
        try destroyEndedEpochKeys(endedEpochs, now: now)
        if endedKeys.isEmpty && due.isEmpty {
            try catalog.write { db in try Catalog.setMeta(db, "lastSweepAt", String(now)) }
            report.rootOperations = destructionRoot?.operations
            return report
        }

        try destroyEndedDayKeys(endedKeys, now: now)
        try removeBundleFiles(due.map(\.location))
        try catalog.write { db in
            // One statement for the whole set (the same predicate that selected `due`, bounded by its ids).
            try db.execute(sql: """
                UPDATE bundles INDEXED BY bundles_live_by_expiry
                SET state = 'expired', sealed_dek = NULL, outer_role = NULL, ended_at = ?, end_reason = 'expired'
                WHERE state = 'live' AND outer_role = 'day' AND expiry_day < ?
                """, arguments: [now, today.daysSinceEpoch])
            for record in due {
                try Catalog.audit(db, at: now, action: "expire", user: record.userId,
                                  detail: ["bundle": record.id, "expiryDay": record.expiry.iso])
            }
            try Catalog.setMeta(db, "lastSweepAt", String(now))
        }
        report.rootOperations = destructionRoot?.operations
        // No TRUNCATE checkpoint here: the expired rows' sealed DEKs are useless once the day key is gone (G1 rests on
        // the key, not on the catalog), and SQLite's automatic checkpoints fold the WAL back in as it grows.
        return report
    }

    /// G3: the backup-epoch keys whose window ended (an epoch's key dies at 00:00 UTC of epoch start + backup-days).
    func endedEpochKeys(today: CivilDay) throws -> [StoredKey] {
        try keyring.keys(role: .epoch).filter {
            guard let start = CivilDay(iso: $0.subject) else { return true }
            return policy.epochKeyDestructionDay(epochStart: start) <= today
        }
    }

    /// Ledger first, then the keys (both no-ops for none): ended epoch keys from the keyring, ended day keys from the
    /// keystore.
    func destroyEndedEpochKeys(_ keys: [StoredKey], now: Int64) throws {
        try recordErasures(keys, now: now, reason: "backup window of \(policy.backupDays) days ended")
        try destroyKeys(keys.map(\.keyId), in: keyring)
    }

    func destroyEndedDayKeys(_ keys: [StoredKey], now: Int64) throws {
        try recordErasures(keys, now: now, reason: "day ended")
        try destroyKeys(keys.map(\.keyId), in: keystore)
    }

    static func keysDestroyedAnyway(_ count: Int) -> String {
        count == 0 ? "" : " (\(count) key\(count == 1 ? "" : "s") due by the clock destroyed anyway; objects and rows wait for the store)"
    }

    /// The part of a sweep that needs no object store, run when the store cannot be used (unreachable, credentials
    /// refused, bucket missing): destroys the day keys of ended days and the backup-epoch keys whose window ended,
    /// with their erasure-ledger records, exactly as `sweep` would. Bundle objects, rows and every other step wait for
    /// the next job that reaches the store (the state is the one a sweep stopped during its DeleteObjects leaves).
    /// Skipped while an interrupted job's intent is pending: rolling it forward needs the store and may need a key.
    /// Returns the subjects destroyed.
    @discardableResult
    func destroyDueKeysWithoutStore(now: Int64) throws -> [String] {
        guard try !hasPendingIntents() else { return [] }
        try convergeRoot()
        let today = CivilDay(unixSeconds: now)
        let endedEpochs = try endedEpochKeys(today: today)
        try destroyEndedEpochKeys(endedEpochs, now: now)
        let endedKeys = try keystore.dayKeys(endedBefore: today)
        try destroyEndedDayKeys(endedKeys, now: now)
        return endedEpochs.map(\.subject) + endedKeys.map(\.subject)
    }
}
