import Foundation
import GRDB
import VaultCrypto

/// The keyring's binding to exactly one vault (vault-format.md §5.1). A keyring and the destruction root beside it
/// serve one vault: a destruction in a second vault sharing them (a `cp -a` drill, a recover beside the original)
/// would retire root generations the first still needs, and a vault given an empty, foreign or replaced keyring would
/// silently lose its erasure-ledger mirror and its backup-epoch keys.
public struct KeyringRebuildReport: Sendable, Codable {
    public var keyringPath: String
    public var ledgerEntries: Int
    public var holds: Int
    public var deletionRequests: Int
    /// Keystore snapshots recorded in the catalog, unreadable from now on (their epoch keys were in the lost keyring).
    public var unreadableSnapshots: Int
}

extension Vault {
    /// Catalog `meta` key holding the id of the keyring the vault is bound to (§5.1).
    static let keyringIdMeta = "keyringId"

    /// Checks the keyring file before SQLite opens it: a missing one is named with the way back; an empty file or one
    /// that is not a SQLite database (a replaced keyring) is refused, since SQLite would make it a new, empty keyring.
    static func checkKeyringFile(_ path: String, allowMissing: Bool = false) throws {
        guard let st = try Posix.status(path) else {
            if allowMissing { return }
            throw VaultError.keyringMissing(path: path)
        }
        let fix = "if this vault's keyring was moved, put it back at that path; if it is lost, remove this file and run `shredvault keyring rebuild`"
        guard st.kind == .regular else { throw VaultError.keyringMismatch(path: path, reason: "it is not a regular file; \(fix)") }
        let header = try Posix.readPrefix(path, count: 16)
        guard !header.isEmpty else { throw VaultError.keyringMismatch(path: path, reason: "it is empty (replaced?), not this vault's keyring; \(fix)") }
        guard header == Array("SQLite format 3\u{0}".utf8) else {
            throw VaultError.keyringMismatch(path: path, reason: "it is not a keyring (not a SQLite database; replaced?); \(fix)")
        }
    }

    /// Checks that the keyring is bound to this vault — same vault id, same drill or production kind, the keyring id the
    /// catalog records, and this directory or one that no longer holds the vault — and, for a job that changes the
    /// vault, (re)binds it: a keyring whose vault moved or was recovered is taken over, one made before bindings is
    /// bound. With `adopt` (a drill's or a recovery's copies) the keyring is rebound as a new keyring of this vault.
    func bindKeyring(adopt: Bool, recovering: Bool) throws {
        let me = Posix.realPath(root) ?? (root.hasPrefix("/") ? root : FileManager.default.currentDirectoryPath + "/" + root)
        let bound = try keyring.binding()
        let recorded = try catalog.meta(Self.keyringIdMeta)
        if !adopt, let b = bound {
            if let id = b.vaultId, id != config.vaultId {
                throw VaultError.keyringMismatch(path: keyring.path, reason: """
                    it is the keyring of vault \(id), not of this vault \(config.vaultId); point keyringPath in \(Self.configPath(root)) \
                    back at this vault's keyring, or put that keyring back at this path
                    """)
            }
            if b.drill != config.isDrill {
                throw VaultError.keyringMismatch(path: keyring.path, reason: b.drill
                    ? "it is the keyring of a drill copy (\(b.vaultPath)), not of this production vault; put this vault's own keyring back at this path"
                    : "it is the keyring of the production vault \(b.vaultPath), which this drill vault must not share; make drills with `shredvault drill --from \(b.vaultPath) --to DIR`")
            }
            if b.vaultPath != me, Posix.realPath(b.vaultPath) != me, Self.isLiveVault(b.vaultPath, vaultId: config.vaultId) {
                throw VaultError.keyringMismatch(path: keyring.path, reason: """
                    it and its destruction root belong to the vault at \(b.vaultPath), and \(root) is another copy of that vault (a cp -a, \
                    or a recover beside it): its jobs would make \(b.vaultPath) unreadable; make a drill copy with `shredvault drill --from \
                    \(b.vaultPath) --to DIR` (or `recover --drill --keyring COPY --root-file COPY`) instead, or, if \(b.vaultPath) is gone \
                    for good, move it away and run the job again
                    """)
            }
            if !recovering, let recorded, let id = b.keyringId, recorded != id {
                throw VaultError.keyringMismatch(path: keyring.path, reason: """
                    it is not the keyring this vault is bound to (keyring \(id), the catalog records keyring \(recorded)): it was \
                    replaced; put this vault's keyring back at this path (if it is lost, remove this file and run `shredvault keyring rebuild`)
                    """)
            }
        }
        if readOnly { return }
        let fresh = Hex.encode(try SecureRandom.bytes(count: 16))
        let keyringId = (adopt ? nil : bound?.keyringId) ?? fresh
        let wanted = KeyringBinding(vaultPath: me, vaultId: config.vaultId, keyringId: keyringId, drill: config.isDrill)
        // Keyring first: a crash between the two writes leaves a catalog without the id, which the next job records.
        if wanted != bound { try keyring.bind(wanted) }
        if recorded != keyringId { try catalog.write { db in try Catalog.setMeta(db, Self.keyringIdMeta, keyringId) } }
    }

