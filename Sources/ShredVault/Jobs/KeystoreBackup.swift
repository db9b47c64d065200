#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import VaultCrypto

public struct KeystoreBackupReport: Sendable, Codable {
    public var path: String
    public var takenAt: String
    public var epochStart: String
    /// 00:00 UTC of this day the snapshot becomes permanently unreadable (its epoch key is destroyed).
    public var unreadableFrom: String
    public var bytes: UInt64
    public var keys: Int
}

public struct KeystoreRestoreReport: Sendable, Codable {
    public var path: String
    public var takenAt: String
    public var restoredKeys: Int
    /// Keys in the snapshot that the erasure ledger says were destroyed after it was taken: purged again.
    public var purgedByLedger: Int
    /// Day keys of ended days and user keys of deleted users found in the snapshot: purged.
    public var purgedByPolicy: Int
    /// Keys of the current keystore that the snapshot predates (e.g. created after it), kept.
    public var keptFromCurrent = 0
    public var sweep: SweepReport?
}

extension Vault {
    /// Seals a consistent snapshot of the keystore to the current backup-epoch key (G3). Needs no private key.
    public func backupKeystore(to output: String, now: Int64) throws -> KeystoreBackupReport {
        try backupKeystore(to: output, now: now, recordAs: nil)
    }

    /// `recordAs`: the location the catalog's `backups` table records (an `s3://` URL the snapshot is uploaded to).
    func backupKeystore(to output: String, now: Int64, recordAs: String?) throws -> KeystoreBackupReport {
        let today = CivilDay(unixSeconds: now)
        _ = try sweep(now: now)
        // A snapshot to this path that an interrupted run left half-written (sealed, but a leftover all the same).
        _ = try Self.removeInterruptedWrites(of: output)
        let epochStart = policy.epochStart(today)
        let epochKey = try keyring.keyCreatingIfNeeded(role: .epoch, subject: epochStart.iso, master: archiveKey, vaultId: vaultId, now: now)
        // The snapshot is built in memory (sqlite3_serialize) and sealed as it is written: no plaintext copy of the
        // keystore is ever a file a crash could leave behind.
        let (image, keys) = try keystore.snapshotImage(vaultId: vaultId)
        let (header, k) = try KeystoreSnapshotHeader.make(vaultId: vaultId, takenAt: now, epochStart: epochStart, epochKey: epochKey,
                                                          backupDays: policy.backupDays)
        let bytes = try SealedFile.write(contents: image, header: header.encoded(), key: k, to: output)
        let absolute = recordAs ?? (output.hasPrefix("/") ? output : FileManager.default.currentDirectoryPath + "/" + output)
        try catalog.write { db in
            try db.execute(sql: "INSERT INTO backups (kind, path, taken_at, epoch_start, epoch_key_id) VALUES ('keystore', ?, ?, ?, ?)",
                           arguments: [absolute, now, epochStart.daysSinceEpoch, Data(epochKey.keyId)])
            try Catalog.audit(db, at: now, action: "keystore-backup", user: nil, detail: ["path": absolute, "epoch": epochStart.iso])
        }
        return KeystoreBackupReport(path: output, takenAt: Timestamp.format(now), epochStart: epochStart.iso,
                                    unreadableFrom: policy.epochKeyDestructionDay(epochStart: epochStart).iso, bytes: bytes, keys: keys)
    }

