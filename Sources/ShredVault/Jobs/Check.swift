import Foundation
import GRDB
import VaultS3
import VaultCrypto

public struct CheckReport: Sendable, Codable {
    public struct Violation: Sendable, Codable, Equatable {
        /// Stable kind, e.g. `bundle-missing`, `bundle-hash`, `bundle-header`, `key-missing`, `ended-day-key`,
        /// `tombstoned-user-key`, `overdue-expiry`, `orphan-file`, `audit-chain`, `decrypt`.
        public var kind: String
        public var subject: String
        public var message: String
    }
    public var today: String
    /// A drill vault (§6.4).
    public var drill = false
    public var readData: Bool
    public var quick = false
    public var checkedBundles = 0
    public var checkedBytes: Int64 = 0
    public var auditRecords = 0
    public var violations: [Violation] = [] { didSet { ok = violations.isEmpty } }
    /// Advisory findings (e.g. `audit-head-not-exported`, `audit-head-stale`): reported, but `ok` does not depend on them.
    public var notices: [Violation] = []
    /// No violation (encoded in the JSON report).
    public private(set) var ok = true
}

/// Counts the bundles `check` has read, from any of its threads, for the progress handler (called under the lock).
final class CheckProgress: @unchecked Sendable {
    private let lock = NSLock()
    private let total: Int
    private let handler: ProgressHandler?
    private var done = 0
    private var bytes: Int64 = 0

    init(total: Int, handler: ProgressHandler?) {
        self.total = total
        self.handler = handler
    }

    func read(_ b: BundleRecord) {
        lock.lock()
        defer { lock.unlock() }
        done += 1
        bytes += b.size
        handler?(done, total, b.userId, bytes)
    }
}