    /// Whether `path` holds a vault with this id (another live vault: the owner of a keyring a copy would share).
    static func isLiveVault(_ path: String, vaultId: String) -> Bool {
        guard let text = try? Posix.readTextFile(configPath(path)),
              let other = try? VaultConfig.parse(text, path: configPath(path)) else { return false }
        return other.vaultId == vaultId
    }

    /// `keyring rebuild`: makes a new keyring at the configured path for a vault whose keyring was lost, from what the
    /// catalog knows — the erasure ledger, every hold, deletion request and receipt, and the latest job time — and binds it. The
    /// backup-epoch keys cannot come back: keystore snapshots taken so far stay unreadable (which G3 promises anyway
    /// within `backupDays`). The vault must be opened with `createMissingKeyring`.
    public func rebuildKeyring(now: Int64) throws -> KeyringRebuildReport {
        guard keyringCreated else {
            throw VaultError.targetExists(path: keyring.path)
        }
        try admitClock(now: now)
        let (ledger, holds, requests, snapshots) = try catalog.read { db in
            (try Row.fetchAll(db, sql: "SELECT key_id, role, subject, recorded_at, reason FROM erasures"),
             try HoldRecord.fetchAll(db, sql: "SELECT * FROM holds"),
             try DeletionRequestRecord.fetchAll(db, sql: "SELECT * FROM deletion_requests"),
             try Int.fetchOne(db, sql: "SELECT count(*) FROM backups WHERE kind = 'keystore'") ?? 0)
        }
        try keyring.write { db in
            for e in ledger {
                try db.execute(sql: "INSERT INTO erasures (key_id, role, subject, recorded_at, reason) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                               arguments: [e["key_id"] as Data, e["role"] as String, e["subject"] as String, e["recorded_at"] as Int64, e["reason"] as String])
            }
        }
        try keyring.mirrorMissingHolds(holds)
        for r in requests { try keyring.mirrorDeletionRequest(r) }
        // The signed deletion receipts (§6.3), so a later reindex or recover still brings them back.
        try keyring.mirrorReceipts(try catalog.read { db in try ReceiptRecord.fetchAll(db, sql: "SELECT * FROM receipts") })
        if !config.isDrill, let latest = try latestJobTime() { try keyring.setLatestJobTime(latest) }
        // The new keyring has no ratchet table yet: converging wraps it under the root's current generation (§3.7).
        try convergeRoot()
        try catalog.write { db in
            try Catalog.audit(db, at: now, action: "keyring-rebuild", user: nil, detail: [
                "path": keyring.path, "ledger": String(ledger.count), "unreadableSnapshots": String(snapshots),
            ])
        }
        return KeyringRebuildReport(keyringPath: keyring.path, ledgerEntries: ledger.count, holds: holds.count,
                                    deletionRequests: requests.count, unreadableSnapshots: snapshots)
    }
}
