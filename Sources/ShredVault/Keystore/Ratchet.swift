import Foundation
import GRDB
import VaultCrypto

/// The ratchet of one key database (keystore or keyring; vault-format.md §3.7).
///
/// Every stored private key (already sealed to the master public key) is wrapped once more under the key of its
/// **bucket** (one of `buckets`, chosen by the key id); the bucket keys form the **table**, which is sealed under
/// the destruction root's current generation. Destroying keys gives each affected bucket a fresh key (rewrapping
/// its survivors), seals the new table under a new root generation and then destroys the old generation: every
/// older copy of the database (with any journal or free page) needs a root generation that no longer exists.
final class KeystoreRatchet: @unchecked Sendable {
    /// The root, or nil for an in-memory snapshot image whose table is carried in plaintext (generation 0).
    let root: DestructionRoot?
    let vaultId: [UInt8]
    private let lock = NSLock()
    private var cached: (generation: UInt64, table: SecretBytes)?
    /// The database's current `ratchet` row as this job last read or wrote it. A job holds the vault lock, so only
    /// its own rotations change the row, and they update this; unwrapping many keys then reads no row again.
    private var currentRow: Keystore.RatchetRow?

    func current() -> Keystore.RatchetRow? {
        lock.lock()
        defer { lock.unlock() }
        return currentRow
    }

    func setCurrent(_ row: Keystore.RatchetRow?) {
        lock.lock()
        currentRow = row
        lock.unlock()
    }

    init(root: DestructionRoot?, vaultId: [UInt8]) {
        self.root = root
        self.vaultId = vaultId
    }

    /// Generation 0 marks a table stored in plaintext: only inside a sealed keystore snapshot's payload (§5.2).
    static let plaintextGeneration: UInt64 = 0

    static func tableAAD(vaultId: [UInt8], kind: Keystore.Kind, generation: UInt64, buckets: Int) -> [UInt8] {
        var out = Array("shredvault.org/ratchet-table@v1".utf8) + [0] + vaultId + [kind == .keystore ? 0 : 1]
        out.appendBigEndian(generation)
        out.appendBigEndian(UInt32(buckets))
        return out
    }

    static func rowAAD(vaultId: [UInt8], keyId: [UInt8], bucket: Int) -> [UInt8] {
        var out = Array("shredvault.org/ratchet-row@v1".utf8) + [0] + vaultId + keyId
        out.appendBigEndian(UInt32(bucket))
        return out
    }

    /// (A key id shorter than 2 bytes — only in a forged image — lands in bucket 0 and then fails its AAD.)
    static func bucket(of keyId: [UInt8], buckets: Int) -> Int {
        keyId.count >= 2 ? (Int(keyId[0]) << 8 | Int(keyId[1])) % buckets : 0
    }

    static func bucketKey(_ table: SecretBytes, _ bucket: Int) -> SecretBytes {
        table.withUnsafeBytes { SecretBytes(copying: UnsafeRawBufferPointer(rebasing: $0[(bucket * 32)..<(bucket * 32 + 32)])) }
    }

    /// The table of `row`, from the cache when the generation matches.
    func table(_ row: Keystore.RatchetRow, kind: Keystore.Kind, path: String) throws -> SecretBytes {
        lock.lock()
        defer { lock.unlock() }
        if let cached, cached.generation == row.generation, row.generation != Self.plaintextGeneration { return cached.table }
        let table: SecretBytes
        if row.generation == Self.plaintextGeneration {
            table = SecretBytes(copying: row.sealedTable)
        } else {
            guard let root else { throw VaultError.invalidArgument("\(path) is ratcheted but no destruction root is configured") }
            table = try root.open(row.sealedTable, generation: row.generation,
                                  aad: Self.tableAAD(vaultId: vaultId, kind: kind, generation: row.generation, buckets: row.buckets))
        }
        guard table.count == row.buckets * 32 else { throw VaultError.corruptBundle(path: path, reason: "ratchet table has the wrong size") }
        cached = (row.generation, table)
        return table
    }

