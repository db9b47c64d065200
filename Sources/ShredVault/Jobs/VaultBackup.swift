#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import VaultCrypto

public struct VaultBackupReport: Sendable, Codable {
    public var directory: String
    public var takenAt: String
    public var liveBundles = 0
    public var copiedBundles = 0
    public var copiedBytes: Int64 = 0
    public var presentBundles = 0
    /// Sidecar objects uploaded (new or changed); a backup to S3 only (a directory backup rewrites every sidecar).
    public var uploadedSidecars = 0
    /// Bundles the backup held that the vault no longer has (swept, deleted): removed from it with their sidecars.
    public var removedBundles = 0
    public var keystoreSnapshot: String
    public var unreadableFrom: String
}

/// `backup.json` in a backup directory.
struct BackupManifest: Codable {
    static let formatName = "shredvault-backup/v1"
    var format: String
    var vaultId: String
    var takenAt: Int64
    var keystoreSnapshot: String
    var liveBundles: Int
    /// A backup in object storage (§5.4): the catalog object's name (a directory's is always `catalog.db`), and the
    /// SHA-256 (hex) of that catalog and of the keystore snapshot, which `recover` checks its downloads against.
    var catalog: String? = nil
    var catalogSHA256: String? = nil
    var keystoreSHA256: String? = nil

