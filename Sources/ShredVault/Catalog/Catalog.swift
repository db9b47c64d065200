import Foundation
import GRDB
import VaultCrypto

/// One row of `bundles`.
public struct BundleRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "bundles"

    public enum State: String, Codable, Sendable { case writing, live, expired, shredded }
    public enum SourceState: String, Codable, Sendable { case pendingRemoval = "pending-removal", removed, kept }

    public var id: String
    public var userId: String
    public var archivedAt: Int64
    public var originalExpiryDay: Int64
    public var expiryDay: Int64
    public var state: State
    public var size: Int64
    public var sha256: Data?
    public var location: String
    public var userKeyId: Data
    public var outerRole: String?
    public var outerKeyId: Data?
    public var sealedDek: Data?
    public var files: Int64
    public var plaintextBytes: Int64
    public var sourceState: SourceState
    public var endedAt: Int64?
    public var endReason: String?
    /// SHA-256 of the inner sealed DEK, and the bundle and seal signatures (vault-format.md §3.10).
    public var innerSha256: Data?
    public var bundleSig: Data?
    public var sealSig: Data?

    enum CodingKeys: String, CodingKey {
        case innerSha256 = "inner_sha256", bundleSig = "bundle_sig", sealSig = "seal_sig"
        case id, state, size, sha256, location, files
        case userId = "user_id", archivedAt = "archived_at", originalExpiryDay = "original_expiry_day", expiryDay = "expiry_day"
        case userKeyId = "user_key_id", outerRole = "outer_role", outerKeyId = "outer_key_id", sealedDek = "sealed_dek"
        case plaintextBytes = "plaintext_bytes", sourceState = "source_state", endedAt = "ended_at", endReason = "end_reason"
    }

    public var expiry: CivilDay { CivilDay(daysSinceEpoch: expiryDay) }
}

/// One row of `holds`.
public struct HoldRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "holds"
    public var caseId: String
    public var userId: String
    public var reason: String
    public var placedAt: Int64
    public var releasedAt: Int64?
    enum CodingKeys: String, CodingKey {
        case reason
        case caseId = "case_id", userId = "user_id", placedAt = "placed_at", releasedAt = "released_at"
    }
}

/// One row of `deletion_requests`.
public struct DeletionRequestRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "deletion_requests"
    public enum State: String, Codable, Sendable { case pending, blocked, done }
    public var requestId: String
    public var userId: String
    public var receivedAt: Int64
    public var deadlineDay: Int64
    public var recordedAt: Int64
    public var state: State
    public var blockedBy: String?
    public var completedAt: Int64?
    enum CodingKeys: String, CodingKey {
        case state
        case requestId = "request_id", userId = "user_id", receivedAt = "received_at", deadlineDay = "deadline_day"
        case recordedAt = "recorded_at", blockedBy = "blocked_by", completedAt = "completed_at"
    }
}

/// One row of `tombstones`.
public struct TombstoneRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "tombstones"
    public var userId: String
    public var deletedAt: Int64
    public var requestId: String
    enum CodingKeys: String, CodingKey { case userId = "user_id", deletedAt = "deleted_at", requestId = "request_id" }
}

/// The catalog (`catalog.db`): bundle index by expiry day, holds, deletion requests, tombstones, the erasure
/// ledger and the hash-chained audit log. It holds no usable key material: sealed DEKs need keystore keys.
public final class Catalog: @unchecked Sendable {
    public let path: String
    let queue: DatabaseQueue

