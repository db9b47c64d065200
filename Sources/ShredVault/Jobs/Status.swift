import Foundation
import GRDB

public struct VaultStatus: Sendable, Codable {
    public var vaultId: String
    /// A drill vault (§6.4): its clock is free and it is not a production vault.
    public var drill: Bool
    public var today: String
    public var policy: RetentionPolicy
    public var liveBundles: Int
    public var liveUsers: Int
    public var liveBundleBytes: Int64
    public var livePlaintextBytes: Int64
    public var heldBundles: Int
    public var expiredBundles: Int
    public var shreddedBundles: Int
    public var nextExpiryDay: String?
    /// Live, unheld bundles whose day has ended: the sweep is overdue (G1 at risk).
    public var overdueBundles: Int
    public var activeHolds: Int
    public var tombstones: Int
    public var openDeletionRequests: Int
    public struct Request: Sendable, Codable { public var requestId: String; public var user: String; public var state: String; public var deadline: String; public var blockedBy: String? }
    /// Open requests whose deadline is within 2 days.
    public var deletionRequestsDueSoon: [Request]
    /// Open requests past their deadline.
    public var deletionRequestsOverdue: [Request]
    public var keys: [String: Int]
    /// Archived users whose source directory an archive run could not remove (catalog `source_state`
    /// `pending-removal`): their data is still in the export. Every archive run retries.
    public struct PendingRemoval: Sendable, Codable { public var user: String; public var bundleId: String; public var archivedAt: String }
    public var sourcesPendingRemoval: [PendingRemoval] = []
    public var lastSweepAt: String?
    /// The latest time a job that changed this production vault ran (the clock guard's reference, §6.4).
    public var latestJobAt: String?
    /// Why a job that changes the vault would refuse today's clock (a production vault only), e.g. the clock went back.
    public var clockProblem: String?
    public var auditRecords: Int
    /// When the last signed audit head was exported (`audit head`, §6.2), its record, and how many records came after
    /// it (those a truncation could remove unnoticed); nil if never.
    public var auditHeadExportedAt: String?
    public var auditHeadExportAgeSeconds: Int64?
    public var auditHeadExportedSeq: Int64?
    public var auditRecordsAfterExportedHead: Int?
    /// The health verdict (`status --health`); set by the caller with `Vault.health(now:thresholds:)`.
    public var health: VaultHealth? = nil
}

public struct ListedBundle: Sendable, Codable {
    public var bundleId: String
    public var user: String
    public var archivedAt: String
    public var expiryDay: String
    public var originalExpiryDay: String
    public var held: Bool
    public var size: Int64
    public var files: Int64
    public var location: String
}

