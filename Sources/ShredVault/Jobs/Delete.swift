import Foundation
import GRDB

public struct DeleteReport: Sendable, Codable {
    public enum Outcome: String, Sendable, Codable {
        case shredded, blocked, alreadyDeleted = "already-deleted", wouldShred = "would-shred"
        /// A user the vault never archived (`--not-archived`): the request is recorded with its deadline, done, and a
        /// tombstone keeps the user from ever being archived.
        case recordedBeforeArchive = "recorded-before-archive", wouldRecordBeforeArchive = "would-record-before-archive"
    }
    public var user: String
    public var requestId: String
    public var outcome: Outcome
    public var receivedAt: String
    public var deadline: String
    public var blockedBy: [String] = []
    public var destroyedKeys = 0
    public var removedBundles = 0
    public var sweep: SweepReport?
    /// Destruction-root operations of the whole job (§3.7).
    public var rootOperations: Int?
    /// The completed request has its signed receipt (§6.3; `shredvault receipt export`).
    public var receipt = false
}

extension Vault {
    /// G2: records the request first (ledger before destruction), then — unless a legal hold blocks it — destroys
    /// the user's private key, every sealed DEK and bundle file of the user, and writes a tombstone.
    /// Needs no key. Under a hold the request is recorded as blocked and runs when the last hold is released.
    /// - Parameter notArchived: the caller says the user may not be archived yet. A user the vault does not know is
    ///   refused without it (`notArchived`: a typo must not be recorded as a completed deletion); with it, the request
    ///   is recorded and a tombstone written, so the user is never archived (`recordedBeforeArchive`).
    public func delete(user: UserID, requestId: String, received: Int64?, now: Int64, dryRun: Bool = false,
                       notArchived: Bool = false) throws -> DeleteReport {
        let u = user.rawValue
        guard !requestId.isEmpty, requestId.utf8.count <= 200, !requestId.contains(where: { $0.isNewline }) else {
            throw VaultError.invalidArgument("--request-id must be 1-200 characters on one line")
        }
        let receivedAt = received ?? now
        let deadline = policy.deletionDeadline(received: CivilDay(unixSeconds: receivedAt))
        var report = DeleteReport(user: u, requestId: requestId, outcome: .shredded, receivedAt: Timestamp.format(receivedAt), deadline: deadline.iso)
        let existing = try catalog.read { db in try DeletionRequestRecord.fetchOne(db, key: requestId) }
        if let existing, existing.userId != u {
            throw VaultError.invalidArgument("request \(requestId) was already recorded for user \(existing.userId), not \(u)")
        }
        let known = try catalog.read { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM bundles WHERE user_id = ?) OR EXISTS (SELECT 1 FROM tombstones WHERE user_id = ?)",
                              arguments: [u, u]) ?? false
        }
        guard known || notArchived else { throw VaultError.notArchived(user: u) }
        let holds = try catalog.activeHolds(user: u)
        if dryRun {
            report.outcome = !known ? .wouldRecordBeforeArchive
                : try catalog.tombstone(user: u) != nil ? .alreadyDeleted : holds.isEmpty ? .wouldShred : .blocked
            report.blockedBy = holds.map(\.caseId)
            return report
        }
        do {
            report.sweep = try sweep(now: now)
        } catch VaultError.objectStore(let message) {
            // The store cannot be used: the request is still recorded (its deadline runs from `received`) and, when
            // nothing blocks it, the user's key destroyed; the objects, rows and receipt wait for the next job that
            // reaches the store (its convergence finishes the request). §6.5 "Faults".
            let destroyed = try recordDeletionWithoutStore(user: u, requestId: requestId, receivedAt: receivedAt,
                                                           deadline: deadline, existing: existing, now: now)
            throw VaultError.objectStore(message + (destroyed ? " (request \(requestId) recorded and the user's key destroyed anyway; its objects, rows and receipt wait for the store)" : " (request \(requestId) recorded)"))
        }
        // The sweep finished any interrupted job first (a release may have ended a hold).
        let holdsNow = try catalog.activeHolds(user: u)
        try recordRequest(user: u, requestId: requestId, receivedAt: receivedAt, deadline: deadline, existing: existing, now: now)
        if let tomb = try catalog.tombstone(user: u) {
            // Done at once; its receipt names the request that deleted the user (§6.3).
            let generation = try keystore.ratchetGeneration()
            try catalog.write { db in
                try db.execute(sql: "UPDATE deletion_requests SET state = 'done', blocked_by = NULL, completed_at = ? WHERE request_id = ? AND state != 'done'",
                               arguments: [now, requestId])
                guard db.changesCount == 1, let done = try DeletionRequestRecord.fetchOne(db, key: requestId) else { return }
                try Catalog.audit(db, at: now, action: "deletion-done", user: u, detail: ["request": requestId, "deletedBy": tomb.requestId])
                try issueReceipts(db, [(done, tomb.requestId == requestId ? nil : tomb.requestId)], rootGeneration: generation, now: now)
            }
            try mirrorReceipts()
            report.receipt = try hasReceipt(requestId)
            report.outcome = .alreadyDeleted
            report.receivedAt = Timestamp.format(existing?.receivedAt ?? receivedAt)
            return report
        }
        if !holdsNow.isEmpty {
            let cases = holdsNow.map(\.caseId)
            try catalog.write { db in
                try db.execute(sql: "UPDATE deletion_requests SET state = 'blocked', blocked_by = ? WHERE request_id = ?",
                               arguments: [cases.joined(separator: ","), requestId])
                try Catalog.audit(db, at: now, action: "deletion-blocked", user: u, detail: ["request": requestId, "holds": cases.joined(separator: ",")])
            }
            report.outcome = .blocked
            report.blockedBy = cases
            return report
        }
        let (keys, bundles) = try shredUser(u, requestId: requestId, now: now)
        report.destroyedKeys = keys
        report.removedBundles = bundles
        if !known { report.outcome = .recordedBeforeArchive }
        report.rootOperations = destructionRoot?.operations
        report.receipt = try hasReceipt(requestId)
        return report
    }

    /// Ledger first: the request in the keyring's mirror and the catalog (with its audit record), once.
    private func recordRequest(user u: String, requestId: String, receivedAt: Int64, deadline: CivilDay,
                               existing: DeletionRequestRecord?, now: Int64) throws {
        guard existing == nil else { return }
        let record = DeletionRequestRecord(requestId: requestId, userId: u, receivedAt: receivedAt, deadlineDay: deadline.daysSinceEpoch,
                                           recordedAt: now, state: .pending, blockedBy: nil, completedAt: nil)
        try keyring.mirrorDeletionRequest(record)
        try catalog.write { db in
            try record.insert(db)
            try Catalog.audit(db, at: now, action: "deletion-request", user: u,
                              detail: ["request": requestId, "received": Timestamp.format(receivedAt), "deadline": deadline.iso])
        }
    }

    /// `delete` when the object store cannot be used: records the request and, unless a hold, a tombstone or an
    /// interrupted job's intent stands in the way, destroys the user's key (G2 needs no store). The request stays
    /// `pending`; the next job's convergence removes the objects, marks the rows and issues the receipt. Returns
    /// whether the key was destroyed.
    private func recordDeletionWithoutStore(user u: String, requestId: String, receivedAt: Int64, deadline: CivilDay,
                                            existing: DeletionRequestRecord?, now: Int64) throws -> Bool {
        try recordRequest(user: u, requestId: requestId, receivedAt: receivedAt, deadline: deadline, existing: existing, now: now)
        guard try !hasPendingIntents(), try catalog.tombstone(user: u) == nil, try catalog.activeHolds(user: u).isEmpty,
              let userKey = try keystore.key(role: .user, subject: u) else { return false }
        try convergeRoot()
        try recordErasures([userKey], now: now, reason: "deletion request \(requestId)")
        try destroyKeys([userKey.keyId], in: keystore)
        return true
    }

    private func hasReceipt(_ requestId: String) throws -> Bool {
        try catalog.read { db in try ReceiptRecord.fetchOne(db, key: requestId) != nil }
    }

    /// Destroys a user's key and data and completes `requestId` and every other open request of the user (also
    /// used when the last hold is released, and by `converge` for an interrupted deletion). Idempotent, in the order
    /// ledger (with audit), key, bundle files, catalog rows: a crash at any point is finished by the next job.
    func shredUser(_ user: String, requestId: String, now: Int64) throws -> (keys: Int, bundles: Int) {
        let userKey = try keystore.key(role: .user, subject: user)
        // The generation the receipts name (§6.3): the one this destruction creates, or, when an interrupted run
        // destroyed the key already, the current one (every job's convergeRoot left it the only one).
        var generation: UInt64?
        if let userKey {
            try recordErasures([userKey], now: now, reason: "deletion request \(requestId)")
            generation = try destroyKeys([userKey.keyId], in: keystore)
        }
        if generation == nil { generation = try keystore.ratchetGeneration() }
        try reached("shred:key")
        let bundles = try catalog.bundles(user: user).filter { $0.state == .live || $0.state == .writing }
        try removeBundleFiles(bundles.map(\.location))
        try catalog.write { db in
            try db.execute(sql: """
                UPDATE bundles SET state = 'shredded', sealed_dek = NULL, outer_role = NULL, ended_at = ?, end_reason = ?
                WHERE user_id = ? AND state IN ('live', 'writing')
                """, arguments: [now, "deletion request " + requestId, user])
            try db.execute(sql: "INSERT INTO tombstones (user_id, deleted_at, request_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                           arguments: [user, now, requestId])
            let completing = try String.fetchAll(db, sql: "SELECT request_id FROM deletion_requests WHERE user_id = ? AND state != 'done' ORDER BY request_id",
                                                 arguments: [user])
            try db.execute(sql: "UPDATE deletion_requests SET state = 'done', blocked_by = NULL, completed_at = ? WHERE user_id = ? AND state != 'done'",
                           arguments: [now, user])
            try Catalog.audit(db, at: now, action: "shred", user: user, detail: ["request": requestId, "bundles": String(bundles.count)])
            // Every request this completes gets its signed receipt in the same transaction (§6.3).
            let done = try completing.compactMap { try DeletionRequestRecord.fetchOne(db, key: $0) }
            try issueReceipts(db, done.map { ($0, nil) }, rootGeneration: generation, now: now)
        }
        try reached("shred:receipt")
        try mirrorReceipts()
        try catalog.checkpoint()
        return (userKey == nil ? 0 : 1, bundles.count)
    }
}