    /// - Parameter readOnly: a job that changes nothing: where the catalog cannot be opened for writing (a read-only
    ///   file system, a directory this user may not write) it is opened read-only instead (`openReadOnly`).
    public init(path: String, create: Bool, readOnly: Bool = false) throws {
        self.path = path
        if !create, !Posix.exists(path) { throw VaultError.notFound(path: path, what: "catalog") }
        var config = Configuration()
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA secure_delete = ON")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        config.label = "catalog"
        do {
            let opened: DatabaseQueue
            do {
                let queue = try DatabaseQueue(path: path, configuration: config)
                try queue.writeWithoutTransaction { db in _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") }
                try CatalogSchema.migrator().migrate(queue)
                opened = queue
            } catch let e as DatabaseError where readOnly && [.SQLITE_CANTOPEN, .SQLITE_READONLY, .SQLITE_PERM].contains(e.resultCode) {
                config.readonly = true
                opened = try Self.openReadOnly(path: path, configuration: config)
            }
            queue = opened
        } catch let e as DatabaseError {
            throw VaultError.database(path: path, message: e.message ?? "\(e)")
        }
    }

    /// Opens the catalog (a WAL database) read-only, for a read-only job that may not write it. SQLite reads a WAL
    /// database through its `-shm` index, which it creates beside the file; where it cannot (a read-only mount, a
    /// directory this user may not write) and no `-wal` file holds changes, the file is opened as immutable: nothing
    /// can change it under the shared vault lock, and everything committed is in it (every job that writes checkpoints
    /// the WAL into it when it ends). A schema a writing job has yet to upgrade is refused.
    private static func openReadOnly(path: String, configuration: Configuration) throws -> DatabaseQueue {
        func open(_ name: String) throws -> DatabaseQueue {
            let queue = try DatabaseQueue(path: name, configuration: configuration)
            guard try queue.read({ db in try CatalogSchema.migrator().hasCompletedMigrations(db) }) else {
                throw VaultError.database(path: path, message: "this catalog's schema predates this shredvault; run a job that changes the vault (e.g. `shredvault sweep`) with write access first")
            }
            return queue
        }
        do {
            return try open(path)
        } catch let e as DatabaseError where e.resultCode == .SQLITE_CANTOPEN {
            if let wal = try Posix.status(path + "-wal"), wal.size > 0 {
                throw VaultError.database(path: path, message: "it cannot be read without write access while \(Posix.baseName(path))-wal holds changes not yet checkpointed (a job was interrupted); run any job that changes the vault with write access first")
            }
            do {
                let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
                let escaped = absolute.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "?", with: "%3f")
                    .replacingOccurrences(of: "#", with: "%23")
                return try open("file:" + escaped + "?immutable=1")
            } catch let e as DatabaseError {
                throw VaultError.database(path: path, message: e.message ?? "\(e)")
            }
        } catch let e as DatabaseError {
            throw VaultError.database(path: path, message: e.message ?? "\(e)")
        }
    }

    public func read<T>(_ body: (Database) throws -> T) throws -> T {
        return try databaseCall(path) { try queue.read(body) }
    }

    /// Runs `body` in one write transaction. When a head signer is set (a vault with a trust record) and `body`
    /// appended audit records, the transaction also appends their signed head (§6.2), so records and head commit
    /// together or not at all.
    public func write<T>(_ body: (Database) throws -> T) throws -> T {
        guard let signer = auditHeadSigner else { return try databaseCall(path) { try queue.write(body) } }
        return try databaseCall(path) {
            try queue.write { db in
                let before = try Self.lastAuditSeq(db)
                let result = try body(db)
                try Self.appendAuditHead(db, after: before, signer: signer)
                return result
            }
        }
    }

    /// Signs the audit records each write transaction appends (§6.2); set by the vault at open.
    var auditHeadSigner: AuditHeadSigner?

    /// Closes the database; a job that changed the vault first folds the WAL back in (checkpoint TRUNCATE), and
    /// either failing is reported (a close must not fail silently). Idempotent.
    public func close(checkpoint: Bool) throws {
        if closed { return }
        if checkpoint { try self.checkpoint() }
        try databaseCall(path) { try queue.close() }
        closed = true
    }
    private var closed = false

    /// Checkpoints the WAL into the database and truncates it (after secure deletions).
    public func checkpoint() throws {
        try databaseCall(path) { try queue.writeWithoutTransaction { db in try db.checkpoint(.truncate) } }
    }

    // MARK: - Audit log

    static let genesisHash = Data(repeating: 0, count: 32)

