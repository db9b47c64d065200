#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import VaultCrypto
import VaultS3

/// A backup target or source `s3://BUCKET[/PREFIX]` (vault-format.md §5.4): the layout of a backup directory, as
/// objects under PREFIX. The client comes from the AWS_* environment variables, never from an argument or a file.
struct S3BackupLocation {
    let address: BundleStoreURL
    let client: S3Client
    /// `s3://BUCKET[/PREFIX]` as given (normalized).
    var description: String { address.description }

    init(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        address = try BundleStoreURL(parsing: text)
        client = try storeCall { try S3Client(environment: environment) }
    }

    func key(_ name: String) -> String { address.prefix + name }
    /// `s3://BUCKET/PREFIX/NAME`, for messages and reports.
    func url(_ name: String) -> String { description + "/" + name }

    /// Every object under the prefix, by its name relative to the prefix, with its size and ETag. This is the first
    /// call a backup or recover sends: a missing bucket, refused credentials or an unreachable endpoint end the job
    /// here (exit 14), before anything changes.
    func list() throws -> [String: S3ObjectSummary] {
        var out: [String: S3ObjectSummary] = [:]
        try storeCall {
            try client.forEachObject(bucket: address.bucket, prefix: address.prefix) { object in
                guard object.key.hasPrefix(address.prefix) else { return }
                out[String(object.key.dropFirst(address.prefix.count))] = object
            }
        }
        return out
    }

    /// A small object's bytes (at most `limit`), or nil when there is no such object.
    func small(_ name: String, limit: Int = 1 << 20) throws -> [UInt8]? {
        var bytes: [UInt8] = []
        do {
            _ = try client.getObject(bucket: address.bucket, key: key(name)) { chunk in
                bytes.append(contentsOf: chunk)
                if bytes.count > limit {
                    throw VaultError.malformedInput(path: url(name), line: 1, reason: "larger than \(limit) bytes, which no backup writes")
                }
            }
            return bytes
        } catch S3Error.noSuchKey {
            return nil
        } catch {
            throw VaultError.objectStore(error)
        }
    }

    func put(_ name: String, _ bytes: [UInt8]) throws {
        try storeCall { _ = try client.putObject(bucket: address.bucket, key: key(name), body: bytes) }
    }

    /// Uploads a local file as `name` and reads it back (size, SHA-256), as a bundle store does (§6.5). A copy
    /// that does not read back is deleted, so no later backup takes it for a good one by its size.
    func upload(_ path: String, as name: String, sha256: [UInt8]) throws -> UInt64 {
        let size = try S3BundleStore.upload(client: client, bucket: address.bucket, key: key(name), from: path)
        do {
            try S3BundleStore.verify(client: client, bucket: address.bucket, key: key(name), what: url(name), size: size, sha256: sha256)
        } catch {
            _ = try? client.deleteObjects(bucket: address.bucket, keys: [key(name)])
            throw error
        }
        return size
    }

    func remove(_ names: [String]) throws {
        var rest = names[...]
        while !rest.isEmpty {
            let batch = Array(rest.prefix(1000))
            rest = rest.dropFirst(batch.count)
            let failures = try storeCall { try client.deleteObjects(bucket: address.bucket, keys: batch.map { key($0) }) }
            if let first = failures.first {
                throw VaultError.objectStore("\(description): the store could not delete \(failures.count) object(s), e.g. \(first.key): \(first.code) \(first.message)")
            }
        }
    }

    /// Streams `name` into a new file `destination` (temporary name in its directory, fsync, rename without
    /// replacing, directory fsync), hashing as it writes; memory is bounded by the client's buffers. When `size` or
    /// `sha256` are given, a copy that differs is removed and refused before it gets its name. False when the store
    /// has no such object.
    func download(_ name: String, to destination: String, size: UInt64? = nil, sha256: [UInt8]? = nil) throws -> Bool {
        let directory = Posix.directoryName(destination)
        let temporary = directory + "/." + Posix.baseName(destination) + ".partial-" + Hex.encode(try SecureRandom.bytes(count: 6))
        let output = try FileDescriptor(open: temporary, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: 0o600)
        do {
            let hash = try SHA256()
            var written: UInt64 = 0
            do {
                _ = try client.getObject(bucket: address.bucket, key: key(name)) { chunk in
                    try output.write(chunk)
                    try hash.update(chunk)
                    written += UInt64(chunk.count)
                }
            } catch S3Error.noSuchKey {
                _ = unlink(temporary)
                return false
            } catch let error as VaultError {
                throw error
            } catch {
                throw VaultError.objectStore(error)
            }
            let digest = try hash.finalize()
            if let size, written != size {
                throw VaultError.bundleMismatch(path: url(name), reason: "\(written) bytes downloaded, the backed-up catalog records \(size)")
            }
            if let sha256, digest != sha256 {
                throw VaultError.bundleMismatch(path: url(name), reason: "the SHA-256 of the download differs from the one the backup records")
            }
            try output.sync()
            try output.close()
            try Posix.renameNoReplace(temporary, destination)
            try Posix.syncDirectory(directory)
            return true
        } catch {
            _ = unlink(temporary)
            throw error
        }
    }