    /// Reads `DIR/backup.json`; a file that is not one is bad data (naming the field), never an internal error.
    static func read(_ path: String) throws -> BackupManifest {
        try decode(Array(try Posix.readTextFile(path).utf8), path: path)
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> BackupManifest {
        do { return try JSONDecoder().decode(BackupManifest.self, from: Data(bytes)) } catch let error as DecodingError {
            let (field, reason) = VaultConfig.describe(error, document: "a ShredVault backup manifest")
            throw VaultError.malformedInput(path: path, line: 1, reason: (field.isEmpty ? "" : "field \(field) ") + reason)
        }
    }
}

public struct RecoverReport: Sendable, Codable {
    public var vault: String
    /// The recovered vault is a drill vault (§6.4).
    public var drill = false
    public var from: String
    public var restoredBundles = 0
    public var missingBundles: [String] = []
    public var keystore: KeystoreRestoreReport?
    /// Bundles whose keys the erasure ledger says were destroyed after the backup: shredded again.
    public var shreddedByLedger = 0
    /// Deletion receipts issued after the backup, brought back from the keyring's mirror (§6.3).
    public var restoredReceipts = 0
    /// A vault whose bundles are in a bucket (§5.4): bundle and sidecar objects found there as the backup has them
    /// (kept), and ones uploaded from the backup (missing or different).
    public var keptObjects = 0
    public var uploadedObjects = 0
    public var check: CheckReport?
}

public struct ReindexReport: Sendable, Codable {
    public var indexedBundles = 0
    public var recoveredHolds = 0
    /// Deleted users whose tombstones came back from the keyring's erasure ledger.
    public var recoveredTombstones = 0
    /// Deletion requests that came back from the keyring's mirror (blocked ones run when their holds end).
    public var recoveredDeletionRequests = 0
    /// Signed deletion receipts that came back from the keyring's mirror (§6.3).
    public var recoveredReceipts = 0
    public var skipped: [String] = []
    public var sweep: SweepReport?
}

extension Vault {
    /// Copies live bundles (only new ones, each verified by SHA-256 after copying) and their DEK sidecars, a consistent
    /// catalog snapshot, a keystore snapshot sealed to the current epoch key, and the config and archive key into `directory`.
    /// A directory that is not new, empty or a backup of this vault is refused before anything changes (`checkBackupTarget`).
    /// A `directory` of the form `s3://BUCKET[/PREFIX]` is a bucket prefix (`backupToS3`).
    public func backup(to directory: String, now: Int64, progress: ProgressHandler? = nil) throws -> VaultBackupReport {
        if directory.hasPrefix("s3://") { return try backupToS3(directory, now: now, progress: progress) }
        let dir = directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        try checkBackupTarget(dir)
        _ = try sweep(now: now)
        try Posix.makeDirectories(dir, mode: 0o700)
        let manifestPath = dir + "/backup.json"
        if Posix.exists(manifestPath) {
            let old = try BackupManifest.read(manifestPath)
            guard old.vaultId == config.vaultId else {
                throw VaultError.bundleMismatch(path: dir, reason: "it holds a backup of vault \(old.vaultId), not of this vault")
            }
        }
        // What an interrupted backup into this directory left (partial copies, a catalog copy, a partial snapshot).
        _ = try Self.removeTemporaryFiles(inBackup: dir)
        let stamp = Timestamp.format(now).replacingOccurrences(of: ":", with: "").replacingOccurrences(of: "-", with: "")
        // A rerun in the same second (an interrupted backup, a retry) gets its own snapshot name, never one a snapshot of
        // this vault had before (present, or recorded in the catalog and since deleted).
        let absoluteDir = dir.hasPrefix("/") ? dir : FileManager.default.currentDirectoryPath + "/" + dir
        let recorded = try catalog.read { db in try String.fetchSet(db, sql: "SELECT path FROM backups") }
        var snapshotName = "keystore-\(stamp).svks"
        var n = 2
        while Posix.exists(dir + "/" + snapshotName) || recorded.contains(absoluteDir + "/" + snapshotName) {
            snapshotName = "keystore-\(stamp)-\(n).svks"
            n += 1
        }
        var report = VaultBackupReport(directory: dir, takenAt: Timestamp.format(now), keystoreSnapshot: snapshotName, unreadableFrom: "")
        let live = try catalog.read { db in try BundleRecord.fetchAll(db, sql: "SELECT * FROM bundles WHERE state = 'live' ORDER BY expiry_day, id") }
        report.liveBundles = live.count
        var copiedBytes: Int64 = 0
        for (i, b) in live.enumerated() {
            progress?(i, live.count, b.userId, copiedBytes)
            copiedBytes += b.size
            let destination = dir + "/" + b.location
            try Posix.makeDirectories(Posix.directoryName(destination), mode: 0o700)
            if let st = try Posix.status(destination), st.size == b.size {
                report.presentBundles += 1
            } else {
                if Posix.exists(destination) { try Posix.unlinkFile(destination) }
                // Bundles in a bucket (§6.5): the object is fetched to a private file and checked against the catalog
                // (size, SHA-256) before it is copied; the staging copy is removed after.
                let sourcePath = store.isLocal ? absolute(b.location) : try fetchVerifiedBundle(b)
                defer { discardFetched(sourcePath) }
                try copyFile(sourcePath, to: destination)
                guard let expected = b.sha256, try fileSHA256(destination) == Array(expected) else {
                    try? Posix.unlinkFile(destination)
                    throw VaultError.bundleMismatch(path: absolute(b.location), reason: "its copy's SHA-256 differs from the catalog; run `shredvault check`")
                }
                report.copiedBundles += 1
                report.copiedBytes += b.size
            }
            let sidecar = DEKSidecar.location(forBundle: b.location)
            if let bytes = try sidecarBytesForBackup(b.location) {
                try Posix.writeFileAtomically(dir + "/" + sidecar, bytes, mode: 0o600)
            }
        }
        progress?(live.count, live.count, "", copiedBytes)
        let ks = try backupKeystore(to: dir + "/" + report.keystoreSnapshot, now: now)
        report.unreadableFrom = ks.unreadableFrom
        let catalogTemp = dir + "/.catalog.db.partial-" + Hex.encode(try SecureRandom.bytes(count: 6))
        defer { _ = unlink(catalogTemp) }
        try catalog.snapshot(to: catalogTemp)
        let catalogFile = try FileDescriptor(open: catalogTemp, flags: O_RDONLY)
        try catalogFile.sync()
        guard rename(catalogTemp, dir + "/catalog.db") == 0 else { throw VaultError.io(operation: "rename", path: dir + "/catalog.db", errno: errno) }
        try Posix.writeFileAtomically(dir + "/config", try readAll(Vault.configPath(root)), mode: 0o644)
        try Posix.writeFileAtomically(dir + "/master.pub", try readAll(Vault.archiveKeyPath(root)), mode: 0o644)
        if Posix.exists(Vault.trustPath(root)) {
            try Posix.writeFileAtomically(Vault.trustPath(dir), try readAll(Vault.trustPath(root)), mode: 0o644)
        }
        let manifest = BackupManifest(format: BackupManifest.formatName, vaultId: config.vaultId, takenAt: now,
                                      keystoreSnapshot: report.keystoreSnapshot, liveBundles: live.count)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try Posix.writeFileAtomically(manifestPath, Array(try encoder.encode(manifest)) + [0x0a], mode: 0o644)
        let absolute = dir.hasPrefix("/") ? dir : FileManager.default.currentDirectoryPath + "/" + dir
        try catalog.write { db in
            try Catalog.audit(db, at: now, action: "backup", user: nil, detail: [
                "path": absolute, "bundles": String(live.count), "copied": String(report.copiedBundles),
            ])
        }
        return report
    }