    /// Appends a hash-chained audit record inside the caller's transaction.
    /// `detail` holds no personal data beyond the user id.
    static func audit(_ db: Database, at: Int64, action: String, user: String?, detail: [String: String]) throws {
        let last = try Row.fetchOne(db.cachedStatement(sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"))
        let seq: Int64 = (last?["seq"] as Int64? ?? 0) + 1
        let prev: Data = last?["hash"] ?? genesisHash
        let detailText = encodeDetail(detail)
        let hash = try auditHash(prev: prev, seq: seq, at: at, action: action, user: user, detail: detailText)
        try db.cachedStatement(sql: "INSERT INTO audit (seq, at, action, user_id, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .execute(arguments: [seq, at, action, user, detailText, prev, hash])
    }

    /// A JSON object with sorted keys and string values (what JSONSerialization would print, much faster).
    static func encodeDetail(_ detail: [String: String]) -> String {
        let members: [String] = detail.keys.sorted().map { (key: String) -> String in
            CanonicalJSON.string(key) + ":" + CanonicalJSON.string(detail[key]!)
        }
        return "{" + members.joined(separator: ",") + "}"
    }

    /// `SHA-256(prev ‖ be64(seq) ‖ be64(at) ‖ action ‖ 0 ‖ user ‖ 0 ‖ detail)`.
    static func auditHash(prev: Data, seq: Int64, at: Int64, action: String, user: String?, detail: String) throws -> Data {
        var bytes = [UInt8](prev)
        bytes.appendBigEndian(UInt64(bitPattern: seq))
        bytes.appendBigEndian(UInt64(bitPattern: at))
        bytes += Array(action.utf8) + [0] + Array((user ?? "").utf8) + [0] + Array(detail.utf8)
        return Data(try SHA256.hash(bytes))
    }

    /// Verifies the audit chain; returns the number of records and the first problem, if any. (The signed heads
    /// are checked by `Vault.verifyAudit`, which needs the trust record.)
    public func verifyAudit() throws -> (records: Int, problem: String?) {
        let chain = try read { db in try Self.walkAudit(db, collecting: []) }
        return (chain.records, chain.problem)
    }

    /// The audit chain as `walkAudit` found it.
    struct AuditChain {
        /// Records verified before the first problem (all of them without one).
        var records = 0
        var problem: String?
        /// The last record's sequence number (0 for an empty log); meaningful without a problem.
        var lastSeq: Int64 = 0
        var firstAction: String?
        /// `prev_hash` and `hash` of the records asked for that the walk verified.
        var links: [Int64: (prev: [UInt8], hash: [UInt8])] = [:]
    }

    /// Walks the chain from the genesis: consecutive sequence numbers from 1, each `prev_hash` the previous `hash`,
    /// each `hash` recomputed. Stops at the first problem.
    static func walkAudit(_ db: Database, collecting wanted: Set<Int64>) throws -> AuditChain {
        var chain = AuditChain()
        var prev = genesisHash
        let cursor = try Row.fetchCursor(db, sql: "SELECT * FROM audit ORDER BY seq")
        while let row = try cursor.next() {
            let seq: Int64 = row["seq"], expected = chain.lastSeq + 1
            let storedPrev: Data = row["prev_hash"], stored: Data = row["hash"]
            guard seq == expected else { chain.problem = "audit record \(expected) is missing (next is \(seq))"; return chain }
            guard storedPrev == prev else { chain.problem = "audit record \(seq) does not chain to record \(seq - 1)"; return chain }
            let action: String = row["action"]
            let h = try auditHash(prev: prev, seq: seq, at: row["at"], action: action, user: row["user_id"], detail: row["detail"])
            guard h == stored else { chain.problem = "audit record \(seq) was modified (hash mismatch)"; return chain }
            if seq == 1 { chain.firstAction = action }
            if wanted.contains(seq) { chain.links[seq] = (Array(storedPrev), Array(stored)) }
            prev = stored
            chain.lastSeq = seq
            chain.records += 1
        }
        return chain
    }

    // MARK: - Queries

    public func liveBundles(user: String) throws -> [BundleRecord] {
        try read { db in
            try BundleRecord.fetchAll(db, sql: "SELECT * FROM bundles WHERE user_id = ? AND state = 'live' ORDER BY archived_at, id", arguments: [user])
        }
    }

    public func bundles(user: String) throws -> [BundleRecord] {
        try read { db in try BundleRecord.fetchAll(db, sql: "SELECT * FROM bundles WHERE user_id = ? ORDER BY archived_at, id", arguments: [user]) }
    }

    public func activeHolds(user: String) throws -> [HoldRecord] {
        try read { db in try Self.activeHolds(db, user: user) }
    }

    static func activeHolds(_ db: Database, user: String) throws -> [HoldRecord] {
        try HoldRecord.fetchAll(db, sql: "SELECT * FROM holds WHERE user_id = ? AND released_at IS NULL ORDER BY placed_at, case_id", arguments: [user])
    }

    public func tombstone(user: String) throws -> TombstoneRecord? {
        try read { db in try TombstoneRecord.fetchOne(db, key: user) }
    }

    public func meta(_ key: String) throws -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]) }
    }

    /// Sets `meta` values outside a job's write transaction: an immediate transaction that waits up to 5 s for another
    /// writer. For the bookkeeping of a command that runs under the shared vault lock (`audit head`), where another
    /// such command may write at the same time.
    func writeMeta(_ values: [String: String]) throws {
        try databaseCall(path) {
            try queue.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA busy_timeout = 5000")
                try db.inTransaction(.immediate) {
                    for (key, value) in values { try Self.setMeta(db, key, value) }
                    return .commit
                }
            }
        }
    }

    static func setMeta(_ db: Database, _ key: String, _ value: String) throws {
        try db.execute(sql: "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", arguments: [key, value])
    }

    /// Every key id recorded as destroyed in the catalog's ledger.
    public func erasedKeyIds() throws -> Set<Data> {
        try read { db in try Data.fetchSet(db, sql: "SELECT key_id FROM erasures") }
    }

    /// A consistent copy of the catalog (`VACUUM INTO`).
    public func snapshot(to file: String) throws {
        try databaseCall(path) { try queue.vacuum(into: file) }
    }

    /// Records a key about to be destroyed (the erasure ledger), before it is destroyed; false if it was recorded already.
    static func recordErasure(_ db: Database, _ k: StoredKey, at: Int64, reason: String) throws -> Bool {
        try db.execute(sql: "INSERT INTO erasures (key_id, role, subject, recorded_at, reason) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                       arguments: [Data(k.keyId), k.role.rawValue, k.subject, at, reason])
        return db.changesCount == 1
    }
}