    /// The names a backup writes under its prefix (§5.4): the top-level files, `catalog-*.db`, `keystore-*.svks` and
    /// bundles and sidecars under `bundles/`.
    static func isBackupObject(_ name: String) -> Bool {
        if name.hasPrefix("bundles/") {
            let rest = name.dropFirst("bundles/".count)
            return rest.split(separator: "/", omittingEmptySubsequences: false).count == 4 && (rest.hasSuffix(".svb") || rest.hasSuffix(".dek"))
        }
        if name.contains("/") { return false }
        return ["backup.json", "config", "master.pub", "trust"].contains(name)
            || (name.hasPrefix("keystore-") && name.hasSuffix(".svks")) || (name.hasPrefix("catalog-") && name.hasSuffix(".db"))
    }
}

extension Vault {
    /// `checkBackupTarget` for a bucket prefix: refuses, before anything changes, a prefix holding anything but a
    /// backup of this vault (possibly an interrupted one): another vault's backup, a vault's bundle store, any
    /// object no backup writes. A `backup.json` that is not valid JSON of its kind is bad data (exit 65).
    func checkS3BackupTarget(_ target: S3BackupLocation, objects: [String: S3ObjectSummary]) throws {
        func refuse(_ reason: String) -> VaultError { .backupTargetRefused(path: target.description, reason: reason) }
        if objects.isEmpty { return }
        if objects["backup.json"] != nil {
            guard let bytes = try target.small("backup.json") else { throw refuse("its backup.json vanished while it was being read") }
            let manifest = try BackupManifest.decode(bytes, path: target.url("backup.json"))
            guard manifest.format == BackupManifest.formatName else {
                throw refuse("its backup.json is not a manifest of \(BackupManifest.formatName)")
            }
            guard manifest.vaultId == config.vaultId else {
                throw refuse("it holds a backup of vault \(manifest.vaultId), not of this vault (\(config.vaultId))")
            }
        } else if objects["config"] == nil {
            // Every backup to a bucket writes this vault's config before anything else (a first backup that was
            // interrupted holds it): objects with neither manifest nor config are not a backup of this vault.
            throw refuse("it holds objects (e.g. '\(objects.keys.sorted()[0])') but no backup.json or config of a backup")
        } else {
            // This vault's first backup interrupted before its manifest (which a rerun finishes), or something else.
            guard let bytes = try target.small("config") else { throw refuse("its config vanished while it was being read") }
            let other: VaultConfig
            do {
                other = try VaultConfig.parse(String(decoding: bytes, as: UTF8.self), path: target.url("config"))
            } catch let error as VaultError {
                throw refuse("it holds a config that is not one of this vault (\(error))")
            }
            guard other.vaultId == config.vaultId else {
                throw refuse("it holds the config of vault \(other.vaultId), not of this vault (\(config.vaultId))")
            }
        }
        if let unknown = objects.keys.sorted().first(where: { !S3BackupLocation.isBackupObject($0) }) {
            throw refuse("it is not empty and holds '\(unknown)', which no backup of this vault writes")
        }
    }

