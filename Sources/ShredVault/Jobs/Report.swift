import Foundation
import GRDB

/// What a data-protection officer or an auditor reads (`shredvault report`): the policy, what expires when, every
/// deletion request against its deadline, holds, backup epochs and their destruction, the key-destruction log, a
/// check of the vault and the audit head. Built from the catalog and keystore; needs no key. The same data is written
/// as JSON and as one self-contained HTML page (`ComplianceReport.html()`).
public struct ComplianceReport: Sendable, Codable {
    public static let formatName = "shredvault-report/v1"
    public struct ExpiryDay: Sendable, Codable, Equatable { public var day: String; public var bundles: Int; public var bytes: Int64 }
    public struct Request: Sendable, Codable, Equatable {
        public var requestId: String
        public var userId: String
        public var received: String
        public var deadline: String
        public var completed: String?
        public var state: String
        public var blockedBy: String?
        /// Completed on or before the deadline (nil while open and not yet late).
        public var onTime: Bool?
        /// Pending (not blocked by a hold) past its deadline.
        public var overdue: Bool
        public var receipt: Bool
    }
    public struct DeletionSummary: Sendable, Codable, Equatable {
        public var total = 0, done = 0, onTime = 0, late = 0, open = 0, blocked = 0, overdue = 0
    }
    public struct Hold: Sendable, Codable, Equatable {
        public var caseId: String
        public var activeUsers: Int
        public var releasedUsers: Int
        public var firstPlaced: String
        public var lastReleased: String?
    }
    public struct BackupEpoch: Sendable, Codable, Equatable {
        public var epochStart: String
        public var snapshots: Int
        public var lastTaken: String
        /// 00:00 UTC of this day the epoch key is destroyed (G3).
        public var destructionDay: String
        public var keyDestroyed: Bool
    }
    public struct KeyDestruction: Sendable, Codable, Equatable {
        public var at: String
        public var role: String
        public var subject: String
        public var reason: String
    }
    public struct CheckSummary: Sendable, Codable, Equatable {
        public var quick: Bool
        public var ok: Bool
        public var checkedBundles: Int
        public var violations: [String]
    }
    public struct AuditSummary: Sendable, Codable, Equatable {
        public var records: Int
        public var chainOk: Bool
        public var problem: String?
        public var headSeq: Int64?
        public var headHash: String?
        public var headSigner: String?
        public var lastExportedAt: String?
        public var lastExportedSeq: Int64?
    }

    public var format = Self.formatName
    public var generatedAt: String
    public var vaultId: String
    public var drill: Bool
    public var policy: RetentionPolicy
    public var liveBundles: Int
    public var liveUsers: Int
    public var liveBundleBytes: Int64
    public var heldBundles: Int
    /// Bundles and bytes per expiry day, from today for `policy.archiveDays` days (held bundles expire when released).
    public var expiryCalendar: [ExpiryDay]
    public var deletionRequests: [Request]
    public var deletionSummary: DeletionSummary
    public var holds: [Hold]
    public var backupEpochs: [BackupEpoch]
    public var keyDestructions: [KeyDestruction]
    public var check: CheckSummary
    public var audit: AuditSummary
}