    func remember(generation: UInt64, table: SecretBytes) {
        lock.lock()
        cached = (generation, table)
        lock.unlock()
    }

    func wrap(_ sealed: [UInt8], keyId: [UInt8], table: SecretBytes, buckets: Int) throws -> (wrapped: [UInt8], bucket: Int) {
        let b = Self.bucket(of: keyId, buckets: buckets)
        let wrapped = try RootCipher.seal(SecretBytes(copying: sealed), key: Self.bucketKey(table, b),
                                          aad: Self.rowAAD(vaultId: vaultId, keyId: keyId, bucket: b))
        return (wrapped, b)
    }

    func unwrap(_ wrapped: [UInt8], keyId: [UInt8], table: SecretBytes, buckets: Int, path: String) throws -> [UInt8] {
        let b = Self.bucket(of: keyId, buckets: buckets)
        let sealed = try RootCipher.open(wrapped, key: Self.bucketKey(table, b), aad: Self.rowAAD(vaultId: vaultId, keyId: keyId, bucket: b),
                                         what: path)
        return sealed.withUnsafeBytes { Array($0) }
    }
}

extension Keystore {
    /// The `ratchet` row: current root generation, bucket count, sealed bucket table.
    struct RatchetRow {
        var generation: UInt64
        var buckets: Int
        var sealedTable: [UInt8]
    }

    static let ratchetSchema = """
        ALTER TABLE keys ADD COLUMN bucket INTEGER;
        CREATE INDEX keys_by_bucket ON keys (bucket);
        CREATE TABLE ratchet (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            generation INTEGER NOT NULL CHECK (generation >= 0),
            buckets INTEGER NOT NULL CHECK (buckets > 0),
            sealed_table BLOB NOT NULL
        ) STRICT;
        """

    /// Buckets of a new table: the keystore holds up to millions of keys (~250 per bucket at a million), the keyring
    /// a few dozen epoch keys.
    var defaultBuckets: Int { kind == .keystore ? 4096 : 16 }

    static func ratchetRow(_ db: Database) throws -> RatchetRow? {
        guard try db.tableExists("ratchet"), let row = try Row.fetchOne(db, sql: "SELECT * FROM ratchet WHERE id = 1") else { return nil }
        // Throwing accessors: the row may come from an untrusted snapshot image.
        let sealed: Data = try row.decode(forColumn: "sealed_table")
        let generation: Int64 = try row.decode(forColumn: "generation"), buckets: Int = try row.decode(forColumn: "buckets")
        guard generation >= 0, buckets > 0, buckets <= 1 << 20 else {
            throw VaultError.database(path: db.description, message: "the ratchet row is malformed")
        }
        return RatchetRow(generation: UInt64(generation), buckets: buckets, sealedTable: Array(sealed))
    }

    /// The root generation this database's table is sealed under (nil before the ratchet migration).
    public func ratchetGeneration() throws -> UInt64? {
        try read { db in try Self.ratchetRow(db)?.generation }
    }

    /// Wraps a sealed private key for storage (unchanged in a database the ratchet migration has not reached).
    func wrapForStorage(_ db: Database, sealed: [UInt8], keyId: [UInt8]) throws -> (stored: [UInt8], bucket: Int?) {
        guard let row = try Self.ratchetRow(db) else { return (sealed, nil) }
        guard let ratchet else { throw VaultError.invalidArgument("\(path) is ratcheted but no destruction root is configured") }
        let table = try ratchet.table(row, kind: kind, path: path)
        let (wrapped, bucket) = try ratchet.wrap(sealed, keyId: keyId, table: table, buckets: row.buckets)
        return (wrapped, bucket)
    }

