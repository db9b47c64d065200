import Foundation
import VaultCrypto

public struct RestoreReport: Sendable, Codable {
    public struct Restored: Sendable, Codable {
        public var bundleId: String
        public var target: String
        public var files: Int
        public var bytes: Int64
    }
    public var user: String
    public var caseId: String
    public var target: String
    public var bundles: [Restored] = []
    public var sweep: SweepReport?
}

extension Vault {
    /// Restores every live bundle of a user under an active hold case into `target` (which must not exist):
    /// one bundle directly into `target`, several into `target/<bundle-id>/`. Each bundle file is checked against
    /// the catalog (size, header, signatures) before its DEK is unsealed, and its SHA-256 while it is read;
    /// extraction verifies everything before the target appears. Needs the restore key.
    public func restore(user: UserID, caseId: String, to target: String, restoreKey: P256PrivateKey, now: Int64) throws -> RestoreReport {
        let target = target.count > 1 && target.hasSuffix("/") ? String(target.dropLast()) : target
        if Posix.exists(target) { throw VaultError.targetExists(path: target) }
        try requireTrust("restore")
        let sweep = try sweep(now: now)
        _ = try Self.removeInterruptedRestores(in: Posix.directoryName(target))
        var report = try restoreOne(user: user, caseId: caseId, to: target, restoreKey: restoreKey)
        report.sweep = sweep
        try catalog.write { db in
            try Catalog.audit(db, at: now, action: "restore", user: user.rawValue, detail: [
                "case": caseId, "bundles": report.bundles.map(\.bundleId).joined(separator: ","),
            ])
        }
        return report
    }

    /// What `restoreOne` reads from the catalog and keystore for one user, read for many users at once
    /// (`restore --all-held`) so that concurrent workers do not queue on the databases.
    struct RestoreInputs {
        var live: [BundleRecord]
        var holdsCase: Bool
        /// Stored keys by id (user and outer keys of `live`; absent ids are looked up again).
        var keys: [Data: StoredKey]
    }

    /// `RestoreInputs` of each user, in one catalog and one keystore read transaction.
    func restoreInputs(users: [UserID], caseId: String) throws -> [String: RestoreInputs] {
        var out: [String: RestoreInputs] = [:]
        try catalog.read { db in
            for user in users {
                let u = user.rawValue
                let live = try BundleRecord.fetchAll(
                    db.cachedStatement(sql: "SELECT * FROM bundles WHERE user_id = ? AND state = 'live' ORDER BY archived_at, id"),
                    arguments: [u])
                let holds = try Bool.fetchOne(
                    db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM holds WHERE user_id = ? AND case_id = ? AND released_at IS NULL)"),
                    arguments: [u, caseId]) ?? false
                out[u] = RestoreInputs(live: live, holdsCase: holds, keys: [:])
            }
        }
        var ids = Set<Data>()
        for inputs in out.values {
            for b in inputs.live {
                ids.insert(b.userKeyId)
                if let outer = b.outerKeyId { ids.insert(outer) }
            }
        }
        let stored = try keystore.keys(ids: Array(ids))
        for (u, inputs) in out {
            var keys: [Data: StoredKey] = [:]
            for b in inputs.live {
                keys[b.userKeyId] = stored[b.userKeyId]
                if let outer = b.outerKeyId { keys[outer] = stored[outer] }
            }
            out[u]?.keys = keys
        }
        return out
    }

    /// Restores one user's live bundles into `target` (checks, unseals, extracts); no sweep, no audit.
    /// `inputs`, when given, replaces the catalog and keystore reads (`restoreInputs`); `pipeline` says whether each
    /// bundle is read by a pipeline of threads (`BundleReader.Pipeline`).
    func restoreOne(user: UserID, caseId: String, to target: String, restoreKey: P256PrivateKey,
                    keyCache: PrivateKeyCache? = nil, syncParent: Bool = true, inputs: RestoreInputs? = nil,
                    pipeline: BundleReader.Pipeline = .automatic) throws -> RestoreReport {
        let u = user.rawValue
        var report = RestoreReport(user: u, caseId: caseId, target: target)
        let live = try inputs?.live ?? catalog.liveBundles(user: u)
        if live.isEmpty { throw try unrecoverableOrUnknown(u) }
        let holdsCase = try inputs?.holdsCase ?? catalog.activeHolds(user: u).contains(where: { $0.caseId == caseId })
        guard holdsCase else { throw VaultError.holdRequired(user: u, caseId: caseId) }
        let stored = inputs?.keys ?? [:]
        func privateKey(role: KeyRole, id: Data?, cache: PrivateKeyCache? = nil) throws -> P256PrivateKey {
            try self.privateKey(role: role, id: id, restoreKey: restoreKey, user: u, cache: cache, stored: id.flatMap { stored[$0] })
        }
        let userPrivate = try privateKey(role: .user, id: live[0].userKeyId)
        var keys: [(BundleRecord, String, SecretBytes)] = []
        defer { for (_, path, _) in keys { discardFetched(path) } }
        for b in live {
            // Size, header and both signatures now (§3.10); the file's SHA-256 is compared with the catalog's while the
            // file is read and decrypted, before anything reaches the target (one read of the file instead of two).
            let path = try checkBundleFile(b, hash: b.sha256 == nil)
            guard let role = b.outerRole.flatMap(KeyRole.init(rawValue:)) else {
                discardFetched(path)
                throw VaultError.unrecoverable(user: u, date: "?", reason: "no outer key")
            }
            let outerPrivate = try privateKey(role: role, id: b.outerKeyId, cache: keyCache)
            let userKey = Array(b.userKeyId) == Array(live[0].userKeyId) ? userPrivate : try privateKey(role: .user, id: b.userKeyId)
            let dek = try openBundleKey(b, role: role, outerKey: outerPrivate, userKey: userKey)
            keys.append((b, path, dek))
        }
        if keys.count == 1 {
            let (b, path, dek) = keys[0]
            let (_, manifest) = try BundleReader.extract(path: path, dataKey: dek, to: target, syncParent: syncParent, pipeline: pipeline,
                                                         expectedSHA256: b.sha256.map { Array($0) })
            report.bundles.append(.init(bundleId: b.id, target: target, files: manifest.fileCount, bytes: manifest.totalFileBytes))
        } else {
            // Several bundles: extract each below a private temporary parent that becomes the target at the end.
            let parent = Posix.directoryName(target)
            let staging = parent + "/." + Posix.baseName(target) + ".partial-" + Hex.encode(try SecureRandom.bytes(count: 6))
            try Posix.makeDirectory(staging, mode: 0o700)
            do {
                for (b, path, dek) in keys {
                    let (_, manifest) = try BundleReader.extract(path: path, dataKey: dek, to: staging + "/" + b.id, pipeline: pipeline,
                                                                 expectedSHA256: b.sha256.map { Array($0) })
                    report.bundles.append(.init(bundleId: b.id, target: target + "/" + b.id, files: manifest.fileCount, bytes: manifest.totalFileBytes))
                }
                try Posix.renameNoReplace(staging, target)
                try Posix.syncDirectory(parent)
            } catch {
                try? Posix.removeTree(staging)
                throw error
            }
        }
        return report
    }
}