    /// A live bundle of a vault whose bundles are in object storage (§6.5), streamed from the bucket to a private file
    /// under `staging/read/` and checked against the catalog (size, then SHA-256) before a backup uses it. The caller
    /// passes the path to `discardFetched`. A missing or differing object is bad data in the vault (exit 65, as a
    /// damaged local bundle is): the backup stops before it writes its manifest; `shredvault check --read-data` says more.
    func fetchVerifiedBundle(_ b: BundleRecord) throws -> String {
        let what = (store.url ?? root) + "/" + b.location.dropFirst("bundles/".count)
        guard let expected = b.sha256 else {
            throw VaultError.bundleMismatch(path: what, reason: "the catalog records no SHA-256 for it; run `shredvault check`")
        }
        guard let path = try fetchForReading(b.location) else {
            throw VaultError.bundleMismatch(path: what, reason: "the bucket has no such object; run `shredvault check`")
        }
        do {
            let size = try Posix.status(path)?.size ?? -1
            guard size == b.size else {
                throw VaultError.bundleMismatch(path: what, reason: "the object has \(size) bytes, the catalog records \(b.size); run `shredvault check`")
            }
            guard try fileSHA256(path) == Array(expected) else {
                throw VaultError.bundleMismatch(path: what, reason: "its SHA-256 differs from the catalog; run `shredvault check`")
            }
            return path
        } catch {
            discardFetched(path)
            throw error
        }
    }

    /// A live bundle's DEK sidecar bytes for a backup: the vault's file, or the object (fetched through `staging/read/`).
    func sidecarBytesForBackup(_ bundleLocation: String) throws -> [UInt8]? {
        let sidecar = DEKSidecar.location(forBundle: bundleLocation)
        if store.isLocal { return Posix.exists(absolute(sidecar)) ? try readAll(absolute(sidecar)) : nil }
        return try readSidecarBytes(bundleLocation: bundleLocation)
    }

    /// Removes temporary files an interrupted backup left in a backup directory (top level and bundle tree).
    static func removeTemporaryFiles(inBackup dir: String) throws -> [String] {
        var found: [String] = []
        func walk(_ path: String, depth: Int) throws {
            for name in try Posix.listDirectory(path) {
                let child = path + "/" + name
                if isTemporaryName(name) { found.append(child); continue }
                if depth < 4, let st = try Posix.status(child), st.kind == .directory, depth == 0 ? name == "bundles" : true {
                    try walk(child, depth: depth + 1)
                }
            }
        }
        guard Posix.exists(dir) else { return [] }
        try walk(dir, depth: 0)
        return try removeSyncingParents(found)
    }

    /// Written first into a vault being recovered and removed last: `recover` starts such a directory over, and no
    /// other job opens it.
    static let recoveryMarkerName = ".recover-incomplete"

    /// Rebuilds a working vault at `root` from a backup directory, the restore key and the keyring (which is not in
    /// the backup and holds the erasure-ledger mirror, so keys destroyed after the backup stay destroyed), then checks it.
    /// - Parameters:
    ///   - drill: make the recovered vault a drill vault (§6.4); it needs copies of the keyring and root
    ///     (`keyringPath`, `rootPath`), never the production vault's own. A drill's backup always recovers as a drill.
    ///   - simulatedClock: the source of a simulated `now` (`--now`), which only a drill takes.
    ///   - acceptClock: the operator confirmed a clock the guard would refuse (audited).
    public static func recover(from directory: String, to root: String, restoreKeyPath: String, keyringPath: String?,
                               rootPath: String? = nil, drill: Bool = false, simulatedClock: String? = nil, acceptClock: Bool = false,
                               now: Int64) throws -> RecoverReport {
        func run(_ source: BackupSource) throws -> RecoverReport {
            try recover(source, to: root, restoreKeyPath: restoreKeyPath, keyringPath: keyringPath, rootPath: rootPath, drill: drill,
                        simulatedClock: simulatedClock, acceptClock: acceptClock, now: now)
        }
        if directory.hasPrefix("s3://") { return try recoverFromS3(directory, recover: run) }
        let dir = directory.count > 1 && directory.hasSuffix("/") ? String(directory.dropLast()) : directory
        guard Posix.exists(dir + "/backup.json") else { throw VaultError.notFound(path: dir + "/backup.json", what: "backup manifest") }
        return try run(BackupSource(description: dir, metadata: dir) { location, _, destination in
            guard Posix.exists(dir + "/" + location) else { return false }
            try Vault.copyFileStatic(dir + "/" + location, to: destination)
            return true
        })
    }

