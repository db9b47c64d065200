import Foundation
import GRDB

/// One row of `receipts` (vault-format.md §6.3): a completed request's signed receipt.
public struct ReceiptRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "receipts"
    public var requestId: String
    public var userId: String
    public var issuedAt: Int64
    /// The receipt's canonical text, exactly as signed.
    public var text: String
    /// `VaultSignature.encoded` (80 bytes).
    public var signature: Data
    /// The keyring holds a copy.
    public var mirrored: Bool
    enum CodingKeys: String, CodingKey {
        case text, signature, mirrored
        case requestId = "request_id", userId = "user_id", issuedAt = "issued_at"
    }

    /// The file `receipt export` writes.
    public var file: ReceiptFile? { VaultSignature(signature).map { ReceiptFile(text: text, signature: $0) } }
}

extension Vault {
    /// Signs and stores, inside the caller's catalog transaction, a receipt for each completed request of `items`
    /// that has none yet (§6.3). `alreadyDeletedBy` is the earlier request whose completion had deleted the user, or
    /// nil for a request completed by destroying the user's key: its receipt lists the user keys the erasure ledger
    /// records. The audit head is the chain's last record, which the caller appended in this transaction. Nothing
    /// is issued in a vault without a trust record (nothing could verify it): `converge` issues those receipts late
    /// once `trust init` made one. Returns the request ids issued.
    @discardableResult
    func issueReceipts(_ db: Database, _ items: [(request: DeletionRequestRecord, alreadyDeletedBy: String?)], rootGeneration: UInt64?,
                       now: Int64) throws -> [String] {
        guard let trust, !items.isEmpty else { return [] }
        guard let head = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1") else {
            throw VaultError.database(path: catalog.path, message: "a deletion completed without an audit record")
        }
        let auditHead = DeletionReceipt.AuditHead(seq: head["seq"], hash: Hex.encode(head["hash"] as Data))
        var issued: [String] = []
        for (request, alreadyDeletedBy) in items {
            guard request.state == .done, try ReceiptRecord.fetchOne(db, key: request.requestId) == nil else { continue }
            let destroyed = alreadyDeletedBy != nil ? [] : try Data.fetchAll(db, sql: """
                SELECT key_id FROM erasures WHERE role = 'user' AND subject = ? ORDER BY key_id
                """, arguments: [request.userId]).map(Hex.encode)
            let receipt = DeletionReceipt(vaultId: config.vaultId, masterKeyId: trust.masterKeyId, request: request, issuedAt: now,
                                          destroyedKeys: destroyed, alreadyDeletedBy: alreadyDeletedBy, rootGeneration: rootGeneration,
                                          auditHead: auditHead)
            let text = receipt.text
            guard let signature = try sign(.receipt, Array(text.utf8)) else { return issued }
            try ReceiptRecord(requestId: request.requestId, userId: request.userId, issuedAt: now, text: text,
                              signature: Data(signature.encoded), mirrored: false).insert(db)
            issued.append(request.requestId)
        }
        return issued
    }

    /// Issues the receipts that completed requests lack (§6.3, late issuance): requests completed in a vault without a
    /// trust record, or brought back by `reindex` or `recover` without their receipt. Each gets a `deletion-receipt`
    /// audit record, which is its audit head; its completion time is the one the catalog recorded. Returns the
    /// request ids issued.
    func issueMissingReceipts(now: Int64) throws -> [String] {
        guard trust != nil else { return [] }
        let missing = try catalog.read { db in
            try DeletionRequestRecord.fetchAll(db, sql: """
                SELECT * FROM deletion_requests r WHERE state = 'done' AND NOT EXISTS (SELECT 1 FROM receipts WHERE request_id = r.request_id)
                ORDER BY completed_at, request_id
                """)
        }
        guard !missing.isEmpty else { return [] }
        let generation = try keystore.ratchetGeneration()
        return try catalog.write { db in
            var issued: [String] = []
            for request in missing {
                // A done request without a tombstone cannot say what was destroyed; `check` reports it.
                guard let tomb = try TombstoneRecord.fetchOne(db, key: request.userId) else { continue }
                // The request that deleted the user, or one completed with it, lists the destroyed keys.
                let destroyer = tomb.requestId == request.requestId || tomb.deletedAt == request.completedAt
                try Catalog.audit(db, at: now, action: "deletion-receipt", user: request.userId,
                                  detail: ["request": request.requestId, "completed": Timestamp.format(request.completedAt ?? now)])
                issued += try issueReceipts(db, [(request, destroyer ? nil : tomb.requestId)], rootGeneration: generation, now: now)
            }
            return issued
        }
    }

    /// Copies the receipts the keyring lacks into it (after the catalog committed them), then marks them mirrored.
    /// Every job that completes a request calls it at once, and `converge` finishes it after a crash.
    func mirrorReceipts() throws {
        let pending = try catalog.read { db in
            try ReceiptRecord.fetchAll(db, sql: "SELECT * FROM receipts INDEXED BY receipts_unmirrored WHERE mirrored = 0")
        }
        guard !pending.isEmpty else { return }
        try keyring.mirrorReceipts(pending)
        try reached("receipt:mirrored")
        try catalog.write { db in
            for r in pending { try db.execute(sql: "UPDATE receipts SET mirrored = 1 WHERE request_id = ?", arguments: [r.requestId]) }
        }
    }

    /// Brings back, inside the caller's catalog transaction, every receipt the keyring mirrors and the catalog lacks
    /// (`reindex`, `recover`), with its request: a receipt proves its request completed, so the request is recorded
    /// as done at the receipt's completion time. A mirrored text that is not a receipt is skipped (`check` verifies
    /// every receipt). Returns how many came back.
    static func restoreReceipts(_ db: Database, from mirrored: [ReceiptRecord]) throws -> Int {
        var restored = 0
        for r in mirrored where try ReceiptRecord.fetchOne(db, key: r.requestId) == nil {
            guard case .success(let receipt) = DeletionReceipt.parse(r.text), receipt.requestId == r.requestId,
                  let received = Timestamp.parse(receipt.received), let completed = Timestamp.parse(receipt.completed),
                  let deadline = CivilDay(iso: receipt.deadline) else { continue }
            try db.execute(sql: """
                INSERT INTO deletion_requests (request_id, user_id, received_at, deadline_day, recorded_at, state, completed_at)
                VALUES (?, ?, ?, ?, ?, 'done', ?)
                ON CONFLICT (request_id) DO UPDATE SET state = 'done', blocked_by = NULL, completed_at = excluded.completed_at
                """, arguments: [r.requestId, receipt.userId, received, deadline.daysSinceEpoch, received, completed])
            var copy = r
            copy.mirrored = true
            try copy.insert(db)
            restored += 1
        }
        return restored
    }

    // MARK: - Reading

    /// The stored receipt of a request, checked against the vault's trust record (the signature and every field, as
    /// `receipt verify` checks an exported one). Throws `notFound` for a request without one, naming why.
    public func receipt(requestId: String) throws -> (record: ReceiptRecord, verification: ReceiptVerification) {
        let (record, request) = try catalog.read { db in
            (try ReceiptRecord.fetchOne(db, key: requestId), try DeletionRequestRecord.fetchOne(db, key: requestId))
        }
        guard let record else {
            guard let request else { throw VaultError.notFound(path: requestId, what: "deletion request") }
            let why: String
            switch request.state {
            case .pending: why = "the request is still pending"
            case .blocked: why = "the request waits for legal hold \(request.blockedBy ?? "?")"
            case .done: why = trust == nil
                ? "a vault without a trust record cannot sign one: run `shredvault trust init`"
                : "not issued yet: any job that changes the vault, e.g. `shredvault sweep`, issues it"
            }
            throw VaultError.notFound(path: requestId, what: "receipt (\(why)) of deletion request")
        }
        return (record, try verify(record))
    }

    /// Writes a request's receipt file (§6.3) to `path`, a new file outside the vault (mode 0644: it is meant to be
    /// handed to the user), after checking the receipt against the trust record.
    public func exportReceipt(requestId: String, to path: String) throws -> ReceiptVerification {
        let (record, verification) = try receipt(requestId: requestId)
        guard let file = record.file else {
            throw VaultError.notVerified(path: "receipt of deletion request \(requestId)", reason: "its stored signature is malformed")
        }
        let cwd = FileManager.default.currentDirectoryPath
        func absolute(_ p: String) -> String { p.hasPrefix("/") ? p : cwd + "/" + p }
        if absolute(path).hasPrefix(absolute(root) + "/") {
            throw VaultError.invalidArgument("write the receipt outside the vault directory (\(path) is inside \(root))")
        }
        if Posix.exists(path) { throw VaultError.targetExists(path: path) }
        try Posix.writeFileAtomically(path, file.encoded, mode: 0o644)
        return verification
    }

    /// Every stored receipt, oldest first.
    public func receipts() throws -> [ReceiptRecord] {
        try catalog.read { db in try ReceiptRecord.fetchAll(db, sql: "SELECT * FROM receipts ORDER BY issued_at, request_id") }
    }

    /// Checks a stored receipt against the vault's trust record and its own row.
    public func verify(_ record: ReceiptRecord) throws -> ReceiptVerification {
        let subject = "receipt of deletion request \(record.requestId)"
        guard let trust else { throw VaultError.notVerified(path: subject, reason: "the vault has no trust record to check it with") }
        guard let signature = VaultSignature(record.signature) else {
            throw VaultError.notVerified(path: subject, reason: "its stored signature is malformed")
        }
        switch trust.verifyReceipt(text: record.text, signature: signature) {
        case .failure(let rejection):
            throw VaultError.notVerified(path: subject, reason: rejection.reason)
        case .success(let verification):
            guard verification.receipt.requestId == record.requestId, verification.receipt.userId == record.userId else {
                throw VaultError.notVerified(path: subject, reason: "it is the receipt of request \(verification.receipt.requestId) of \(verification.receipt.userId)")
            }
            return verification
        }
    }
}