    /// Decrypts a keystore snapshot into an in-memory keystore, then replays the erasure ledger (catalog ∪
    /// keyring) and the policy (ended days, deleted users) on it, so it holds no destroyed key. Nothing is written.
    func decryptSnapshot(_ path: String, restoreKey: P256PrivateKey, now: Int64) throws -> (Keystore, KeystoreRestoreReport) {
        guard let st = try Posix.status(path), st.kind == .regular else { throw VaultError.notFound(path: path, what: "keystore snapshot") }
        let file = try FileDescriptor(open: path, flags: O_RDONLY)
        let headerBytes = try file.read(upTo: KeystoreSnapshotHeader.length)
        let header = try KeystoreSnapshotHeader.decode(headerBytes, path: path)
        guard header.vaultId == vaultId else {
            throw VaultError.bundleMismatch(path: path, reason: "it is a snapshot of vault \(Hex.encode(header.vaultId)), not of this vault")
        }
        let ledger = try catalog.erasedKeyIds().union(try keyring.erasedKeyIds())
        guard let epochKey = try keyring.key(id: header.epochKeyId) else {
            let taken = CivilDay(unixSeconds: header.takenAt).iso
            if ledger.contains(Data(header.epochKeyId)) || policy.epochKeyDestructionDay(epochStart: header.epochStart) <= CivilDay(unixSeconds: now) {
                throw VaultError.snapshotPastWindow(path: path, takenDay: taken, days: header.backupDays)
            }
            throw VaultError.bundleMismatch(path: path, reason: "its epoch key is not in this vault's keyring")
        }
        let epochPrivate = try keyring.privateKey(epochKey, restoreKey: restoreKey, vaultId: vaultId)
        let k = try header.openKey(with: epochPrivate, path: path)
        let image = try SealedFile.decrypt(input: file, header: headerBytes, key: k, limit: Int(st.size))
        var report = KeystoreRestoreReport(path: path, takenAt: Timestamp.format(header.takenAt), restoredKeys: 0, purgedByLedger: 0, purgedByPolicy: 0)
        let restored: Keystore
        do {
            restored = try Keystore(image: image, describedAs: path)
            // The snapshot carries its bucket table in plaintext inside the sealed payload (or is older than the
            // ratchet): it opens with no root.
            restored.ratchet = KeystoreRatchet(root: nil, vaultId: vaultId)
            report.purgedByLedger = try restored.deleteKeys(ids: ledger)
            let today = CivilDay(unixSeconds: now)
            var stale = Set(try restored.dayKeys(endedBefore: today).map { Data($0.keyId) })
            let tombstoned = try catalog.read { db in try String.fetchSet(db, sql: "SELECT user_id FROM tombstones") }
            stale.formUnion(try restored.keys(role: .user).filter { tombstoned.contains($0.subject) }.map { Data($0.keyId) })
            report.purgedByPolicy = try restored.deleteKeys(ids: stale)
            report.restoredKeys = try restored.count().values.reduce(0, +)
        } catch {
            // Any failure to read the decrypted file as a keystore (SQLite errors, and GRDB's row decoding errors,
            // which are not DatabaseErrors) means the snapshot is not a keystore; its decrypted copy goes.
            if let e = error as? VaultError { if case .database = e {} else { throw e } }
            throw VaultError.corruptBundle(path: path, reason: "the decrypted snapshot is not a keystore")
        }
        return (restored, report)
    }

    /// Restores the keystore from a snapshot (needs the restore key): the snapshot's keys, after replaying the erasure
    /// ledger on them, merged with every key of the current keystore (if it is readable) that the snapshot lacks.
    /// Refuses snapshots of another vault, tampered or truncated ones, and those past the backup window.
    /// The vault object must not be used afterwards (its keystore handle is closed); open it again.
    public func restoreKeystore(from path: String, restoreKey: P256PrivateKey, now: Int64) throws -> KeystoreRestoreReport {
        _ = try sweep(now: now)
        let directory = Posix.directoryName(keystore.path)
        let (restored, decrypted) = try decryptSnapshot(path, restoreKey: restoreKey, now: now)
        defer { restored.wipeImage() }
        var report = decrypted
        // Merge, never lose: keys the current keystore holds that the snapshot predates stay (a snapshot only
        // adds back keys that were lost, minus everything the ledger says was destroyed).
        if let current = try? keystore.allKeyIds(), !current.isEmpty {
            report.keptFromCurrent = try restored.importMissing(from: keystore)
            report.restoredKeys = try restored.count().values.reduce(0, +)
        }
        // The restored keystore gets a fresh bucket table sealed under a new root generation; the keyring moves to
        // it and the old generation is destroyed after the rename, so the replaced keystore (and every copy of it)
        // opens nothing afterwards.
        guard let root = destructionRoot, let current = try keyring.ratchetGeneration() else {
            throw VaultError.invalidArgument("the vault has no destruction root yet; run `shredvault sweep` first")
        }
        let next = max(current, try root.generations().max() ?? current) + 1
        try root.create(generation: next)
        try restored.rekeyImage(sealUnder: (root, next), vaultId: vaultId)
        // Only now does a file appear: the replayed, merged keystore, written compactly beside the live one and
        // renamed over it. A crash before the rename leaves a `.restore-*` file the next job removes.
        let temporary = directory + "/.restore-" + Hex.encode(try SecureRandom.bytes(count: 6)) + ".db"
        defer { _ = unlink(temporary) }
        try restored.writeImage(to: temporary)
        let written = try FileDescriptor(open: temporary, flags: O_RDONLY)
        try written.sync()
        try written.close()
        try catalog.write { db in
            try Catalog.audit(db, at: now, action: "keystore-restore", user: nil, detail: [
                "path": path, "takenAt": report.takenAt, "purgedByLedger": String(report.purgedByLedger),
            ])
        }
        try keystore.close()
        guard rename(temporary, keystore.path) == 0 else { throw VaultError.io(operation: "rename", path: keystore.path, errno: errno) }
        try Posix.syncDirectory(directory)
        try keyring.rotate(to: next, destroying: [])
        for g in try root.generations() where g != next { try root.destroy(generation: g) }
        return report
    }
}