    /// `recover` from a source whose manifest, config, archive key, trust record, catalog and snapshot are local files.
    static func recover(_ source: BackupSource, to root: String, restoreKeyPath: String, keyringPath: String?, rootPath: String?,
                        drill: Bool, simulatedClock: String?, acceptClock: Bool, now: Int64) throws -> RecoverReport {
        let dir = source.metadata
        let manifest = try BackupManifest.read(dir + "/backup.json")
        var config = try VaultConfig.parse(try Posix.readTextFile(dir + "/config"), path: dir + "/config")
        guard manifest.format == BackupManifest.formatName, manifest.vaultId == config.vaultId else {
            throw VaultError.malformedInput(path: dir + "/backup.json", line: 1, reason: "not a ShredVault backup of the vault named in its config")
        }
        for name in [manifest.keystoreSnapshot] + (manifest.catalog.map { [$0] } ?? []) where name.contains("/") || !S3BackupLocation.isBackupObject(name) {
            throw VaultError.malformedInput(path: dir + "/backup.json", line: 1, reason: "it names '\(name)', which no backup writes")
        }
        if drill, let store = config.bundleStore {
            // The recovered drill would keep its bundles in the production bucket: its sweeps and deletions would remove
            // the vault's own objects (§6.5).
            throw VaultError.invalidArgument("recover --drill of a backup of a vault whose bundles are in object storage (\(store)) is not supported: the drill would share the production bucket and could delete its objects; recover without --drill into a new directory on another host, or drill a backup of a local vault")
        }
        // Explicit copies of the keyring and root (a drill beside the live vault) are taken over by the new vault;
        // the ones the backup's config names are taken over only if the vault that owns them is gone.
        let copies = keyringPath != nil && keyringPath != config.keyringPath && rootPath != nil && rootPath != config.root?.path
        if drill {
            guard copies else {
                throw VaultError.invalidArgument("recover --drill needs copies of the keyring and the destruction root (--keyring COPY --root-file COPY), never the production vault's own")
            }
            config.drill = true
        }
        if let simulatedClock, !config.isDrill { throw simulatedClockRefusal(source: simulatedClock) }
        if let keyringPath { config.keyringPath = keyringPath }
        if let rootPath { config.root = .file(rootPath.hasPrefix("/") ? rootPath : FileManager.default.currentDirectoryPath + "/" + rootPath) }
        guard let keyring = config.keyringPath, Posix.exists(keyring) else {
            throw VaultError.notFound(path: config.keyringPath ?? "(none)", what: "keyring (pass --keyring)")
        }
        try checkKeyringFile(keyring)
        if !config.isDrill {
            // The clock guard before anything is written (§6.4): the latest job time is in the keyring (the vault is lost)
            // and no earlier than the backup.
            let ring = try Keystore(path: keyring, kind: .keyring)
            let latest = max(manifest.takenAt, try ring.latestJobTime() ?? manifest.takenAt)
            try ring.close()
            let verdict = ClockGuard(maxJumpDays: config.policy.maxClockJumpDays).judge(now: now, latest: latest)
            if !verdict.isPlausible, !acceptClock {
                throw clockRefusal(verdict, now: now, latest: latest, maxJumpDays: config.policy.maxClockJumpDays)
            }
        }
        let marker = root + "/" + recoveryMarkerName
        let archiveKey = try MasterKey.decodeArchiveKey(try Posix.readTextFile(dir + "/master.pub"), path: dir + "/master.pub")
        let restoreKey = try MasterKey.readRestoreKey(restoreKeyPath)
        guard restoreKey.publicKey == archiveKey else { throw VaultError.wrongRestoreKey }
        if Posix.exists(root), !(try Posix.listDirectory(root)).isEmpty {
            // Only an interrupted recover (its marker is the first thing written) may be started over; a kill while
            // the marker itself was being made leaves nothing but the marker's name.
            let entries = try Posix.listDirectory(root)
            guard Posix.exists(marker) || entries.allSatisfy({ $0.hasPrefix(recoveryMarkerName) }) else {
                throw VaultError.targetExists(path: root)
            }
            for name in entries where name != recoveryMarkerName { try Posix.removeTree(root + "/" + name) }
        }
        var report = RecoverReport(vault: root, from: source.description)
        report.drill = config.isDrill

        try Posix.makeDirectories(root, mode: 0o700)
        if !Posix.exists(marker) {
            // Made in place (O_EXCL) and fsynced with its directory: its existence is what counts, not its contents.
            let file = try FileDescriptor(open: marker, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600)
            try file.write(Array("recovering from \(source.description)\n".utf8))
            try file.sync()
            try file.close()
            try Posix.syncDirectory(root)
        }
        // A vault whose bundles are in a bucket stages them in staging/bundles (as `init --bundle-store` makes it).
        try Posix.makeDirectories(root + "/" + (config.bundleStore == nil ? "bundles" : stagingDirectory + "/bundles"), mode: 0o700)
        try Posix.writeFileAtomically(root + "/master.pub", Array(MasterKey.encodeArchiveKey(archiveKey).utf8), mode: 0o644)
        // A backup in object storage names its catalog (§5.4); one copied from a bucket to a directory recovers too.
        try copyFileStatic(dir + "/" + (manifest.catalog ?? "catalog.db"), to: root + "/catalog.db")
        // The signed trust record comes back with the vault (it is checked against master.pub at every open).
        if Posix.exists(trustPath(dir)) { try copyFileStatic(trustPath(dir), to: trustPath(root)) }
        try writeConfig(config, root: root)
        do {
            let vault = try Vault(root: root, createMissingKeystore: true, recovering: true, adoptKeyring: copies)
            vault.acceptClock = acceptClock
            let live = try vault.catalog.read { db in try BundleRecord.fetchAll(db, sql: "SELECT * FROM bundles WHERE state = 'live'") }
            for b in live {
                try Posix.makeDirectories(Posix.directoryName(vault.absolute(b.location)), mode: 0o700)
                if !vault.store.isLocal {
                    guard try vault.recoverObject(b, from: source, report: &report) else { report.missingBundles.append(b.id); continue }
                    report.restoredBundles += 1
                    continue
                }
                guard try source.fetch(b.location, b, vault.absolute(b.location)) else { report.missingBundles.append(b.id); continue }
                let sidecar = DEKSidecar.location(forBundle: b.location)
                _ = try source.fetch(sidecar, nil, vault.absolute(sidecar))
                report.restoredBundles += 1
            }
            report.keystore = try vault.restoreKeystore(from: dir + "/" + manifest.keystoreSnapshot, restoreKey: restoreKey, now: now)
            try vault.close()
        }
        let vault = try Vault(root: root, recovering: true, adoptKeyring: copies)
        vault.acceptClock = acceptClock
        report.shreddedByLedger = try vault.reconcileWithLedger(now: now)
        // Receipts issued after the backup: the keyring mirrors them (the sweep's converge issues any still missing).
        let receipts = try vault.keyring.mirroredReceipts()
        report.restoredReceipts = try vault.catalog.write { db in try restoreReceipts(db, from: receipts) }
        _ = try vault.sweep(now: now)
        try vault.catalog.write { db in
            try Catalog.audit(db, at: now, action: "recover", user: nil, detail: ["from": source.description, "bundles": String(report.restoredBundles)])
        }
        // Complete: from here on the directory is a vault like any other.
        try Posix.unlinkFile(marker)
        try Posix.syncDirectory(root)
        report.check = try vault.check(now: now, readData: false, restoreKey: nil)
        try vault.close()
        return report
    }