extension Vault {
    /// Verifies catalog ↔ bundle files ↔ keystore without changing anything:
    /// every live bundle's file exists with the catalog's SHA-256 and a header naming this vault, bundle, user;
    /// its user and outer keys exist; no day key of an ended day and no user key of a tombstoned user remains;
    /// no unheld bundle is past its expiry day; no bundle file is unknown to the catalog; the audit chain holds.
    /// With `readData` (needs the restore key) every bundle is also unsealed and fully decrypted.
    /// - Parameter quick: compare file sizes and headers instead of reading every file for its SHA-256
    ///   (for very large vaults; `readData` implies a full read anyway).
    /// - Parameter jobs: threads that read bundles (default: one per core).
    public func check(now: Int64, readData: Bool, restoreKey: P256PrivateKey?, quick: Bool = false,
                      jobs: Int = ProcessInfo.processInfo.activeProcessorCount,
                      progress: ProgressHandler? = nil) throws -> CheckReport {
        let today = CivilDay(unixSeconds: now)
        var report = CheckReport(today: today.iso, readData: readData)
        report.quick = quick
        report.drill = config.isDrill
        func violation(_ kind: String, _ subject: String, _ message: String) {
            report.violations.append(.init(kind: kind, subject: subject, message: message))
        }
        if readData && restoreKey == nil { throw VaultError.restoreKeyRequired }
        if readData { try requireTrust("check --read-data") }
        try store.probe()
        let liveCount = try catalog.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM bundles WHERE state = 'live'") ?? 0 }
        var knownLocations = Set<String>()
        try catalog.read { db in
            let cursor = try BundleRecord.fetchCursor(db, sql: "SELECT * FROM bundles WHERE state IN ('live', 'writing') ORDER BY expiry_day, id")
            while let b = try cursor.next() {
                knownLocations.insert(b.location)
                knownLocations.insert(DEKSidecar.location(forBundle: b.location))
            }
        }
        let keyIds = try keystore.allKeyIds()
        // The cheap checks of each bundle run here, in catalog order; reading the bundles (size, header, signatures,
        // SHA-256, with `readData` decryption) runs on `jobs` threads, a batch at a time. Findings keep the catalog
        // order: each bundle's own, then what reading it found.
        let workers = max(1, jobs)
        let keyCache = PrivateKeyCache()
        let counter = CheckProgress(total: liveCount, handler: progress)
        var batch: [(record: BundleRecord, findings: [CheckReport.Violation])] = []
        var batchBytes: Int64 = 0
        func readBatch() throws {
            let read = try readBundles(batch.map(\.record), workers: workers, readData: readData, quick: quick,
                                       restoreKey: restoreKey, keyCache: keyCache, progress: counter)
            for (entry, findings) in zip(batch, read) { report.violations += entry.findings + findings }
            batch.removeAll(keepingCapacity: true)
            batchBytes = 0
        }
        try catalog.read { db in
            let cursor = try BundleRecord.fetchCursor(db, sql: "SELECT * FROM bundles WHERE state = 'live' ORDER BY expiry_day, id")
            while let b = try cursor.next() {
                report.checkedBundles += 1
                report.checkedBytes += b.size
                var findings: [CheckReport.Violation] = []
                func violation(_ kind: String, _ message: String) {
                    findings.append(.init(kind: kind, subject: "bundle \(b.id) of \(b.userId)", message: message))
                }
                if b.outerRole == "day" && b.expiryDay < today.daysSinceEpoch {
                    violation("overdue-expiry", "expired on \(b.expiry.iso) but is still live; run `shredvault sweep`")
                }
                if !keyIds.contains(b.userKeyId) {
                    violation("key-missing", "its user key is not in the keystore: the bundle is unrecoverable")
                }
                if let outer = b.outerKeyId, !keyIds.contains(outer) {
                    violation("key-missing", "its \(b.outerRole ?? "outer") key is not in the keystore: the bundle is unrecoverable")
                }
                let sidecarPath = absolute(DEKSidecar.location(forBundle: b.location))
                if let bytes = try readSidecarBytes(bundleLocation: b.location), let sidecar = try? DEKSidecar.decode(bytes, path: sidecarPath) {
                    if sidecar.sealedDEK != b.sealedDek.map(Array.init) || sidecar.outerKeyId != b.outerKeyId.map(Array.init) {
                        violation("sidecar", "its DEK sidecar differs from the catalog; reindex would use a stale key")
                    } else if sidecar.provenance != b.provenance {
                        violation("sidecar", "its DEK sidecar's signatures differ from the catalog's")
                    }
                } else {
                    violation("sidecar", "its DEK sidecar \(DEKSidecar.location(forBundle: b.location)) is missing or malformed")
                }
                batch.append((b, findings))
                batchBytes += b.size
                if batch.count >= Self.checkBatchCount || batchBytes >= Self.checkBatchBytes { try readBatch() }
            }
        }
        if !batch.isEmpty { try readBatch() }
        progress?(liveCount, liveCount, "", report.checkedBytes)
        if let verdict = try clockVerdict(now: now), !verdict.isPlausible, let latest = try latestJobTime() {
            violation("clock", "clock \(Timestamp.format(now))",
                      Self.clockProblem(verdict, now: now, latest: latest, maxJumpDays: policy.maxClockJumpDays)
                + "; jobs that change the vault refuse this clock (exit 12) until it is fixed or confirmed with --accept-clock")
        }
        for k in try keystore.dayKeys(endedBefore: today) {
            violation("ended-day-key", "day key \(k.subject)", "the day has ended but its key still exists (G1); run `shredvault sweep`")
        }
        let tombstoned = try catalog.read { db in try String.fetchSet(db, sql: "SELECT user_id FROM tombstones") }
        for k in try keystore.keys(role: .user) where tombstoned.contains(k.subject) {
            violation("tombstoned-user-key", "user key of \(k.subject)", "the user was deleted but the key still exists (G2)")
        }
        for k in try keyring.keys(role: .epoch) {
            guard let start = CivilDay(iso: k.subject) else { continue }
            let deadline = policy.epochKeyDestructionDay(epochStart: start)
            if deadline <= today {
                violation("epoch-key-overdue", "epoch key \(k.subject)", "keystore backups of this epoch should be unreadable since \(deadline.iso) (G3); run `shredvault sweep`")
            }
        }
        for k in try keyring.keys(role: .day) + keyring.keys(role: .user) + keyring.keys(role: .hold) {
            violation("misplaced-key", "\(k.role.rawValue) key \(k.subject)", "the keyring must hold only backup-epoch keys")
        }
        let backups = try catalog.read { db in try Row.fetchAll(db, sql: "SELECT path, epoch_start, epoch_key_id FROM backups WHERE kind = 'keystore'") }
        for row in backups {
            let path: String = row["path"], start = CivilDay(daysSinceEpoch: row["epoch_start"]), keyId: Data = row["epoch_key_id"]
            if policy.epochKeyDestructionDay(epochStart: start) <= today, Posix.exists(path), try keyring.key(id: Array(keyId)) != nil {
                violation("readable-old-backup", path, "keystore snapshot of epoch \(start.iso) is still readable past the \(policy.backupDays)-day window (G3)")
            }
        }
        for orphan in try orphanBundleFiles(known: knownLocations) where !Self.isTemporaryName(Posix.baseName(orphan)) {
            violation("orphan-file", orphan, "bundle file unknown to the catalog")
        }
        // A remote store (§6.5): objects no catalog row names, and multipart uploads an interrupted job left.
        let (orphanObjects, uploads) = try storeOrphans(known: knownLocations)
        for location in orphanObjects {
            violation("orphan-object", (store.url ?? "") + "/" + location.dropFirst("bundles/".count), "object unknown to the catalog")
        }
        for key in uploads {
            violation("incomplete-upload", "multipart upload of object key \(key)",
                      "multipart upload of an interrupted job; any job that changes the vault (e.g. `shredvault sweep`) aborts it")
        }
        let (kept, counted) = try catalog.read { db in
            (try Row.fetchOne(db, sql: "SELECT bundles, users, size, plain, held FROM live_stats WHERE id = 1"),
             try Row.fetchOne(db, sql: """
                SELECT count(*) AS bundles, count(DISTINCT user_id) AS users, coalesce(sum(size), 0) AS size,
                       coalesce(sum(max(plaintext_bytes, 0)), 0) AS plain, coalesce(sum(outer_role = 'hold'), 0) AS held
                FROM bundles INDEXED BY bundles_live_stats WHERE state = 'live'
                """))
        }
        if let kept, let counted, ["bundles", "users", "size", "plain", "held"].contains(where: { (kept[$0] as Int64) != (counted[$0] as Int64) }) {
            violation("live-stats", "catalog", "the totals `status` reads differ from a recount of the live bundles")
        }
        // What an interrupted job left: the next mutating job finishes it (`converge`); until then `check` names it.
        for (id, kind, _) in try pendingIntents() {
            violation("unfinished-job", "intent \(id)", "an interrupted \(kind) is not finished yet; run any job that changes the vault (e.g. `shredvault sweep`)")
        }
        for path in try leftoverFiles() {
            violation("leftover-file", path, "temporary file of an interrupted job (may hold key or plaintext copies); `shredvault sweep` removes it")
        }
        for path in try unknownVaultFiles() {
            violation("unknown-file", path, "not a file this vault writes; remove it or move it out of the vault")
        }
        let openRequests = try catalog.read { db in
            try DeletionRequestRecord.fetchAll(db, sql: "SELECT * FROM deletion_requests WHERE state != 'done' ORDER BY received_at")
        }
        for r in openRequests where try catalog.activeHolds(user: r.userId).isEmpty {
            violation("unfinished-deletion", "deletion request \(r.requestId) of \(r.userId)",
                      "no hold blocks it but it is not done; run any job that changes the vault (e.g. `shredvault sweep`)")
        }
        // Deletion receipts (§6.3): every completed request has one (once the vault can sign), each verifies against
        // the trust record, and the keyring mirrors it.
        if trust != nil {
            let unreceipted = try catalog.read { db in
                try String.fetchAll(db, sql: """
                    SELECT request_id FROM deletion_requests r WHERE state = 'done'
                    AND NOT EXISTS (SELECT 1 FROM receipts WHERE request_id = r.request_id) ORDER BY request_id
                    """)
            }
            for id in unreceipted {
                violation("missing-receipt", "deletion request \(id)", "completed but has no signed receipt yet; any job that changes the vault (e.g. `shredvault sweep`) issues it")
            }
        }
        let mirroredReceipts = Set(try keyring.mirroredReceipts().map(\.requestId))
        for record in try receipts() {
            do { _ = try verify(record) } catch let e as VaultError {
                guard case .notVerified(_, let reason) = e else { throw e }
                violation("bad-receipt", "receipt of deletion request \(record.requestId)", reason)
            }
            if !mirroredReceipts.contains(record.requestId) {
                violation("unmirrored-receipt", "receipt of deletion request \(record.requestId)",
                          "the keyring lacks its copy (reindex and recover could not bring it back); any job that changes the vault copies it")
            }
        }
        let activeCases = try catalog.read { db in try String.fetchSet(db, sql: "SELECT DISTINCT case_id FROM holds WHERE released_at IS NULL") }
        for k in try keystore.keys(role: .hold) where !activeCases.contains(k.subject) {
            violation("unused-hold-key", "hold key \(k.subject)", "the case holds nobody but its key still exists; `shredvault sweep` destroys it")
        }
        // G7: one root generation, and both key databases sealed under it (else stale copies still open).
        let keystoreGeneration = try keystore.ratchetGeneration(), keyringGeneration = try keyring.ratchetGeneration()
        if keystoreGeneration == nil || keyringGeneration == nil || destructionRoot == nil {
            violation("not-ratcheted", "keystore", "the keystore or keyring predates the destruction root; any job that changes the vault (e.g. `shredvault sweep`) upgrades it")
        } else if let root = destructionRoot {
            let generations = try root.generations()
            if keystoreGeneration != keyringGeneration || generations != [keystoreGeneration!] {
                violation("root-generation", root.location,
                          "an interrupted destruction left root generations \(generations) (keystore \(keystoreGeneration!), keyring \(keyringGeneration!)): old copies still open until `shredvault sweep` finishes it")
            }
        }
        if trust == nil {
            violation("no-trust-record", "vault", "the vault has no signed trust record (G8): the restore-key holder should run `shredvault trust init`")
        }
        let audit = try verifyAudit()
        report.auditRecords = audit.records
        if let problem = audit.problem { violation(audit.kind?.rawValue ?? "audit-chain", "audit log", problem) }
        // §6.2: only an exported head shows that records at the end of the log were not removed.
        if trust != nil {
            if let export = try lastAuditHeadExport() {
                if now - export.at > Self.auditHeadExportMaxAge {
                    report.notices.append(.init(kind: "audit-head-stale", subject: "audit log", message: """
                        the last exported audit head (record \(export.seq)) is \((now - export.at) / 86_400) days old: records after it could be \
                        removed unnoticed; export one with `shredvault audit head --out FILE` and store it outside the vault
                        """))
                }
            } else {
                report.notices.append(.init(kind: "audit-head-not-exported", subject: "audit log", message: """
                    no audit head was ever exported: records could be removed from the end of the log unnoticed; export one \
                    with `shredvault audit head --out FILE` and store it outside the vault
                    """))
            }
        }
        return report
    }