extension Vault {
    /// Counts and deadlines; indexed queries and aggregates only. Needs no key.
    public func status(now: Int64) throws -> VaultStatus {
        let today = CivilDay(unixSeconds: now)
        let soon = today.adding(days: 2).daysSinceEpoch
        let keyCounts = try keystore.count()
        let latest = config.isDrill ? nil : try latestJobTime()
        var clockProblem: String?
        if let verdict = try clockVerdict(now: now), !verdict.isPlausible, let latest {
            clockProblem = Self.clockProblem(verdict, now: now, latest: latest, maxJumpDays: policy.maxClockJumpDays)
                + "; jobs that change the vault refuse this clock (exit 12) until it is fixed or confirmed with --accept-clock"
        }
        var status = try catalog.read { db in
            // Totals kept by triggers (catalog migration v5): O(1) however many bundles there are.
            let live = try Row.fetchOne(db, sql: "SELECT bundles AS n, users, size, plain, held FROM live_stats WHERE id = 1")!
            let next = try Int64.fetchOne(db, sql: """
                SELECT expiry_day FROM bundles INDEXED BY bundles_live_by_expiry WHERE state = 'live' AND outer_role = 'day' ORDER BY expiry_day LIMIT 1
                """)
            let overdue = try Int.fetchOne(db, sql: """
                SELECT count(*) FROM bundles INDEXED BY bundles_live_by_expiry WHERE state = 'live' AND outer_role = 'day' AND expiry_day < ?
                """, arguments: [today.daysSinceEpoch]) ?? 0
            let ended = try Row.fetchOne(db, sql: """
                SELECT (SELECT count(*) FROM bundles WHERE state = 'expired') AS e, (SELECT count(*) FROM bundles WHERE state = 'shredded') AS s
                """)!
            let open = try DeletionRequestRecord.fetchAll(db, sql: "SELECT * FROM deletion_requests WHERE state != 'done' ORDER BY deadline_day")
            func req(_ r: DeletionRequestRecord) -> VaultStatus.Request {
                .init(requestId: r.requestId, user: r.userId, state: r.state.rawValue, deadline: CivilDay(daysSinceEpoch: r.deadlineDay).iso, blockedBy: r.blockedBy)
            }
            let records = try Int.fetchOne(db, sql: "SELECT coalesce(max(seq), 0) FROM audit") ?? 0
            let export = try Self.lastAuditHeadExport(db)
            return VaultStatus(
                vaultId: config.vaultId, drill: config.isDrill, today: today.iso, policy: policy,
                liveBundles: live["n"], liveUsers: live["users"], liveBundleBytes: live["size"], livePlaintextBytes: live["plain"],
                heldBundles: live["held"], expiredBundles: ended["e"], shreddedBundles: ended["s"],
                nextExpiryDay: next.map { CivilDay(daysSinceEpoch: $0).iso }, overdueBundles: overdue,
                activeHolds: try Int.fetchOne(db, sql: "SELECT count(*) FROM holds WHERE released_at IS NULL") ?? 0,
                tombstones: try Int.fetchOne(db, sql: "SELECT count(*) FROM tombstones") ?? 0,
                openDeletionRequests: open.count,
                deletionRequestsDueSoon: open.filter { $0.deadlineDay >= today.daysSinceEpoch && $0.deadlineDay <= soon }.map(req),
                deletionRequestsOverdue: open.filter { $0.deadlineDay < today.daysSinceEpoch }.map(req),
                keys: Dictionary(uniqueKeysWithValues: keyCounts.map { ($0.key.rawValue, $0.value) }),
                lastSweepAt: try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'lastSweepAt'").flatMap { Int64($0) }.map(Timestamp.format),
                latestJobAt: latest.map(Timestamp.format), clockProblem: clockProblem,
                auditRecords: records,
                auditHeadExportedAt: export.map { Timestamp.format($0.at) }, auditHeadExportAgeSeconds: export.map { max(0, now - $0.at) },
                auditHeadExportedSeq: export?.seq, auditRecordsAfterExportedHead: export.map { max(0, records - Int($0.seq)) })
        }
        status.sourcesPendingRemoval = try catalog.read { db in
            try Row.fetchAll(db, sql: """
                SELECT user_id, id, archived_at FROM bundles WHERE source_state = 'pending-removal' AND state = 'live' ORDER BY user_id, id
                """).map { .init(user: $0["user_id"], bundleId: $0["id"], archivedAt: Timestamp.format($0["archived_at"])) }
        }
        return status
    }

    /// Streams live bundles in expiry order, optionally only those expiring before a day and/or of one user.
    public func listBundles(expiringBefore: CivilDay?, user: UserID?, _ body: (ListedBundle) throws -> Void) throws {
        var sql = "SELECT * FROM bundles WHERE state = 'live'"
        var args: [DatabaseValueConvertible] = []
        if let expiringBefore { sql += " AND expiry_day < ?"; args.append(expiringBefore.daysSinceEpoch) }
        if let user { sql += " AND user_id = ?"; args.append(user.rawValue) }
        sql += " ORDER BY expiry_day, id"
        try catalog.read { db in
            let cursor = try BundleRecord.fetchCursor(db, sql: sql, arguments: StatementArguments(args))
            while let b = try cursor.next() {
                try body(ListedBundle(bundleId: b.id, user: b.userId, archivedAt: Timestamp.format(b.archivedAt), expiryDay: b.expiry.iso,
                                      originalExpiryDay: CivilDay(daysSinceEpoch: b.originalExpiryDay).iso, held: b.outerRole == "hold",
                                      size: b.size, files: b.files, location: b.location))
            }
        }
    }
}