    /// `recover` into a vault whose bundles are in a bucket (the backup's config names it, §5.4): a bundle object present
    /// with the catalog's size (HeadObject) is kept; otherwise the backup's copy is brought to `staging/bundles/`,
    /// checked against the catalog (SHA-256) and uploaded with the store's read-back (§6.5). A sidecar is kept when the
    /// object's bytes are the backup's, else uploaded from the backup. False when neither the bucket nor the backup holds
    /// the bundle.
    func recoverObject(_ b: BundleRecord, from source: BackupSource, report: inout RecoverReport) throws -> Bool {
        if let present = try store.head(location: b.location, prefixLength: 0), present.size == UInt64(b.size) {
            report.keptObjects += 1
        } else {
            let staged = absolute(b.location)
            _ = try Posix.unlinkIfPresent(staged)
            defer { _ = try? Posix.unlinkIfPresent(staged) }
            guard try source.fetch(b.location, b, staged) else { return false }
            let sha = try fileSHA256(staged)
            if let expected = b.sha256, sha != Array(expected) {
                throw VaultError.bundleMismatch(path: source.description + "/" + b.location, reason: "its SHA-256 differs from the one the backed-up catalog records")
            }
            try store.put(location: b.location, from: staged, sha256: sha)
            report.uploadedObjects += 1
        }
        let sidecar = DEKSidecar.location(forBundle: b.location)
        let staged = absolute(sidecar)
        _ = try Posix.unlinkIfPresent(staged)
        defer { _ = try? Posix.unlinkIfPresent(staged) }
        if try source.fetch(sidecar, nil, staged) {
            let bytes = try readAll(staged)
            if try readSidecarBytes(bundleLocation: b.location) == bytes {
                report.keptObjects += 1
            } else {
                try store.put(location: sidecar, from: staged, sha256: try fileSHA256(staged))
                report.uploadedObjects += 1
            }
        }
        return true
    }