extension Vault {
    /// The compliance report at `now` (no key; read-only). `check` runs in its quick form (sizes and headers, not
    /// every byte) so that the report stays cheap on a large vault; `shredvault check --read-data` is the deep one.
    public func complianceReport(now: Int64) throws -> ComplianceReport {
        let today = CivilDay(unixSeconds: now)
        let status = try status(now: now)
        let horizon = today.adding(days: Int64(policy.archiveDays))
        let (calendarRows, requests, receiptIds, holdRows, backupRows, erasureRows) = try catalog.read { db in
            (try Row.fetchAll(db, sql: """
                SELECT expiry_day AS day, count(*) AS n, coalesce(sum(size), 0) AS bytes FROM bundles
                WHERE state = 'live' AND outer_role = 'day' AND expiry_day >= ? AND expiry_day < ? GROUP BY expiry_day
                """, arguments: [today.daysSinceEpoch, horizon.daysSinceEpoch]),
             try DeletionRequestRecord.fetchAll(db, sql: "SELECT * FROM deletion_requests ORDER BY received_at, request_id"),
             try String.fetchSet(db, sql: "SELECT request_id FROM receipts"),
             try HoldRecord.fetchAll(db, sql: "SELECT * FROM holds ORDER BY case_id, user_id"),
             try Row.fetchAll(db, sql: """
                SELECT epoch_start, count(*) AS n, max(taken_at) AS last, epoch_key_id FROM backups WHERE kind = 'keystore'
                GROUP BY epoch_start ORDER BY epoch_start
                """),
             try Row.fetchAll(db, sql: "SELECT role, subject, recorded_at, reason FROM erasures ORDER BY recorded_at, role, subject"))
        }
        var byDay: [Int64: (Int, Int64)] = [:]
        for row in calendarRows { byDay[row["day"]] = (row["n"], row["bytes"]) }
        var calendar: [ComplianceReport.ExpiryDay] = []
        var day = today
        while day < horizon {
            let (n, bytes) = byDay[day.daysSinceEpoch] ?? (0, 0)
            calendar.append(.init(day: day.iso, bundles: n, bytes: bytes))
            day = day.adding(days: 1)
        }
        var summary = ComplianceReport.DeletionSummary()
        let listed: [ComplianceReport.Request] = requests.map { r in
            let deadline = CivilDay(daysSinceEpoch: r.deadlineDay)
            let onTime = r.completedAt.map { CivilDay(unixSeconds: $0) <= deadline }
            // A request a legal hold blocks waits lawfully (G5): it is listed as blocked, not overdue.
            let overdue = r.state == .pending && today > deadline
            summary.total += 1
            switch r.state {
            case .done: summary.done += 1; if onTime == true { summary.onTime += 1 } else { summary.late += 1 }
            case .blocked: summary.blocked += 1
            case .pending: summary.open += 1
            }
            if overdue { summary.overdue += 1 }
            return .init(requestId: r.requestId, userId: r.userId, received: Timestamp.format(r.receivedAt), deadline: deadline.iso,
                         completed: r.completedAt.map(Timestamp.format), state: r.state.rawValue, blockedBy: r.blockedBy, onTime: onTime,
                         overdue: overdue, receipt: receiptIds.contains(r.requestId))
        }
        var cases: [String: ComplianceReport.Hold] = [:]
        for h in holdRows {
            var c = cases[h.caseId] ?? .init(caseId: h.caseId, activeUsers: 0, releasedUsers: 0, firstPlaced: Timestamp.format(h.placedAt), lastReleased: nil)
            if h.releasedAt == nil { c.activeUsers += 1 } else {
                c.releasedUsers += 1
                let released = Timestamp.format(h.releasedAt!)
                if c.lastReleased.map({ released > $0 }) ?? true { c.lastReleased = released }
            }
            if Timestamp.format(h.placedAt) < c.firstPlaced { c.firstPlaced = Timestamp.format(h.placedAt) }
            cases[h.caseId] = c
        }
        let liveEpochKeys = Set(try keyring.keys(role: .epoch).map { Data($0.keyId) })
        let epochs: [ComplianceReport.BackupEpoch] = backupRows.map { row in
            let start = CivilDay(daysSinceEpoch: row["epoch_start"])
            return .init(epochStart: start.iso, snapshots: row["n"], lastTaken: Timestamp.format(row["last"]),
                         destructionDay: policy.epochKeyDestructionDay(epochStart: start).iso,
                         keyDestroyed: !liveEpochKeys.contains(row["epoch_key_id"] as Data))
        }
        let destructions: [ComplianceReport.KeyDestruction] = erasureRows.map { row in
            .init(at: Timestamp.format(row["recorded_at"]), role: row["role"], subject: row["subject"], reason: row["reason"])
        }
        let check = try self.check(now: now, readData: false, restoreKey: nil, quick: true)
        let verification = try verifyAudit()
        let head = try catalog.read { db in
            try Row.fetchOne(db, sql: "SELECT h.last_seq, h.signature, l.hash FROM audit_heads h JOIN audit l ON l.seq = h.last_seq ORDER BY h.last_seq DESC LIMIT 1")
        }
        let export = try lastAuditHeadExport()
        let audit = ComplianceReport.AuditSummary(
            records: verification.records, chainOk: verification.ok, problem: verification.problem,
            headSeq: head?["last_seq"], headHash: (head?["hash"] as Data?).map { Hex.encode(Array($0)) },
            headSigner: (head?["signature"] as Data?).flatMap { VaultSignature($0) }?.signerHex,
            lastExportedAt: export.map { Timestamp.format($0.at) }, lastExportedSeq: export?.seq)
        return ComplianceReport(
            generatedAt: Timestamp.format(now), vaultId: config.vaultId, drill: config.isDrill, policy: policy,
            liveBundles: status.liveBundles, liveUsers: status.liveUsers, liveBundleBytes: status.liveBundleBytes,
            heldBundles: status.heldBundles, expiryCalendar: calendar, deletionRequests: listed, deletionSummary: summary,
            holds: cases.values.sorted { $0.caseId < $1.caseId }, backupEpochs: epochs, keyDestructions: destructions,
            check: .init(quick: true, ok: check.ok, checkedBundles: check.checkedBundles,
                         violations: check.violations.map { "\($0.kind) \($0.subject): \($0.message)" }),
            audit: audit)
    }
}

extension ComplianceReport {
    /// Writes `report.html` and `report.json` into `directory` (created, mode 0755; it must not exist or be empty),
    /// each atomically.
    public static func write(_ report: ComplianceReport, to directory: String) throws {
        if let st = try Posix.status(directory) {
            guard st.kind == .directory, try Posix.listDirectory(directory).isEmpty else { throw VaultError.targetExists(path: directory) }
        } else {
            try Posix.makeDirectories(directory, mode: 0o755)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try Posix.writeFileAtomically(directory + "/report.json", Array(try encoder.encode(report)) + [0x0a], mode: 0o644)
        try Posix.writeFileAtomically(directory + "/report.html", Array(report.html().utf8), mode: 0o644)
    }
}