    /// The sealed private key (KeySeal to the master public key) of a stored row.
    func unwrapStored(_ stored: StoredKey) throws -> [UInt8] {
        guard let ratchet else {
            return try read { db in
                guard try Self.ratchetRow(db) == nil else { throw VaultError.invalidArgument("\(path) is ratcheted but no destruction root is configured") }
                return stored.sealedPrivate
            }
        }
        let row: RatchetRow
        if let known = ratchet.current() {
            row = known
        } else {
            guard let read = try read({ db in try Self.ratchetRow(db) }) else { return stored.sealedPrivate }
            ratchet.setCurrent(read)
            row = read
        }
        let table = try ratchet.table(row, kind: kind, path: path)
        return try ratchet.unwrap(stored.sealedPrivate, keyId: stored.keyId, table: table, buckets: row.buckets, path: path)
    }

    /// The ratchet migration: a fresh table sealed under `generation`, every row wrapped, in one transaction.
    /// Nothing if done already.
    func migrateToRatchet(generation: UInt64) throws {
        guard let ratchet, let root = ratchet.root else { throw VaultError.invalidArgument("no destruction root for \(path)") }
        try write { db in
            guard try Self.ratchetRow(db) == nil else { return }
            let buckets = defaultBuckets
            let table = try SecretBytes.random(count: buckets * 32)
            let update = try db.makeStatement(sql: "UPDATE keys SET sealed_private = ?, bucket = ? WHERE key_id = ?")
            for row in try Row.fetchAll(db, sql: "SELECT key_id, sealed_private FROM keys") {
                let keyId = Array(try row.decode(forColumn: "key_id") as Data)
                let (wrapped, bucket) = try ratchet.wrap(Array(try row.decode(forColumn: "sealed_private") as Data), keyId: keyId, table: table, buckets: buckets)
                try update.execute(arguments: [Data(wrapped), bucket, Data(keyId)])
            }
            let sealed = try root.seal(table, generation: generation,
                                       aad: KeystoreRatchet.tableAAD(vaultId: ratchet.vaultId, kind: kind, generation: generation, buckets: buckets))
            try db.execute(sql: "INSERT INTO ratchet (id, generation, buckets, sealed_table) VALUES (1, ?, ?, ?)",
                           arguments: [Int64(generation), buckets, Data(sealed)])
            ratchet.remember(generation: generation, table: table)
            ratchet.setCurrent(RatchetRow(generation: generation, buckets: buckets, sealedTable: sealed))
        }
    }

