#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import GRDBSQLite
import VaultCrypto

/// What a keyring is bound to (its `owner` row, vault-format.md §5.1): the vault directory (absolute), the vault id,
/// the keyring's own random id, and whether the vault is a drill. A keyring made before bindings has only the path.
struct KeyringBinding: Equatable {
    var vaultPath: String
    var vaultId: String?
    var keyringId: String?
    var drill: Bool
}

/// A key pair as stored in the keystore: public half in clear, private half sealed to the master public key.
public struct StoredKey: Sendable, Equatable {
    public var keyId: [UInt8]
    public var role: KeyRole
    public var subject: String
    public var publicKey: P256PublicKey
    /// As stored: the ratchet wrap (§3.7) of `KeySeal(master public, scalar)`, or that KeySeal itself in a database
    /// the ratchet migration has not reached.
    public var sealedPrivate: [UInt8]
    public var createdAt: Int64
}

/// The keystore (vault-format.md §3.3): its own SQLite file in its own 0700 directory, holding only sealed
/// private keys. `secure_delete` is on and the rollback journal is deleted after each commit; after keys are
/// destroyed the file is VACUUMed so no page, journal or free list keeps the destroyed bytes.
///
/// The same file format serves as the **keyring** (`kind: .keyring`): backup-epoch key pairs kept beside the
/// restore key, never inside the vault or its backups, plus a mirror of the erasure ledger (key ids only) so a
/// restored or recovered keystore never brings a destroyed key back (vault-format.md §5).
public final class Keystore: @unchecked Sendable {
    public enum Kind: Sendable { case keystore, keyring }
    public let path: String
    public let kind: Kind
    let queue: DatabaseQueue
    /// The outer wrap of every stored private key (§3.7); set by the vault when it opens the database.
    var ratchet: KeystoreRatchet?