    /// Entries of the vault directory and the keystore directory that the vault does not write (temporary files
    /// are reported as leftovers instead).
    func unknownVaultFiles() throws -> [String] {
        let keystoreDirectory = Posix.directoryName(keystore.path)
        let keystoreName = Posix.baseName(keystore.path)
        var known: Set<String> = ["config", "master.pub", "catalog.db", "catalog.db-wal", "catalog.db-shm", "lock", "bundles",
                                   Self.recoveryMarkerName, "trust"]
        // Remote stores stage bundles there; `archive --source s3://…` stages source copies there in any vault.
        known.insert(Self.stagingDirectory)
        if keystoreDirectory.hasPrefix(root + "/") { known.insert(String(keystoreDirectory.dropFirst(root.count + 1)).split(separator: "/").first.map(String.init) ?? "") }
        var out: [String] = []
        for name in try Posix.listDirectory(root) where !known.contains(name) && !Self.isTemporaryName(name) { out.append(root + "/" + name) }
        if keystoreDirectory != root {
            let keystoreKnown: Set<String> = [keystoreName, keystoreName + "-journal"]
            for name in try Posix.listDirectory(keystoreDirectory) where !keystoreKnown.contains(name) && !Self.isTemporaryName(name) {
                // Only the vault's own keystore directory is scanned whole (`keys/`); a keystore placed elsewhere
                // may share its directory.
                if keystoreDirectory.hasPrefix(root + "/") { out.append(keystoreDirectory + "/" + name) }
            }
        }
        return out.sorted()
    }