    /// After a keystore restore from an older copy: live bundles whose user (or outer) key the ledger records as
    /// destroyed are shredded again, and deleted users get their tombstones back.
    func reconcileWithLedger(now: Int64) throws -> Int {
        let ledger = try keyring.read { db in try Row.fetchAll(db, sql: "SELECT key_id, role, subject, reason FROM erasures") }
        var erased: [Data: (role: String, subject: String, reason: String)] = [:]
        for row in ledger { erased[row["key_id"]] = (row["role"], row["subject"], row["reason"]) }
        let live = try catalog.read { db in try BundleRecord.fetchAll(db, sql: "SELECT * FROM bundles WHERE state = 'live'") }
        var count = 0
        for b in live {
            if let e = erased[b.userKeyId] {
                let request = e.reason.hasPrefix("deletion request ") ? String(e.reason.dropFirst("deletion request ".count)) : "ledger-" + Hex.encode(b.userKeyId)
                try removeBundleFiles([b.location])
                try catalog.write { db in
                    try db.execute(sql: """
                        INSERT INTO deletion_requests (request_id, user_id, received_at, deadline_day, recorded_at, state, completed_at)
                        VALUES (?, ?, ?, ?, ?, 'done', ?) ON CONFLICT DO NOTHING
                        """, arguments: [request, b.userId, now, CivilDay(unixSeconds: now).daysSinceEpoch, now, now])
                    try db.execute(sql: "INSERT INTO tombstones (user_id, deleted_at, request_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                                   arguments: [b.userId, now, request])
                    try db.execute(sql: "UPDATE bundles SET state = 'shredded', sealed_dek = NULL, outer_role = NULL, ended_at = ?, end_reason = ? WHERE id = ?",
                                   arguments: [now, e.reason + " (erasure ledger)", b.id])
                    try Catalog.audit(db, at: now, action: "shred", user: b.userId, detail: ["request": request, "source": "erasure ledger"])
                }
                count += 1
            } else if let outer = b.outerKeyId, let e = erased[outer] {
                try removeBundleFiles([b.location])
                try catalog.write { db in
                    try db.execute(sql: "UPDATE bundles SET state = 'expired', sealed_dek = NULL, outer_role = NULL, ended_at = ?, end_reason = ? WHERE id = ?",
                                   arguments: [now, e.reason + " (erasure ledger)", b.id])
                    try Catalog.audit(db, at: now, action: "expire", user: b.userId, detail: ["bundle": b.id, "source": "erasure ledger"])
                }
                count += 1
            }
        }
        try catalog.checkpoint()
        return count
    }

    /// Rebuilds the bundle index of a vault whose catalog was lost, from the bundle headers and DEK sidecars alone
    /// (restic's rebuild-index). Bundles whose keys no longer exist are skipped: they are unrecoverable anyway.
    public func reindex(now: Int64) throws -> ReindexReport {
        // The rebuilt catalog remembers no job time; the keyring does (§6.4).
        try admitClock(now: now)
        var report = ReindexReport()
        let existing = try catalog.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM bundles") ?? 0 }
        guard existing == 0 else {
            throw VaultError.invalidArgument("the catalog already indexes \(existing) bundles; reindex rebuilds a lost catalog (move catalog.db aside first)")
        }
        // A remote store (§6.5) is listed; each bundle and sidecar is streamed to a private staging copy to be read.
        let stored: [String] = store.isLocal ? try bundleTreeFiles() : Array(try store.list().keys)
        let files = stored.filter { name in
            let base = Posix.baseName(name)
            return base.hasSuffix(".svb") && !base.hasPrefix(".")
        }
        // What the keyring knows (it is never lost with the catalog): the erasure ledger, every hold and every
        // deletion request. A sidecar sealed to a key the ledger names is stale and never trusted.
        let ledger = try keyring.erasureRecords()
        let erased = Set(ledger.map { $0["key_id"] as Data })
        var records: [BundleRecord] = []
        var holds = try keyring.mirroredHolds()
        for location in files.sorted() {
            var fetched: [String] = []
            defer { fetched.forEach(discardFetched) }
            func localCopy(_ location: String) throws -> String? {
                if store.isLocal { return Posix.exists(absolute(location)) ? absolute(location) : nil }
                let path = try fetchForReading(location)
                if let path { fetched.append(path) }
                return path
            }
            do {
                guard let bundlePath = try localCopy(location) else { report.skipped.append("\(location): vanished while listed"); continue }
                let (header, prefix) = try BundleReader.readSignedPrefix(path: bundlePath)
                guard header.vaultId == vaultId else { report.skipped.append("\(location): bundle of another vault"); continue }
                guard location == Vault.bundleLocation(expiry: header.expiryDay, bundleId: header.bundleIdHex) else {
                    report.skipped.append("\(location): not at the path its header implies"); continue
                }
                guard let sidecarPath = try localCopy(DEKSidecar.location(forBundle: location)) else {
                    report.skipped.append("\(location): no DEK sidecar"); continue
                }
                let sidecar = try DEKSidecar.decode(try readAll(sidecarPath), path: sidecarPath)
                guard !erased.contains(Data(header.userKeyId)), try keystore.key(id: header.userKeyId) != nil else {
                    report.skipped.append("\(location): user key destroyed"); continue
                }
                guard !erased.contains(Data(sidecar.outerKeyId)) else {
                    report.skipped.append("\(location): \(sidecar.outerRole.rawValue) key destroyed (erasure ledger)"); continue
                }
                guard let outer = try keystore.key(id: sidecar.outerKeyId) else { report.skipped.append("\(location): \(sidecar.outerRole.rawValue) key destroyed"); continue }
                let st = try Posix.status(bundlePath)!
                let expiry = sidecar.outerRole == .day ? (CivilDay(iso: outer.subject) ?? header.expiryDay) : header.expiryDay
                let record = BundleRecord(
                    id: header.bundleIdHex, userId: header.userId.rawValue, archivedAt: header.createdAt,
                    originalExpiryDay: header.expiryDay.daysSinceEpoch, expiryDay: expiry.daysSinceEpoch, state: .live, size: st.size,
                    sha256: Data(try fileSHA256(bundlePath)), location: location, userKeyId: Data(header.userKeyId),
                    outerRole: sidecar.outerRole.rawValue, outerKeyId: Data(sidecar.outerKeyId), sealedDek: Data(sidecar.sealedDEK),
                    files: -1, plaintextBytes: -1, sourceState: .removed, endedAt: nil, endReason: nil,
                    innerSha256: sidecar.provenance.map { Data($0.innerSHA256) },
                    bundleSig: sidecar.provenance.map { Data($0.bundleSignature.encoded) },
                    sealSig: sidecar.provenance.map { Data($0.sealSignature.encoded) })
                // G8: only a bundle and seal this vault's jobs signed are indexed (a forged pair stays an orphan file).
                try verifyProvenance(record, prefix: prefix)
                records.append(record)
                if sidecar.outerRole == .hold {
                    // Sealed to the case: the hold is active whatever an older record says (holds win).
                    if let i = holds.firstIndex(where: { $0.caseId == outer.subject && $0.userId == header.userId.rawValue }) {
                        holds[i].releasedAt = nil
                    } else {
                        holds.append(HoldRecord(caseId: outer.subject, userId: header.userId.rawValue, reason: "recovered by reindex", placedAt: now, releasedAt: nil))
                    }
                }
            } catch let e as VaultError {
                // A store that fails mid-listing must not leave a catalog missing what it could not read.
                if case .objectStore = e { throw e }
                report.skipped.append("\(location): \(e)")
            }
        }
        let requests = try keyring.mirroredDeletionRequests()
        let receipts = try keyring.mirroredReceipts()
        try catalog.write { db in
            for r in records { try r.insert(db) }
            for h in holds { try h.insert(db) }
            for e in ledger {
                try db.execute(sql: "INSERT INTO erasures (key_id, role, subject, recorded_at, reason) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                               arguments: [e["key_id"] as Data, e["role"] as String, e["subject"] as String, e["recorded_at"] as Int64, e["reason"] as String])
            }
            for r in requests { try r.insert(db, onConflict: .ignore) }
            report.recoveredDeletionRequests = requests.count
            // Deleted users: every user key the ledger destroyed for a deletion request.
            for e in ledger where (e["role"] as String) == KeyRole.user.rawValue {
                let user: String = e["subject"], reason: String = e["reason"], at: Int64 = e["recorded_at"]
                let request = reason.hasPrefix("deletion request ") ? String(reason.dropFirst("deletion request ".count))
                                                                    : "ledger-" + Hex.encode(Array(e["key_id"] as Data))
                try db.execute(sql: """
                    INSERT INTO deletion_requests (request_id, user_id, received_at, deadline_day, recorded_at, state, completed_at)
                    VALUES (?, ?, ?, ?, ?, 'done', ?) ON CONFLICT (request_id) DO UPDATE SET state = 'done', completed_at = excluded.completed_at
                    """, arguments: [request, user, at, CivilDay(unixSeconds: at).daysSinceEpoch, at, at])
                try db.execute(sql: "INSERT INTO tombstones (user_id, deleted_at, request_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                               arguments: [user, at, request])
                report.recoveredTombstones += db.changesCount
            }
            // Signed receipts, with their requests' completion times (§6.3).
            report.recoveredReceipts = try Self.restoreReceipts(db, from: receipts)
            try db.execute(sql: "UPDATE deletion_requests SET state = 'done', completed_at = coalesce(completed_at, ?) WHERE user_id IN (SELECT user_id FROM tombstones)",
                           arguments: [now])
            try Catalog.audit(db, at: now, action: "reindex", user: nil, detail: ["bundles": String(records.count), "skipped": String(report.skipped.count)])
        }
        report.indexedBundles = records.count
        report.recoveredHolds = holds.filter { $0.releasedAt == nil }.count
        // Now that the catalog knows holds and requests again: finish what they imply (a request whose holds ended,
        // a hold key of a case that holds nobody) and expire what is overdue.
        report.sweep = try sweep(now: now)
        return report
    }

    func readAll(_ path: String) throws -> [UInt8] { try Posix.readFile(path, maxLength: 1 << 20) }

    func copyFile(_ source: String, to destination: String) throws { try Vault.copyFileStatic(source, to: destination) }

    /// Copies a file to a new path: temporary name, fsync, rename without replacing, directory fsync.
    static func copyFileStatic(_ source: String, to destination: String) throws {
        let input = try FileDescriptor(open: source, flags: O_RDONLY)
        let directory = Posix.directoryName(destination)
        let temporary = directory + "/." + Posix.baseName(destination) + ".partial-" + Hex.encode(try SecureRandom.bytes(count: 6))
        let output = try FileDescriptor(open: temporary, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600)
        do {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
            defer { buffer.deallocate() }
            while true {
                let n = try input.read(into: buffer)
                if n == 0 { break }
                try output.write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            }
            try output.sync()
            try output.close()
            try Posix.renameNoReplace(temporary, destination)
            try Posix.syncDirectory(directory)
        } catch {
            _ = unlink(temporary)
            throw error
        }
    }
}