    /// One destruction step, in one transaction: deletes `ids`, gives every bucket that held one a fresh key and
    /// rewraps its survivors, and seals the new table under `next` (which the root must hold). With no ids it
    /// only reseals the table (a generation change of the other database). Nothing if already at `next`.
    func rotate(to next: UInt64, destroying ids: [[UInt8]]) throws {
        guard let ratchet, let root = ratchet.root else { throw VaultError.invalidArgument("no destruction root for \(path)") }
        try write { db in
            guard let row = try Self.ratchetRow(db) else { throw VaultError.invalidArgument("\(path) has not been ratcheted") }
            if row.generation == next { return }
            let old = try ratchet.table(row, kind: kind, path: path)
            let table = SecretBytes(copying: old.withUnsafeBytes { Array($0) })
            let affected = Set(ids.map { KeystoreRatchet.bucket(of: $0, buckets: row.buckets) })
            if !affected.isEmpty {
                for id in ids { try db.execute(sql: "DELETE FROM keys WHERE key_id = ?", arguments: [Data(id)]) }
                for b in affected {
                    let fresh = try SecretBytes.random(count: 32)
                    table.withUnsafeMutableBytes { t in fresh.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: t[(b * 32)..<(b * 32 + 32)]).copyMemory(from: $0) } }
                }
                let update = try db.makeStatement(sql: "UPDATE keys SET sealed_private = ? WHERE key_id = ?")
                let select = try db.makeStatement(sql: "SELECT key_id, sealed_private FROM keys WHERE bucket = ?")
                for b in affected.sorted() {
                    for r in try Row.fetchAll(select, arguments: [b]) {
                        let keyId = Array(try r.decode(forColumn: "key_id") as Data)
                        let sealed = try ratchet.unwrap(Array(try r.decode(forColumn: "sealed_private") as Data), keyId: keyId, table: old, buckets: row.buckets, path: path)
                        let (wrapped, _) = try ratchet.wrap(sealed, keyId: keyId, table: table, buckets: row.buckets)
                        try update.execute(arguments: [Data(wrapped), Data(keyId)])
                    }
                }
            }
            let sealed = try root.seal(table, generation: next,
                                       aad: KeystoreRatchet.tableAAD(vaultId: ratchet.vaultId, kind: kind, generation: next, buckets: row.buckets))
            try db.execute(sql: "UPDATE ratchet SET generation = ?, sealed_table = ? WHERE id = 1", arguments: [Int64(next), Data(sealed)])
            ratchet.remember(generation: next, table: table)
            ratchet.setCurrent(RatchetRow(generation: next, buckets: row.buckets, sealedTable: sealed))
        }
    }

    /// In-memory images (snapshots): every row rewrapped under a fresh table, stored in plaintext (generation 0)
    /// for a snapshot payload, or sealed under `generation` of `root` for a keystore about to replace the live one.
    func rekeyImage(sealUnder target: (root: DestructionRoot, generation: UInt64)?, vaultId: [UInt8]) throws {
        do { try rekeyImageRows(sealUnder: target, vaultId: vaultId) } catch let e as RowDecodingError {
            throw VaultError.corruptBundle(path: path, reason: "a key row cannot be read: \(e)")
        }
    }

    private func rekeyImageRows(sealUnder target: (root: DestructionRoot, generation: UInt64)?, vaultId: [UInt8]) throws {
        try write { db in
            if try !db.columns(in: "keys").contains(where: { $0.name == "bucket" }) { try db.execute(sql: Self.ratchetSchema) }
            let current = try Self.ratchetRow(db)
            let oldTable = try current.map { try ratchet!.table($0, kind: kind, path: path) }
            let buckets = defaultBuckets
            let table = try SecretBytes.random(count: buckets * 32)
            let fresh = KeystoreRatchet(root: nil, vaultId: vaultId)
            let update = try db.makeStatement(sql: "UPDATE keys SET sealed_private = ?, bucket = ? WHERE key_id = ?")
            for r in try Row.fetchAll(db, sql: "SELECT key_id, sealed_private FROM keys") {
                let keyId = Array(try r.decode(forColumn: "key_id") as Data), stored = Array(try r.decode(forColumn: "sealed_private") as Data)
                let sealed = try oldTable.map { try ratchet!.unwrap(stored, keyId: keyId, table: $0, buckets: current!.buckets, path: path) } ?? stored
                let (wrapped, bucket) = try fresh.wrap(sealed, keyId: keyId, table: table, buckets: buckets)
                try update.execute(arguments: [Data(wrapped), bucket, Data(keyId)])
            }
            let generation: UInt64, sealedTable: [UInt8]
            if let target {
                generation = target.generation
                sealedTable = try target.root.seal(table, generation: generation,
                                                   aad: KeystoreRatchet.tableAAD(vaultId: vaultId, kind: kind, generation: generation, buckets: buckets))
            } else {
                generation = KeystoreRatchet.plaintextGeneration
                sealedTable = table.withUnsafeBytes { Array($0) }
            }
            try db.execute(sql: "INSERT INTO ratchet (id, generation, buckets, sealed_table) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET generation = excluded.generation, buckets = excluded.buckets, sealed_table = excluded.sealed_table",
                           arguments: [Int64(generation), buckets, Data(sealedTable)])
            ratchet = KeystoreRatchet(root: target?.root, vaultId: vaultId)
            ratchet?.remember(generation: generation, table: table)
            ratchet?.setCurrent(RatchetRow(generation: generation, buckets: buckets, sealedTable: sealedTable))
        }
    }
}