    /// Files under bundles/ that no live or in-progress catalog row names.
    func orphanBundleFiles(known: Set<String>) throws -> [String] {
        try bundleTreeFiles().filter { !known.contains($0) }
    }

    /// Every regular file under `bundles/YYYY/MM/DD/`, as vault-relative paths.
    func bundleTreeFiles() throws -> [String] {
        var files: [String] = []
        func walk(_ rel: String, depth: Int) throws {
            for name in try Posix.listDirectory(root + "/" + rel) {
                let child = rel + "/" + name
                guard let st = try Posix.status(root + "/" + child) else { continue }
                if st.kind == .directory, depth < 3 { try walk(child, depth: depth + 1) } else { files.append(child) }
            }
        }
        if Posix.exists(root + "/bundles") { try walk("bundles", depth: 0) }
        return files
    }
}

extension Vault {
    /// Bundles handed to `check`'s reading threads at a time, at most (or fewer, adding up to `checkBatchBytes`):
    /// each batch ends when its last bundle is read, so a batch is small enough to keep the findings of a failed
    /// run few, and large enough that the threads rarely wait on each other.
    static let checkBatchCount = 64
    static let checkBatchBytes: Int64 = 1 << 30

    /// Reads `records` as `check` does (``readBundle``) on `workers` threads; the findings for each, in the order given.
    /// A failing object store is not a finding about a bundle: the first such error ends the check.
    func readBundles(_ records: [BundleRecord], workers: Int, readData: Bool, quick: Bool, restoreKey: P256PrivateKey?,
                     keyCache: PrivateKeyCache, progress: CheckProgress) throws -> [[CheckReport.Violation]] {
        final class Results: @unchecked Sendable {
            let lock = NSLock()
            var findings: [[CheckReport.Violation]]
            init(count: Int) { findings = Array(repeating: [], count: count) }
        }
        let results = Results(count: records.count)
        let threads = max(1, min(workers, records.count))
        try BlockingWorkers.forEach(records.count, workers: threads, stackSize: 1 << 22) { [self] index, notYetStarted in
            // The batch's last bundles (or every bundle on one thread) may use a second thread each, as cores fall
            // idle; before that every thread is busy with a bundle of its own.
            let pipeline: BundleReader.Pipeline = threads == 1 || notYetStarted < threads ? .automatic : .never
            let findings = try readBundle(records[index], readData: readData, quick: quick, restoreKey: restoreKey,
                                          keyCache: keyCache, pipeline: pipeline)
            results.lock.withLock { results.findings[index] = findings }
            progress.read(records[index])
        }
        return results.findings
    }