    /// `backup --to s3://BUCKET[/PREFIX]` (vault-format.md §5.4): the layout of a backup directory as objects. New
    /// bundles are uploaded and read back (size, SHA-256); a bundle object already there with the catalog's size is
    /// kept; a sidecar is uploaded unless its object's ETag is the MD5 of its bytes. Then the keystore snapshot, a
    /// catalog snapshot `catalog-<stamp>.db`, config, archive key and trust record, and **last** `backup.json`, which
    /// names the catalog and snapshot with their SHA-256: until it is written the previous backup (if any) stays
    /// whole and is what `recover` reads. Only after it: bundle objects the new catalog no longer names (swept,
    /// deleted) and older catalog objects are deleted.
    /// - Parameter stopAfterUploads: a test hook: fail as a crash would after this many bundle uploads.
    func backupToS3(_ text: String, now: Int64, progress: ProgressHandler?, stopAfterUploads: Int? = nil) throws -> VaultBackupReport {
        let target = try S3BackupLocation(text)
        // The first call to the store: credentials, bucket and endpoint are proven before anything changes.
        let objects = try target.list()
        try checkS3BackupTarget(target, objects: objects)
        _ = try sweep(now: now)
        // A first backup names its vault before any bundle goes up, so an interrupted one is known as this vault's.
        if objects["backup.json"] == nil, objects["config"] == nil { try target.put("config", try readAll(Vault.configPath(root))) }
        // Multipart uploads an interrupted backup left (invisible as objects; the store would keep their parts).
        let uploads = try storeCall { try target.client.listMultipartUploads(bucket: target.address.bucket, prefix: target.address.prefix) }
        for upload in uploads {
            try storeCall { try target.client.abortMultipartUpload(bucket: target.address.bucket, key: upload.key, uploadID: upload.uploadID) }
        }
        let stamp = Timestamp.format(now).replacingOccurrences(of: ":", with: "").replacingOccurrences(of: "-", with: "")
        let recorded = try catalog.read { db in try String.fetchSet(db, sql: "SELECT path FROM backups") }
        var snapshotName = "keystore-\(stamp).svks", catalogName = "catalog-\(stamp).db"
        var n = 2
        while objects[snapshotName] != nil || objects[catalogName] != nil || recorded.contains(target.url(snapshotName)) {
            snapshotName = "keystore-\(stamp)-\(n).svks"
            catalogName = "catalog-\(stamp)-\(n).db"
            n += 1
        }
        var report = VaultBackupReport(directory: target.description, takenAt: Timestamp.format(now), keystoreSnapshot: snapshotName, unreadableFrom: "")
        let live = try catalog.read { db in try BundleRecord.fetchAll(db, sql: "SELECT * FROM bundles WHERE state = 'live' ORDER BY expiry_day, id") }
        report.liveBundles = live.count
        var keep = Set<String>()
        var doneBytes: Int64 = 0
        for (i, b) in live.enumerated() {
            progress?(i, live.count, b.userId, doneBytes)
            doneBytes += b.size
            keep.insert(b.location)
            if let present = objects[b.location], present.size == UInt64(b.size) {
                report.presentBundles += 1
            } else {
                guard let expected = b.sha256 else {
                    throw VaultError.bundleMismatch(path: absolute(b.location), reason: "the catalog records no SHA-256 for it; run `shredvault check`")
                }
                // The vault's own file first: a damaged bundle is not backed up as if it were good. Bundles in a bucket
                // (§6.5) are fetched to a private file and checked (size, SHA-256) before the upload; no server-side copy.
                let sourcePath: String
                if store.isLocal {
                    guard try fileSHA256(absolute(b.location)) == Array(expected) else {
                        throw VaultError.bundleMismatch(path: absolute(b.location), reason: "its SHA-256 differs from the catalog; run `shredvault check`")
                    }
                    sourcePath = absolute(b.location)
                } else {
                    sourcePath = try fetchVerifiedBundle(b)
                }
                defer { discardFetched(sourcePath) }
                if let stop = stopAfterUploads, report.copiedBundles >= stop {
                    throw VaultError.io(operation: "backup (test hook: interrupted)", path: target.url(b.location), errno: EINTR)
                }
                _ = try target.upload(sourcePath, as: b.location, sha256: Array(expected))
                report.copiedBundles += 1
                report.copiedBytes += b.size
            }
            let sidecar = DEKSidecar.location(forBundle: b.location)
            if let bytes = try sidecarBytesForBackup(b.location) {
                keep.insert(sidecar)
                // A single-part object's ETag is the MD5 of its bytes: an unchanged sidecar is not sent again.
                let md5 = Hex.encode(try MD5.hash(bytes))
                if objects[sidecar]?.etag.lowercased() != md5 {
                    try target.put(sidecar, bytes)
                    report.uploadedSidecars += 1
                }
            }
        }
        progress?(live.count, live.count, "", doneBytes)

        // The snapshots are made in the vault directory under temporary names (§6.1: a crash leaves files the next
        // job removes), uploaded, and removed.
        let suffix = ".partial-" + Hex.encode(try SecureRandom.bytes(count: 6))
        let localSnapshot = root + "/." + snapshotName + suffix, localCatalog = root + "/." + catalogName + suffix
        defer {
            _ = unlink(localSnapshot)
            _ = unlink(localCatalog)
        }
        let ks = try backupKeystore(to: localSnapshot, now: now, recordAs: target.url(snapshotName))
        report.unreadableFrom = ks.unreadableFrom
        let snapshotSHA = try fileSHA256(localSnapshot)
        _ = try target.upload(localSnapshot, as: snapshotName, sha256: snapshotSHA)
        try catalog.snapshot(to: localCatalog)
        let catalogSHA = try fileSHA256(localCatalog)
        _ = try target.upload(localCatalog, as: catalogName, sha256: catalogSHA)
        try target.put("config", try readAll(Vault.configPath(root)))
        try target.put("master.pub", try readAll(Vault.archiveKeyPath(root)))
        if Posix.exists(Vault.trustPath(root)) { try target.put("trust", try readAll(Vault.trustPath(root))) }
        // The commit point: one PutObject replaces the manifest whole (or not at all).
        let manifest = BackupManifest(format: BackupManifest.formatName, vaultId: config.vaultId, takenAt: now, keystoreSnapshot: snapshotName,
                                      liveBundles: live.count, catalog: catalogName, catalogSHA256: Hex.encode(catalogSHA),
                                      keystoreSHA256: Hex.encode(snapshotSHA))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try target.put("backup.json", Array(try encoder.encode(manifest)) + [0x0a])

        // What the new backup no longer names: bundles gone from the vault, their sidecars, older catalogs. Keystore
        // snapshots stay, as in a backup directory (each becomes unreadable with its epoch key, G3).
        let stale = objects.keys.filter { name in
            (name.hasPrefix("bundles/") && !keep.contains(name)) || (name.hasPrefix("catalog-") && name.hasSuffix(".db") && name != catalogName)
        }.sorted()
        try target.remove(stale)
        report.removedBundles = stale.filter { $0.hasSuffix(".svb") }.count
        try catalog.write { db in
            try Catalog.audit(db, at: now, action: "backup", user: nil, detail: [
                "path": target.description, "bundles": String(live.count), "copied": String(report.copiedBundles),
                "removed": String(report.removedBundles),
            ])
        }
        return report
    }