    /// - Parameter readOnly: a job that changes nothing: it leaves the file's mode alone, so it also reads a file it may
    ///   not write (SQLite opens such a file read-only by itself; a migration still pending then fails).
    public init(path: String, kind: Kind = .keystore, readOnly: Bool = false) throws {
        self.path = path
        self.kind = kind
        var config = Configuration()
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA secure_delete = ON")
            try db.execute(sql: "PRAGMA journal_mode = DELETE")
        }
        config.label = "keystore"
        do {
            queue = try DatabaseQueue(path: path, configuration: config)
            var migrator = DatabaseMigrator()
            migrator.registerMigration("v1") { db in
                try db.execute(sql: """
                    CREATE TABLE keys (
                        key_id BLOB PRIMARY KEY CHECK (length(key_id) = 16),
                        role TEXT NOT NULL CHECK (role IN ('day', 'user', 'hold', 'epoch')),
                        subject TEXT NOT NULL,
                        public_key BLOB NOT NULL CHECK (length(public_key) = 65),
                        sealed_private BLOB NOT NULL,
                        created_at INTEGER NOT NULL,
                        UNIQUE (role, subject)
                    ) STRICT
                    """)
            }
            if kind == .keyring {
                migrator.registerMigration("keyring-v1") { db in try db.execute(sql: CatalogSchema.erasuresTable) }
                // The hold mirror: every hold placed and released, so `reindex` rebuilds holds a lost catalog knew.
                migrator.registerMigration("keyring-v2-holds") { db in
                    try db.execute(sql: CatalogSchema.holdsMirrorTable)
                    try db.execute(sql: CatalogSchema.requestsMirrorTable)
                }
            }
            if kind == .keyring {
                // Which vault directory the keyring (and so the destruction root beside it) belongs to (§5.1).
                migrator.registerMigration("keyring-v3-owner") { db in
                    try db.execute(sql: "CREATE TABLE owner (id INTEGER PRIMARY KEY CHECK (id = 1), vault_path TEXT NOT NULL) STRICT")
                }
            }
            // The ratchet's columns and table (§3.7); the rows are wrapped by the vault's ratchet migration, which
            // needs the destruction root.
            migrator.registerMigration("ratchet-v1") { db in try db.execute(sql: Self.ratchetSchema) }
            if kind == .keyring {
                // The mirror of signed deletion receipts (§6.3), so `reindex` and `recover` bring them back.
                migrator.registerMigration("keyring-v4-receipts") { db in try db.execute(sql: CatalogSchema.receiptsMirrorTable) }
                // The keyring's binding to exactly one vault (§5.1): the vault's id, the keyring's own random id (also in
                // the catalog, so a replaced keyring is told apart) and whether the vault is a drill; and the latest
                // time a job ran, which outlives a rebuilt catalog (§6.4).
                migrator.registerMigration("keyring-v5-binding") { db in
                    try db.execute(sql: """
                        ALTER TABLE owner ADD COLUMN vault_id TEXT;
                        ALTER TABLE owner ADD COLUMN keyring_id TEXT;
                        ALTER TABLE owner ADD COLUMN drill INTEGER NOT NULL DEFAULT 0 CHECK (drill IN (0, 1));
                        CREATE TABLE clock (id INTEGER PRIMARY KEY CHECK (id = 1), latest_at INTEGER NOT NULL) STRICT;
                        """)
                }
            }
            try migrator.migrate(queue)
            if !readOnly { try Posix.setPermissions(path, 0o600) }
        } catch let e as DatabaseError {
            throw VaultError.database(path: path, message: e.message ?? "\(e)")
        }
    }

    /// Decodes a key row with GRDB's throwing accessors, not its trapping subscripts: a restored snapshot's rows are
    /// untrusted (anyone with an epoch public key can seal a file), so a malformed row is an error, never a crash.
    private func decode(_ row: Row) throws -> StoredKey {
        do {
            let keyId: Data = try row.decode(forColumn: "key_id"), publicKey: Data = try row.decode(forColumn: "public_key")
            let sealed: Data = try row.decode(forColumn: "sealed_private"), roleName: String = try row.decode(forColumn: "role")
            guard let role = KeyRole(rawValue: roleName) else {
                throw VaultError.database(path: path, message: "a key has the unknown role '\(roleName)'")
            }
            return StoredKey(keyId: Array(keyId), role: role, subject: try row.decode(forColumn: "subject"),
                             publicKey: try P256PublicKey(x963Representation: Array(publicKey)), sealedPrivate: Array(sealed),
                             createdAt: try row.decode(forColumn: "created_at"))
        } catch let e as RowDecodingError {
            throw VaultError.database(path: path, message: "a key row cannot be read: \(e)")
        } catch is CryptoError {
            // A stored public key is validated like every received point (§3.1): a forged or damaged row.
            throw VaultError.notGenuine(subject: "a key row in \(path)", reason: "its public key is not a valid P-256 point")
        }
    }

    private static let selectBySubject = "SELECT * FROM keys WHERE role = ? AND subject = ?"

    public func key(role: KeyRole, subject: String) throws -> StoredKey? {
        try read { db in
            try Row.fetchOne(db.cachedStatement(sql: Self.selectBySubject), arguments: [role.rawValue, subject]).map(decode)
        }
    }

    public func key(id: [UInt8]) throws -> StoredKey? { try keys(ids: [Data(id)])[Data(id)] }

    /// The stored keys with these ids (absent ids are left out), in one read transaction.
    public func keys(ids: [Data]) throws -> [Data: StoredKey] {
        try read { db in
            var out: [Data: StoredKey] = [:]
            let statement = try db.cachedStatement(sql: "SELECT * FROM keys WHERE key_id = ?")
            for id in ids {
                if let row = try Row.fetchOne(statement, arguments: [id]) { out[id] = try decode(row) }
            }
            return out
        }
    }

    /// Day keys of days before `today` (G1: ended), in day order. Days are compared as days, never as text; a subject
    /// that is not a day of `CivilDay.first...CivilDay.last` names no day that could have ended and is left alone.
    public func dayKeys(endedBefore today: CivilDay) throws -> [StoredKey] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM keys WHERE role = 'day'").map(decode)
                .compactMap { k in CivilDay(iso: k.subject).flatMap { $0 < today ? ($0, k) : nil } }
                .sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    public func keys(role: KeyRole) throws -> [StoredKey] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM keys WHERE role = ? ORDER BY subject", arguments: [role.rawValue]).map(decode)
        }
    }

    public func count() throws -> [KeyRole: Int] {
        try read { db in
            var out: [KeyRole: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT role, count(*) AS n FROM keys GROUP BY role") {
                // Throwing accessors: a restored snapshot's rows are untrusted (a NULL role must not trap).
                guard let name: String = try? row.decode(forColumn: "role"), let role = KeyRole(rawValue: name) else {
                    throw VaultError.database(path: path, message: "a key has a missing or unknown role")
                }
                out[role] = try row.decode(forColumn: "n")
            }
            return out
        }
    }

    /// Every key id present (for bulk checks).
    public func allKeyIds() throws -> Set<Data> {
        try read { db in try Data.fetchSet(db, sql: "SELECT key_id FROM keys") }
    }

    /// Returns the key pair for (role, subject), creating it with only the master public key if absent.
    public func keyCreatingIfNeeded(role: KeyRole, subject: String, master: P256PublicKey, vaultId: [UInt8], now: Int64) throws -> StoredKey {
        if let existing = try key(role: role, subject: subject) { return existing }
        let pair = try P256PrivateKey.generate()
        let id = try KeyHierarchy.keyId(pair.publicKey)
        let sealed = try KeyHierarchy.sealPrivateKey(pair, master: master, vaultId: vaultId, role: role, subject: subject, keyId: id)
        try write { db in
            let (stored, bucket) = try wrapForStorage(db, sealed: sealed, keyId: id)
            try db.execute(sql: """
                INSERT INTO keys (key_id, role, subject, public_key, sealed_private, created_at, bucket) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (role, subject) DO NOTHING
                """, arguments: [Data(id), role.rawValue, subject, Data(pair.publicKey.x963Representation), Data(stored), now, bucket])
        }
        guard let stored = try key(role: role, subject: subject) else {
            throw VaultError.database(path: path, message: "the \(role.rawValue) key of \(subject) was not stored")
        }
        return stored
    }

    /// Like `keyCreatingIfNeeded` for many subjects of one role, creating the missing ones in one transaction.
    public func keysCreatingIfNeeded(role: KeyRole, subjects: [String], master: P256PublicKey, vaultId: [UInt8], now: Int64) throws -> [String: StoredKey] {
        var out: [String: StoredKey] = [:]
        try read { db in
            let select = try db.cachedStatement(sql: Self.selectBySubject)
            for subject in subjects {
                if let row = try Row.fetchOne(select, arguments: [role.rawValue, subject]) {
                    out[subject] = try decode(row)
                }
            }
        }
        var fresh: [StoredKey] = []
        for subject in subjects where out[subject] == nil {
            let pair = try P256PrivateKey.generate()
            let id = try KeyHierarchy.keyId(pair.publicKey)
            let sealed = try KeyHierarchy.sealPrivateKey(pair, master: master, vaultId: vaultId, role: role, subject: subject, keyId: id)
            fresh.append(StoredKey(keyId: id, role: role, subject: subject, publicKey: pair.publicKey, sealedPrivate: sealed, createdAt: now))
        }
        if !fresh.isEmpty {
            try write { db in
                let insert = try db.cachedStatement(sql: """
                    INSERT INTO keys (key_id, role, subject, public_key, sealed_private, created_at, bucket) VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (role, subject) DO NOTHING
                    """)
                let select = try db.cachedStatement(sql: Self.selectBySubject)
                for var k in fresh {
                    let (stored, bucket) = try wrapForStorage(db, sealed: k.sealedPrivate, keyId: k.keyId)
                    k.sealedPrivate = stored
                    try insert.execute(arguments: [Data(k.keyId), role.rawValue, k.subject, Data(k.publicKey.x963Representation),
                                                   Data(stored), now, bucket])
                    // If a key for the subject appeared meanwhile, the stored row wins and ours is dropped.
                    out[k.subject] = db.changesCount == 1 ? k : try Row.fetchOne(select, arguments: [role.rawValue, k.subject]).map(decode) ?? k
                }
            }
        }
        return out
    }

    /// Opens a stored private key with the restore key, which the caller has checked against master.pub: a row that
    /// then does not open (its seal modified, moved from another role, subject or vault) or opens to a key other than
    /// its public half is forged or corrupt (exit 65), not a key problem. A ratchet wrap that does not authenticate
    /// reports itself (`unwrapStored`).
    public func privateKey(_ stored: StoredKey, restoreKey: P256PrivateKey, vaultId: [UInt8]) throws -> P256PrivateKey {
        let sealed = try unwrapStored(stored)
        let what = "the \(stored.role.rawValue) key \(Hex.encode(stored.keyId)) (\(stored.subject)) in \(path)"
        let key: P256PrivateKey
        do {
            key = try KeyHierarchy.openPrivateKey(sealed, restoreKey: restoreKey, vaultId: vaultId,
                                                  role: stored.role, subject: stored.subject, keyId: stored.keyId)
        } catch is CryptoError {
            throw VaultError.notGenuine(subject: what, reason: "its sealed private key does not open with the restore key (modified, or moved from another key's row)")
        }
        guard key.publicKey == stored.publicKey else {
            throw VaultError.notGenuine(subject: what, reason: "its sealed private key is not the private half of its public key")
        }
        return key
    }

    /// Destroys keys: deletes their rows. `secure_delete = ON` overwrites the deleted cells and every page put on
    /// the free list with zeros, and the rollback journal that held the old pages is deleted at commit, so the
    /// destroyed bytes are in no page, free list or journal of the keystore's files. (A VACUUM would rewrite the
    /// whole file — hundreds of MB with millions of user keys — for no further gain; tests search every file.)
    public func destroy(keyIds: [[UInt8]]) throws {
        guard !keyIds.isEmpty else { return }
        try write { db in
            for id in keyIds { try db.execute(sql: "DELETE FROM keys WHERE key_id = ?", arguments: [Data(id)]) }
        }
    }

    /// Keyring only: mirrors erasure-ledger records (key ids, no key material), written before keys are destroyed.
    public func recordErasures(_ keys: [StoredKey], at: Int64, reason: String) throws {
        guard kind == .keyring, !keys.isEmpty else { return }
        try write { db in
            for k in keys {
                try db.execute(sql: "INSERT INTO erasures (key_id, role, subject, recorded_at, reason) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                               arguments: [Data(k.keyId), k.role.rawValue, k.subject, at, reason])
            }
        }
    }

    /// Keyring only: mirrors a placed hold (reopening a released one), before the catalog records it.
    public func mirrorHold(caseId: String, user: String, reason: String, placedAt: Int64) throws {
        guard kind == .keyring else { return }
        try write { db in
            try db.execute(sql: """
                INSERT INTO holds (case_id, user_id, reason, placed_at, released_at) VALUES (?, ?, ?, ?, NULL)
                ON CONFLICT (case_id, user_id) DO UPDATE SET reason = excluded.reason, placed_at = excluded.placed_at, released_at = NULL
                """, arguments: [caseId, user, reason, placedAt])
        }
    }

    /// Keyring only: mirrors a released hold, before the catalog records it.
    public func mirrorHoldRelease(caseId: String, user: String, at: Int64) throws {
        guard kind == .keyring else { return }
        try write { db in
            try db.execute(sql: "UPDATE holds SET released_at = ? WHERE case_id = ? AND user_id = ? AND released_at IS NULL",
                           arguments: [at, caseId, user])
        }
    }

    /// Keyring only: adds hold records it lacks (catalog holds of a vault made before the mirror).
    func mirrorMissingHolds(_ holds: [HoldRecord]) throws {
        guard kind == .keyring, !holds.isEmpty else { return }
        try write { db in
            for h in holds {
                try db.execute(sql: """
                    INSERT INTO holds (case_id, user_id, reason, placed_at, released_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (case_id, user_id) DO NOTHING
                    """, arguments: [h.caseId, h.userId, h.reason, h.placedAt, h.releasedAt])
            }
        }
    }

    /// Keyring only: the vault this keyring (and the destruction root beside it) is bound to (§5.1); nil if never bound.
    func binding() throws -> KeyringBinding? {
        guard kind == .keyring else { return nil }
        return try read { db in
            try Row.fetchOne(db, sql: "SELECT vault_path, vault_id, keyring_id, drill FROM owner WHERE id = 1").map {
                KeyringBinding(vaultPath: $0["vault_path"], vaultId: $0["vault_id"], keyringId: $0["keyring_id"], drill: $0["drill"])
            }
        }
    }

    func bind(_ b: KeyringBinding) throws {
        guard kind == .keyring else { return }
        try write { db in
            try db.execute(sql: """
                INSERT INTO owner (id, vault_path, vault_id, keyring_id, drill) VALUES (1, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET vault_path = excluded.vault_path, vault_id = excluded.vault_id,
                    keyring_id = excluded.keyring_id, drill = excluded.drill
                """, arguments: [b.vaultPath, b.vaultId, b.keyringId, b.drill])
        }
    }

    /// Keyring only: the latest time a job of the vault ran, or an operator accepted the clock (§6.4).
    func latestJobTime() throws -> Int64? {
        guard kind == .keyring else { return nil }
        return try read { db in try Int64.fetchOne(db, sql: "SELECT latest_at FROM clock WHERE id = 1") }
    }

    func setLatestJobTime(_ at: Int64) throws {
        guard kind == .keyring else { return }
        try write { db in
            try db.execute(sql: "INSERT INTO clock (id, latest_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET latest_at = excluded.latest_at",
                           arguments: [at])
        }
    }

    /// Keyring only: mirrors a deletion request, before the catalog records it.
    func mirrorDeletionRequest(_ r: DeletionRequestRecord) throws {
        guard kind == .keyring else { return }
        try write { db in
            try db.execute(sql: """
                INSERT INTO deletion_requests (request_id, user_id, received_at, deadline_day, recorded_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT DO NOTHING
                """, arguments: [r.requestId, r.userId, r.receivedAt, r.deadlineDay, r.recordedAt])
        }
    }

    /// Keyring only: the mirrored deletion requests (state unknown: the catalog or the ledger tells).
    func mirroredDeletionRequests() throws -> [DeletionRequestRecord] {
        guard kind == .keyring else { return [] }
        return try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM deletion_requests ORDER BY received_at, request_id").map {
                DeletionRequestRecord(requestId: $0["request_id"], userId: $0["user_id"], receivedAt: $0["received_at"],
                                      deadlineDay: $0["deadline_day"], recordedAt: $0["recorded_at"], state: .pending, blockedBy: nil, completedAt: nil)
            }
        }
    }

    /// Keyring only: copies signed deletion receipts (§6.3), after the catalog committed them; a receipt already
    /// mirrored is left as it is (a request has one receipt).
    func mirrorReceipts(_ receipts: [ReceiptRecord]) throws {
        guard kind == .keyring, !receipts.isEmpty else { return }
        try write { db in
            let insert = try db.cachedStatement(sql: """
                INSERT INTO receipts (request_id, user_id, issued_at, text, signature) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """)
            for r in receipts { try insert.execute(arguments: [r.requestId, r.userId, r.issuedAt, r.text, r.signature]) }
        }
    }

    /// Keyring only: the mirrored receipts.
    func mirroredReceipts() throws -> [ReceiptRecord] {
        guard kind == .keyring else { return [] }
        return try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM receipts ORDER BY issued_at, request_id").map {
                ReceiptRecord(requestId: $0["request_id"], userId: $0["user_id"], issuedAt: $0["issued_at"], text: $0["text"],
                              signature: $0["signature"], mirrored: true)
            }
        }
    }

    /// Keyring only: the mirrored holds, active and released.
    public func mirroredHolds() throws -> [HoldRecord] {
        guard kind == .keyring else { return [] }
        return try read { db in try HoldRecord.fetchAll(db, sql: "SELECT * FROM holds ORDER BY placed_at, case_id, user_id") }
    }

    /// Keyring only: every ledger record (key id, role, subject, recorded at, reason).
    func erasureRecords() throws -> [Row] {
        guard kind == .keyring else { return [] }
        return try read { db in try Row.fetchAll(db, sql: "SELECT * FROM erasures ORDER BY recorded_at, key_id") }
    }

    /// Keyring only: every key id recorded as destroyed.
    public func erasedKeyIds() throws -> Set<Data> {
        guard kind == .keyring else { return [] }
        return try read { db in try Data.fetchSet(db, sql: "SELECT key_id FROM erasures") }
    }

    /// Deletes, without VACUUM, every key whose id is in `ids` (ledger replay on a restored copy); returns how many.
    func deleteKeys(ids: Set<Data>) throws -> Int {
        try write { db in
            var n = 0
            for id in ids {
                try db.execute(sql: "DELETE FROM keys WHERE key_id = ?", arguments: [id])
                n += db.changesCount
            }
            return n
        }
    }

    /// Copies every key of `other` that this keystore lacks (by key id), unwrapped from `other`'s ratchet and
    /// wrapped under this one's; returns how many.
    func importMissing(from other: Keystore) throws -> Int {
        let present = try allKeyIds()
        let missing = try other.read { db in try Row.fetchAll(db, sql: "SELECT * FROM keys").map { try other.decode($0) } }.filter { !present.contains(Data($0.keyId)) }
        let sealed = try missing.map { try other.unwrapStored($0) }
        return try write { db in
            var n = 0
            for (k, s) in zip(missing, sealed) {
                let (stored, bucket) = try wrapForStorage(db, sealed: s, keyId: k.keyId)
                try db.execute(sql: """
                    INSERT INTO keys (key_id, role, subject, public_key, sealed_private, created_at, bucket) VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT DO NOTHING
                    """, arguments: [Data(k.keyId), k.role.rawValue, k.subject, Data(k.publicKey.x963Representation), Data(stored), k.createdAt, bucket])
                n += db.changesCount
            }
            return n
        }
    }

    /// An in-memory keystore holding the SQLite image `image` (a decrypted snapshot): ledger replay and merging
    /// happen here, so a destroyed key never reaches a file. `path` names the snapshot in errors.
    init(image: SecretBytes, describedAs path: String) throws {
        self.path = path
        self.kind = .keystore
        do {
            queue = try DatabaseQueue()
            try queue.writeWithoutTransaction { db in
                let size = Int64(image.count)
                guard size > 0, let buffer = sqlite3_malloc64(UInt64(size)) else {
                    throw VaultError.database(path: path, message: "cannot allocate \(size) bytes for the snapshot")
                }
                image.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                let rc = sqlite3_deserialize(db.sqliteConnection, "main", buffer.assumingMemoryBound(to: UInt8.self), size, size,
                                             UInt32(SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_RESIZEABLE))
                guard rc == SQLITE_OK else { throw VaultError.database(path: path, message: "not a SQLite image (\(rc))") }
                try db.execute(sql: "PRAGMA secure_delete = ON")
                _ = try Int.fetchOne(db, sql: "SELECT count(*) FROM keys")
            }
        } catch let e as DatabaseError {
            throw VaultError.database(path: path, message: e.message ?? "\(e)")
        }
    }

    /// A consistent image of the database in memory (`sqlite3_serialize` inside a read transaction) and its key
    /// count, for sealed snapshots: no plaintext copy is ever written to a file.
    func serialized() throws -> (image: SecretBytes, keys: Int) {
        try read { db in
            let keys = try Int.fetchOne(db, sql: "SELECT count(*) FROM keys") ?? 0
            var size: Int64 = 0
            guard let raw = sqlite3_serialize(db.sqliteConnection, "main", &size, 0) else {
                throw VaultError.database(path: path, message: "cannot serialize the keystore (out of memory?)")
            }
            defer {
                explicit_bzero(raw, Int(size))
                sqlite3_free(raw)
            }
            let image = SecretBytes(count: Int(size))
            image.withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: raw, byteCount: Int(size)) }
            return (image, keys)
        }
    }

    /// The image a keystore snapshot carries: the live rows rewrapped under a fresh bucket table that travels in
    /// plaintext inside the sealed payload (generation 0), so the snapshot opens with the epoch key alone for its
    /// window and shares no bucket key with the live keystore. Returns the image and its key count.
    func snapshotImage(vaultId: [UInt8]) throws -> (image: SecretBytes, keys: Int) {
        let (raw, keys) = try serialized()
        let copy = try Keystore(image: raw, describedAs: path)
        copy.ratchet = KeystoreRatchet(root: ratchet?.root, vaultId: vaultId)
        defer { copy.wipeImage() }
        try copy.rekeyImage(sealUnder: nil, vaultId: vaultId)
        return (try copy.serialized().image, keys)
    }

    /// Writes the in-memory database to a new file (`VACUUM INTO`) and wipes the memory image.
    func writeImage(to file: String) throws {
        try databaseCall(path) { try queue.vacuum(into: file) }
    }

    /// Zeroes the in-memory image (an `init(image:)` keystore) before it is released.
    func wipeImage() {
        try? queue.writeWithoutTransaction { db in
            var size: Int64 = 0
            if let raw = sqlite3_serialize(db.sqliteConnection, "main", &size, UInt32(SQLITE_SERIALIZE_NOCOPY)) {
                explicit_bzero(raw, Int(size))
            }
        }
    }

    /// Closes the database (before its file is replaced, and at the end of a job). Idempotent.
    public func close() throws {
        if closed { return }
        try databaseCall(path) { try queue.close() }
        closed = true
    }
    private var closed = false

    func vacuum() throws {
        try databaseCall(path) { try queue.vacuum() }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        return try databaseCall(path) { try queue.read(body) }
    }

    func write<T>(_ body: (Database) throws -> T) throws -> T {
        return try databaseCall(path) { try queue.write(body) }
    }
}