    /// What `check` finds reading one bundle: size, header and signatures, its SHA-256 against the catalog's (unless
    /// `quick`), and with `readData` its decryption, with the file's SHA-256 compared in the same read (as restore
    /// does, §3.10: size, prefix and signatures first; the target here is nothing). Throws only when the object
    /// store fails.
    func readBundle(_ b: BundleRecord, readData: Bool, quick: Bool, restoreKey: P256PrivateKey?, keyCache: PrivateKeyCache,
                    pipeline: BundleReader.Pipeline) throws -> [CheckReport.Violation] {
        let subject = "bundle \(b.id) of \(b.userId)"
        func finding(_ kind: String, _ message: String) -> [CheckReport.Violation] {
            [.init(kind: kind, subject: subject, message: message)]
        }
        do {
            if quick && !readData && !store.isLocal {
                // HeadObject + a ranged GET of the signed prefix: no object is downloaded (§6.5).
                try checkBundleObjectQuickly(b)
                return []
            }
            // A row without a recorded SHA-256 goes through checkBundleFile's hash check, which refuses it.
            let role = b.outerRole.flatMap(KeyRole.init(rawValue:))
            let expected = readData && restoreKey != nil && role != nil ? b.sha256 : nil
            let path = try checkBundleFile(b, hash: (!quick || readData) && expected == nil)
            defer { discardFetched(path) }
            if let expected, let restoreKey, let role {
                let dek = try openBundleKey(
                    b, role: role,
                    outerKey: try privateKey(role: role, id: b.outerKeyId, restoreKey: restoreKey, user: b.userId, cache: keyCache),
                    userKey: try privateKey(role: .user, id: b.userKeyId, restoreKey: restoreKey, user: b.userId))
                let (_, manifest) = try BundleReader.verify(path: path, dataKey: dek, pipeline: pipeline, expectedSHA256: Array(expected))
                if b.files >= 0, Int64(manifest.fileCount) != b.files || manifest.totalFileBytes != b.plaintextBytes {
                    return finding("decrypt", "its manifest lists \(manifest.fileCount) files / \(manifest.totalFileBytes) bytes, the catalog \(b.files) / \(b.plaintextBytes)")
                }
            }
            return []
        } catch let e as VaultError {
            switch e {
            // The store failed (unreachable, refused, a request failed): not a finding about this bundle.
            case .objectStore: throw e
            case .notFound: return finding("bundle-missing", "file \(b.location) is missing")
            case .bundleMismatch(_, let reason): return finding("bundle-mismatch", reason)
            case .notABundle, .malformedHeader, .unsupportedVersion, .unsupportedAlgorithm: return finding("bundle-header", e.description)
            case .notGenuine(_, let reason): return finding(b.provenance == nil ? "unsigned-bundle" : "bad-signature", reason)
            default: return finding("decrypt", e.description)
            }
        } catch {
            return finding("decrypt", "\(error)")
        }
    }
}