    /// `recover --from s3://BUCKET[/PREFIX]`: the manifest, config, archive key, trust record, catalog and keystore
    /// snapshot are downloaded into a private temporary directory (catalog and snapshot checked against the SHA-256
    /// the manifest records), then recovered as from a directory, each bundle streamed straight to its place in the
    /// new vault and checked against the size and SHA-256 the backed-up catalog records before it gets its name.
    static func recoverFromS3(_ text: String, recover: (BackupSource) throws -> RecoverReport) throws -> RecoverReport {
        let source = try S3BackupLocation(text)
        guard let manifestBytes = try source.small("backup.json") else {
            let page = try storeCall { try source.client.listObjectsV2(bucket: source.address.bucket, prefix: source.address.prefix, maxKeys: 1) }
            if page.objects.isEmpty { throw VaultError.notFound(path: source.url("backup.json"), what: "backup manifest") }
            throw VaultError.backupIncomplete(path: source.description)
        }
        let manifest = try BackupManifest.decode(manifestBytes, path: source.url("backup.json"))
        let scratchDirectory = try PrivateScratchDirectory(purpose: "recover")
        defer { scratchDirectory.remove() }
        let scratch = scratchDirectory.path
        try Posix.writeFileAtomically(scratch + "/backup.json", manifestBytes, mode: 0o600)
        for name in ["config", "master.pub"] {
            guard try source.download(name, to: scratch + "/" + name) else { throw VaultError.backupIncomplete(path: source.description) }
        }
        _ = try source.download("trust", to: scratch + "/trust")
        guard let catalogName = manifest.catalog, let catalogSHA = manifest.catalogSHA256.flatMap({ Hex.decode($0) }),
              let snapshotSHA = manifest.keystoreSHA256.flatMap({ Hex.decode($0) }) else {
            throw VaultError.malformedInput(path: source.url("backup.json"), line: 1, reason: "a backup in object storage names its catalog and the SHA-256 of its catalog and keystore snapshot")
        }
        guard S3BackupLocation.isBackupObject(catalogName), !catalogName.contains("/"),
              S3BackupLocation.isBackupObject(manifest.keystoreSnapshot), !manifest.keystoreSnapshot.contains("/") else {
            throw VaultError.malformedInput(path: source.url("backup.json"), line: 1, reason: "it names a catalog or snapshot no backup writes")
        }
        guard try source.download(catalogName, to: scratch + "/" + catalogName, sha256: catalogSHA),
              try source.download(manifest.keystoreSnapshot, to: scratch + "/" + manifest.keystoreSnapshot, sha256: snapshotSHA) else {
            throw VaultError.backupIncomplete(path: source.description)
        }
        return try recover(BackupSource(description: source.description, metadata: scratch) { location, record, destination in
            try source.download(location, to: destination, size: record.map { UInt64($0.size) }, sha256: record?.sha256.map { Array($0) })
        })
    }
}

/// Where `recover` reads a backup from: a local directory holding the manifest, config, archive key, trust record,
/// catalog (`catalog.db`, or the one the manifest names) and keystore snapshot, and a way to bring a bundle or sidecar
/// to a new local file.
struct BackupSource {
    /// The backup directory, or `s3://BUCKET[/PREFIX]`.
    let description: String
    let metadata: String
    /// Brings `location` to the new file `destination`, checked against the record when one is given; false when the
    /// backup does not hold it.
    let fetch: (_ location: String, _ record: BundleRecord?, _ destination: String) throws -> Bool
}
