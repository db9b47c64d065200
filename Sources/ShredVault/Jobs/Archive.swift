#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import VaultArchive
import VaultCrypto

public struct ArchiveOptions: Sendable {
    /// A source directory, or `s3://BUCKET[/PREFIX]` (objects `PREFIX/accounts.csv` and `PREFIX/users/<id>/…`, §6.5).
    public var source: String
    public var keepSource = false
    public var dryRun = false
    /// Restrict to these users (each must be listed in accounts.csv).
    public var users: [UserID]? = nil
    /// Worker threads sealing users concurrently (default: one per core; database writes and fsyncs run on a
    /// separate I/O thread).
    public var jobs: Int = ProcessInfo.processInfo.activeProcessorCount
    /// Users per batch, the unit a worker takes; the I/O thread prepares and commits several batches per
    /// transaction. Sources of a batch are removed only after its commit is durable.
    public var batchSize: Int = 16
    /// Tests only: called for each user of an S3 source between the listing of its objects and their download.
    var afterSourceListing: (@Sendable (String) throws -> Void)? = nil
    /// How bundles are compressed: adaptive per file by default (`archive --level N` fixes a level).
    public var compression: BundleCompression = .automatic

    public init(source: String, keepSource: Bool = false, dryRun: Bool = false, users: [UserID]? = nil,
                jobs: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.source = source
        self.keepSource = keepSource
        self.dryRun = dryRun
        self.users = users
        self.jobs = max(1, jobs)
    }
}

public struct ArchiveReport: Sendable, Codable {
    public struct Archived: Sendable, Codable {
        public var user: String
        public var bundleId: String
        public var expiryDay: String
        public var files: Int
        public var bytes: Int64
        public var bundleBytes: Int64
        /// zstd frame bytes / tar stream bytes of this user's bundle.
        public var compressionRatio: Double
    }
    /// What the compression of the job's bundles did (vault-format.md §2.4: any level, one frame).
    public struct Compression: Sendable, Codable {
        /// "adaptive" (per file, from a sample) or "fixed" (`--level`).
        public var mode: String
        /// The fixed level, or the adaptive level of compressible files.
        public var level: Int32
        /// Adaptive: the level of files whose sample barely compressed.
        public var fastLevel: Int32?
        /// Adaptive: bytes of the files compressed at the fast level.
        public var fastFileBytes: Int64 = 0
        /// Bytes into zstd (the tar streams) and out (the frames), summed over the job's bundles; ratio = frame / tar.
        public var tarBytes: Int64 = 0
        public var frameBytes: Int64 = 0
        public var ratio: Double = 1
    }
    public struct Skipped: Sendable, Codable {
        public var user: String
        public var reason: String
        /// The file or directory the problem is about, when one is known (absent in JSON otherwise).
        public var path: String? = nil
    }
    public var today: String
    public var dryRun: Bool
    public var sweep: SweepReport?
    public var candidates = 0
    public var archived: [Archived] = []
    public var wouldArchive: [String] = []
    public var skipped: [Skipped] = []
    /// Users with a tombstone whose data reappeared in the source (never archived again).
    public var reappeared: [String] = []
    /// Users that could not be archived (their source is untouched; the others were archived).
    public var failed: [Skipped] = []
    /// Users whose bundle is committed but whose source directory could not be removed (catalog `source_state`
    /// `pending-removal`): reported by every run, and by `status`, until a run removes it.
    public var sourcesNotRemoved: [Skipped] = []
    public var recoveredPartial = 0
    public var removedSources = 0
    /// Absent for a dry run and when nothing was archived.
    public var compression: Compression?
    public var plaintextBytes: Int64 { archived.reduce(0) { $0 + $1.bytes } }
    /// Some user failed or kept its source: the job's exit code says so (README "Exit codes": 3).
    public var isPartial: Bool { !failed.isEmpty || !sourcesNotRemoved.isEmpty }
}

extension Vault {
    /// The nightly job (G4). For every user of `accounts.csv` whose inactivity reached the threshold and who has
    /// no live bundle: seal `users/<id>` into a bundle with a fresh DEK, fsync, re-read it from disk and decrypt
    /// it with the DEK still in memory comparing every file's SHA-256, seal the DEK to the user and day public
    /// keys, commit the catalog row, and only then remove the source. Needs only the master public key.
    public func archive(_ options: ArchiveOptions, now: Int64, progress: ProgressHandler? = nil) throws -> ArchiveReport {
        let today = CivilDay(unixSeconds: now)
        var report = ArchiveReport(today: today.iso, dryRun: options.dryRun)
        let expiry = policy.expiryDay(archivedOn: today)
        guard today.isRepresentable, expiry.isRepresentable else {
            throw VaultError.invalidArgument("bundles archived on \(today.iso) would expire on \(expiry.iso), after 9999-12-31, the last day a vault can hold; check the clock (nothing was changed)")
        }
        // An S3 source is read (accounts.csv, the listing of users/) before anything changes: a store that cannot be
        // reached, refuses the credentials or lacks the bucket ends the job here (exit 14).
        let s3Source = options.source.hasPrefix("s3://") ? try S3ArchiveSource(url: options.source, afterListing: options.afterSourceListing) : nil
        let sourceName = s3Source?.description ?? options.source
        let csvPath = sourceName + "/accounts.csv"
        let csvText: String
        if let s3Source {
            csvText = try s3Source.readAccounts()
        } else {
            guard Posix.exists(csvPath) else { throw VaultError.notFound(path: csvPath, what: "accounts file") }
            csvText = try Posix.readTextFile(csvPath)
        }
        let accounts = try AccountsCSV.parse(csvText, path: csvPath)
        var selected = accounts
        if let only = options.users {
            let listed = Set(accounts.map(\.userId))
            if let missing = only.first(where: { !listed.contains($0) }) {
                throw VaultError.invalidArgument("user \(missing) is not listed in \(csvPath)")
            }
            let wanted = Set(only)
            selected = accounts.filter { wanted.contains($0.userId) }
        }
        let s3Users = try s3Source?.listUsers()
        if !options.dryRun {
            try requireTrust("archive")
            try admitClock(now: now)
            (report.recoveredPartial, report.sourcesNotRemoved) = try recoverInterruptedArchives(source: options.source, s3: s3Source)
            report.sweep = try sweep(now: now)
        } else {
            report.sourcesNotRemoved = try pendingSourceRemovals(source: options.source, s3: s3Source)
        }
        let candidates = selected.filter { policy.isInactive(lastActive: $0.lastActive, today: today) }.sorted { $0.userId < $1.userId }
        report.candidates = candidates.count
        // Tombstones and live bundles of every candidate, in one read transaction.
        let (deleted, archived) = try catalog.read { db in
            let tombstone = try db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM tombstones WHERE user_id = ?)")
            let live = try db.cachedStatement(sql: "SELECT EXISTS (SELECT 1 FROM bundles WHERE user_id = ? AND state = 'live')")
            var deleted = Set<String>(), archived = Set<String>()
            for account in candidates {
                let user = account.userId.rawValue
                if try Bool.fetchOne(tombstone, arguments: [user]) == true { deleted.insert(user) }
                if try Bool.fetchOne(live, arguments: [user]) == true { archived.insert(user) }
            }
            return (deleted, archived)
        }
        var work: [ArchiveRun.Work] = []
        // An S3 source's users are downloaded, one per worker at a time, into this private directory (§6.5).
        let sourceStaging = stagingRoot + "/source/" + Hex.encode(try SecureRandom.bytes(count: 8))
        for account in candidates {
            let user = account.userId.rawValue
            let userDir = sourceName + "/users/" + user
            let sourceKind: FileKind?
            if let s3Users {
                sourceKind = s3Users.prefixes.contains(user) ? .directory : s3Users.objects.contains(user) ? .regular : nil
            } else {
                sourceKind = try Posix.status(userDir)?.kind
            }
            if deleted.contains(user) {
                if sourceKind != nil { report.reappeared.append(user) }
                report.skipped.append(.init(user: user, reason: "deleted (tombstone); never archived again"))
                continue
            }
            if archived.contains(user) {
                report.skipped.append(.init(user: user, reason: "already archived"))
                continue
            }
            guard let kind = sourceKind else {
                report.skipped.append(.init(user: user, reason: "no data in \(sourceName)/users"))
                continue
            }
            guard kind == .directory else {
                report.failed.append(.init(user: user, reason: s3Source == nil ? "\(userDir) is not a directory"
                                           : "\(userDir) is an object, not a prefix holding the user's objects", path: userDir))
                continue
            }
            work.append((account.userId, s3Source == nil ? userDir : sourceStaging + "/" + user, userDir))
        }
        if options.dryRun {
            report.wouldArchive = work.map(\.user.rawValue)
            return report
        }
        guard !work.isEmpty else {
            progress?(0, 0, "", 0)
            return report
        }
        if s3Source != nil { try Posix.makeDirectories(sourceStaging, mode: 0o700) }
        defer { if s3Source != nil { try? Posix.removeTree(sourceStaging) } }
        let run = try ArchiveRun(vault: self, today: today, now: now, keepSource: options.keepSource, s3Source: s3Source,
                                 compression: options.compression, total: work.count, progress: progress)
        let size = max(1, options.batchSize)
        let batches = stride(from: 0, to: work.count, by: size).map { Array(work[$0..<min($0 + size, work.count)]) }
        run.run(batches, workers: min(options.jobs, batches.count))
        if let error = run.firstError { throw error }
        report.archived = run.archived.sorted { $0.user < $1.user }
        report.failed += run.failed.sorted { $0.user < $1.user }
        report.sourcesNotRemoved += run.sourcesNotRemoved.sorted { $0.user < $1.user }
        report.removedSources = run.removedSources
        if !report.archived.isEmpty {
            var c = run.compressionTotals
            c.ratio = c.tarBytes > 0 ? Double(c.frameBytes) / Double(c.tarBytes) : 1
            report.compression = c
        }
        progress?(work.count, work.count, "", run.sealedBytes)
        return report
    }

    /// Removes the source directory of a committed user. A failure (a file the job may not delete, a read-only
    /// export) concerns that user's source only: it is returned as the reason, and the row stays `pending-removal`.
    static func removeCommittedSource(_ userDir: String) -> String? {
        do {
            try Posix.removeTree(userDir)
            try Posix.syncDirectory(Posix.directoryName(userDir))
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// The users whose committed bundle still waits for its source to be removed (`pending-removal`), as a dry run
    /// reports them: nothing is tried.
    func pendingSourceRemovals(source: String, s3: S3ArchiveSource? = nil) throws -> [ArchiveReport.Skipped] {
        let (pending, recorded) = try catalog.read { db in
            (try BundleRecord.fetchAll(db, sql: "SELECT * FROM bundles WHERE source_state = 'pending-removal' ORDER BY user_id"),
             try Self.recordedSourceObjects(db))
        }
        var out: [ArchiveReport.Skipped] = []
        for record in pending {
            if let objects = recorded[record.id] {
                out.append(.init(user: record.userId, reason: "archived in bundle \(record.id), but its \(objects.keys.count) source object(s) in "
                                 + "\(objects.source) are not deleted yet; the next archive run retries", path: objects.source + "/users/" + record.userId))
            } else if record.state == .live, s3 == nil, Posix.exists(source + "/users/" + record.userId) {
                out.append(.init(user: record.userId, reason: "archived in bundle \(record.id), but its source is not removed yet; the next archive run retries",
                                 path: source + "/users/" + record.userId))
            }
        }
        return out
    }

    /// The S3 source objects committed bundles wait to have deleted (`source_objects`, §6.5), by bundle id.
    static func recordedSourceObjects(_ db: Database) throws -> [String: (source: String, keys: [String])] {
        var out: [String: (source: String, keys: [String])] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT bundle_id, source, key FROM source_objects ORDER BY bundle_id, key") {
            let id: String = row["bundle_id"]
            out[id, default: (row["source"], [])].keys.append(row["key"])
        }
        return out
    }

    /// Deletes the recorded S3 source objects of a committed bundle (exactly the keys that were archived, whatever
    /// source this run reads); nil when done, else the reason.
    static func deleteSourceObjects(source: String, keys: [String], reuse: S3ArchiveSource?) -> String? {
        do {
            let store = try reuse.flatMap { $0.description == source ? $0 : nil } ?? S3ArchiveSource(url: source)
            let failures = try store.delete(keys)
            if let first = failures.first {
                return "the store could not delete \(failures.count) of its \(keys.count) source object(s), e.g. "
                    + "\(store.url(ofKey: first.key)): \(first.code) \(first.message)"
            }
            return nil
        } catch {
            return "\(S3ArchiveSource.storeError(error, doing: "deleting its source objects"))"
        }
    }

    /// Finishes what a crashed run left: 'writing' rows (bundle never committed: its DEK was never stored, so the
    /// file is unreadable garbage) are removed with their files; sources of committed bundles are removed. A source
    /// that still cannot be removed is returned (and stays `pending-removal`), never an error of the job.
    ///
    /// A bundle archived from an S3 source has its source objects recorded (`source_objects`, written by the commit):
    /// exactly those keys are deleted, from the source they were read from, and the rows go with the `removed` state.
    func recoverInterruptedArchives(source: String, s3: S3ArchiveSource? = nil) throws -> (Int, notRemoved: [ArchiveReport.Skipped]) {
        let writing = try catalog.read { db in try BundleRecord.fetchAll(db, sql: "SELECT * FROM bundles WHERE state = 'writing'") }
        for record in writing {
            let path = absolute(record.location)
            try removeBundleFile(record.location)
            let dir = Posix.directoryName(path)
            for name in (try? Posix.listDirectory(dir)) ?? [] where name.hasPrefix("." + record.id) || name.hasPrefix(record.id + ".dek.tmp") {
                try Posix.unlinkFile(dir + "/" + name)
            }
            try catalog.write { db in _ = try BundleRecord.deleteOne(db, key: record.id) }
        }
        let (pending, recorded) = try catalog.read { db in
            (try BundleRecord.fetchAll(db, sql: "SELECT * FROM bundles WHERE source_state = 'pending-removal'"), try Self.recordedSourceObjects(db))
        }
        var notRemoved: [ArchiveReport.Skipped] = []
        for record in pending.sorted(by: { $0.userId < $1.userId }) {
            if let objects = recorded[record.id] {
                // Deleted whatever the row's state: they are the user's data the bundle was made from.
                if let reason = Self.deleteSourceObjects(source: objects.source, keys: objects.keys, reuse: s3) {
                    notRemoved.append(.init(user: record.userId, reason: "archived in bundle \(record.id), but its source objects could not be deleted: \(reason)",
                                            path: objects.source + "/users/" + record.userId))
                    continue
                }
                try catalog.write { db in
                    try db.execute(sql: "UPDATE bundles SET source_state = 'removed' WHERE id = ?", arguments: [record.id])
                    try db.execute(sql: "DELETE FROM source_objects WHERE bundle_id = ?", arguments: [record.id])
                }
                continue
            }
            if s3 != nil, record.state == .live {
                // Archived from a source directory by an earlier run: only a run reading that directory removes it.
                notRemoved.append(.init(user: record.userId, reason: "archived in bundle \(record.id) from a source directory that is not removed yet; "
                                        + "an archive run with that directory as --source removes it"))
                continue
            }
            let userDir = source + "/users/" + record.userId
            if record.state == .live, Posix.exists(userDir), let reason = Self.removeCommittedSource(userDir) {
                notRemoved.append(.init(user: record.userId, reason: "archived in bundle \(record.id), but its source could not be removed: \(reason)",
                                        path: userDir))
                continue
            }
            try catalog.write { db in
                try db.execute(sql: "UPDATE bundles SET source_state = 'removed' WHERE id = ?", arguments: [record.id])
            }
        }
        return (writing.count, notRemoved)
    }
}

/// A failure that concerns one user only (its source, or its new bundle's read-back): the user is reported with the
/// file concerned and skipped, and the other users are archived.
struct UserFailure: Error {
    var reason: String
    var path: String?
}

/// One archive run's shared state. Worker threads (`--jobs`) only compute: for each user of a prepared batch they
/// seal the bundle, re-read and verify it, seal its DEK and write the sidecar, without waiting for the disk
/// (writeback is started as each file is written). One I/O thread (the caller's) does every database write and
/// fsync, always for many batches at once: it prepares batches ahead of the workers (their user keys in one
/// keystore transaction, their 'writing' intent rows in one catalog transaction), and it commits what the workers
/// finished as one group (fsync of every file, one fsync per directory, one catalog commit, then the removal of
/// the sources). So the workers never wait on the disk, and a slow disk turns into larger groups, not idle cores.
/// Until the commit each row is 'writing': a crash leaves files the next run deletes, and the sources intact (G4).
final class ArchiveRun: @unchecked Sendable {
    /// `dir` is the directory sealed: the source directory, or for an S3 source the private staging directory the
    /// user's objects are downloaded into; `shown` names the source in reports (the directory, or `s3://…/users/<id>`).
    typealias Work = (user: UserID, dir: String, shown: String)

    let vault: Vault
    let now: Int64
    let keepSource: Bool
    let s3Source: S3ArchiveSource?
    let compression: BundleCompression
    let total: Int
    let progress: ProgressHandler?
    let expiry: CivilDay
    let dayKey: StoredKey
    /// Sealed batches waiting for the commit; workers wait when this many are queued (bounds open files).
    private let maxQueuedBatches = 8
    private let state = NSCondition()
    private var batches: [[Work]] = []
    private var workers = 1
    private var nextToPrepare = 0
    private var prepared: [PreparedBatch] = []
    private var queued: [SealedBatch] = []
    private var workersRunning = 0
    private var sealedCount = 0
    /// Bytes of source files sealed so far (progress).
    private(set) var sealedBytes: Int64 = 0
    private(set) var archived: [ArchiveReport.Archived] = []
    private(set) var failed: [ArchiveReport.Skipped] = []
    private(set) var sourcesNotRemoved: [ArchiveReport.Skipped] = []
    private(set) var removedSources = 0
    /// Summed over the committed bundles.
    private(set) var compressionTotals: ArchiveReport.Compression
    private(set) var firstError: Error?
    /// Set when a commit failed: nothing after it is committed (a worker's error still lets sealed batches commit).
    private var commitFailed = false

    init(vault: Vault, today: CivilDay, now: Int64, keepSource: Bool, s3Source: S3ArchiveSource? = nil, compression: BundleCompression, total: Int,
         progress: ProgressHandler?) throws {
        self.vault = vault
        self.now = now
        self.keepSource = keepSource
        self.s3Source = s3Source
        self.compression = compression
        switch compression {
        case .fixed(let level): compressionTotals = .init(mode: "fixed", level: level)
        case .adaptive(let level): compressionTotals = .init(mode: "adaptive", level: level, fastLevel: BundleWriter.fastLevel)
        }
        self.total = total
        self.progress = progress
        expiry = vault.policy.expiryDay(archivedOn: today)
        dayKey = try vault.keystore.keyCreatingIfNeeded(role: .day, subject: expiry.iso, master: vault.archiveKey, vaultId: vault.vaultId, now: now)
    }

    private func locked<T>(_ body: () -> T) -> T {
        state.lock()
        defer { state.unlock() }
        return body()
    }

    private func record(_ error: Error) {
        locked {
            if firstError == nil { firstError = error }
            state.broadcast()
        }
    }

    /// Batches handed to the I/O thread for preparation and not yet in `prepared`.
    private var inPreparation = 0

    /// No more batches will be prepared (all were, or an error stopped the run). Call with the lock held.
    private var preparationOver: Bool { (nextToPrepare >= batches.count && inPreparation == 0) || firstError != nil }

    /// Batches still to hand out for preparation. Call with the lock held.
    private var unprepared: Int { firstError == nil ? batches.count - nextToPrepare : 0 }

    /// Runs `workers` worker threads and the I/O loop on the calling thread; returns when every batch is
    /// committed or the first error stopped the run.
    func run(_ batches: [[Work]], workers: Int) {
        self.batches = batches
        self.workers = workers
        workersRunning = workers
        let finished = DispatchGroup()
        for _ in 0..<workers {
            finished.enter()
            let thread = Thread { [self] in
                work()
                locked {
                    workersRunning -= 1
                    state.broadcast()
                }
                finished.leave()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        ioLoop()
        finished.wait()
    }

    private func work() {
        while true {
            let batch: PreparedBatch? = locked {
                while prepared.isEmpty && !preparationOver { state.wait() }
                guard firstError == nil, !prepared.isEmpty else { return nil }
                state.broadcast()
                return prepared.removeFirst()
            }
            guard let batch else { return }
            do {
                let sealed = try sealBatch(batch)
                locked {
                    while queued.count >= maxQueuedBatches && firstError == nil { state.wait() }
                    queued.append(sealed)
                    state.broadcast()
                }
            } catch {
                record(error)
                return
            }
        }
    }

    private enum IOStep {
        case prepare(Range<Int>)
        case commit([SealedBatch])
        case done
    }

    /// The I/O thread: keeps batches prepared ahead of the workers, commits whatever is sealed, until the workers
    /// are done and nothing is left. Batches sealed before a worker's error are still committed (each was verified on
    /// its own); after a failed commit nothing more is: what is queued stays 'writing' for the next run.
    private func ioLoop() {
        while true {
            let step: IOStep = locked {
                while true {
                    // Keep up to three batches per worker prepared: top up whenever nothing waits to be committed,
                    // and before committing when fewer than one per worker are left.
                    let count = min(unprepared, 3 * workers - prepared.count)
                    if count > 0 && (prepared.count < workers || queued.isEmpty) {
                        defer {
                            nextToPrepare += count
                            inPreparation = count
                        }
                        return .prepare(nextToPrepare..<(nextToPrepare + count))
                    }
                    if !queued.isEmpty {
                        let group = queued
                        queued = []
                        state.broadcast()
                        return .commit(group)
                    }
                    if workersRunning == 0 { return .done }
                    state.wait()
                }
            }
            switch step {
            case .done:
                return
            case .prepare(let range):
                do {
                    let ready = try prepare(Array(batches[range]))
                    locked {
                        prepared += ready
                        inPreparation = 0
                        state.broadcast()
                    }
                } catch {
                    locked { inPreparation = 0 }
                    record(error)
                }
            case .commit(let group):
                guard !commitFailed else { continue }
                do {
                    try commit(group)
                } catch {
                    commitFailed = true
                    record(error)
                }
            }
        }
    }

    private struct PreparedUser {
        var work: Work
        var header: BundleHeader
        var record: BundleRecord
        var userKey: StoredKey
    }

    private struct PreparedBatch {
        var users: [PreparedUser]
        var directory: String
    }

    private struct Sealed {
        var record: BundleRecord
        var result: ArchiveReport.Archived
        var dir: String
        var shown: String
        /// An S3 source's keys of this user, deleted after the commit.
        var sourceKeys: [String]
        var files: [PendingSync]
        var compression: CompressionReport
    }

    private struct SealedBatch {
        var directory: String
        var sealed: [Sealed]
        var failedIds: [String]
    }

    /// The I/O thread's first part of G4, for several batches at once: their user keys (one keystore transaction)
    /// and durable 'writing' intent rows (one catalog transaction), so a crash before the commit is cleaned up by
    /// the next run.
    private func prepare(_ group: [[Work]]) throws -> [PreparedBatch] {
        let userKeys = try vault.keystore.keysCreatingIfNeeded(role: .user, subjects: group.flatMap { $0.map(\.user.rawValue) },
                                                               master: vault.archiveKey, vaultId: vault.vaultId, now: now)
        var out: [PreparedBatch] = []
        for batch in group {
            let users = try batch.map { item in
                let userKey = userKeys[item.user.rawValue]!
                let header = BundleHeader(vaultId: vault.vaultId, bundleId: try BundleHeader.randomId(), createdAt: now, expiryDay: expiry,
                                          userKeyId: userKey.keyId, dayKeyId: dayKey.keyId, userId: item.user)
                let record = BundleRecord(
                    id: header.bundleIdHex, userId: item.user.rawValue, archivedAt: now, originalExpiryDay: expiry.daysSinceEpoch,
                    expiryDay: expiry.daysSinceEpoch, state: .writing, size: 0, sha256: nil,
                    location: Vault.bundleLocation(expiry: expiry, bundleId: header.bundleIdHex), userKeyId: Data(userKey.keyId),
                    outerRole: nil, outerKeyId: nil, sealedDek: nil, files: 0, plaintextBytes: 0, sourceState: .kept, endedAt: nil, endReason: nil)
                return PreparedUser(work: item, header: header, record: record, userKey: userKey)
            }
            out.append(PreparedBatch(users: users, directory: Posix.directoryName(vault.absolute(users[0].record.location))))
        }
        try vault.catalog.write { db in
            for batch in out { for user in batch.users { try user.record.insert(db) } }
        }
        for directory in Set(out.map(\.directory)) { try Posix.makeDirectories(directory, mode: 0o700) }
        return out
    }

    /// A worker's part of G4 for one prepared batch: for each user seal, re-read and verify the bundle with its DEK
    /// still in memory, seal the DEK and write the sidecar; nothing is fsynced here.
    private func sealBatch(_ batch: PreparedBatch) throws -> SealedBatch {
        var out = SealedBatch(directory: batch.directory, sealed: [], failedIds: [])
        for user in batch.users {
            do {
                let sealed = try sealOne(user)
                out.sealed.append(sealed)
                locked { sealedBytes += sealed.result.bytes }
            } catch let failure as UserFailure {
                // This user only: its partial files go (its row with them, at the commit); the others go on.
                try vault.removeBundleFiles([user.record.location])
                out.failedIds.append(user.record.id)
                locked { failed.append(.init(user: user.work.user.rawValue, reason: failure.reason, path: failure.path)) }
            }
            locked {
                sealedCount += 1
                progress?(sealedCount, total, user.work.user.rawValue, sealedBytes)
            }
        }
        return out
    }

    /// The I/O thread's second part of G4, for a group of batches: fsync every bundle and sidecar, fsync their directories,
    /// one catalog commit, and only then remove the sources.
    private func commit(_ group: [SealedBatch]) throws {
        let sealed = group.flatMap(\.sealed)
        for s in sealed {
            for file in s.files { try file.sync() }
        }
        for directory in Set(group.map(\.directory)) { try Posix.syncDirectory(directory) }
        if !vault.store.isLocal {
            // G4 against an object store (§6.5): each bundle and sidecar is uploaded and read back (HEAD size, and the
            // SHA-256 of a streamed GET against the one the catalog records) before the commit that lets the sources go.
            var uploads: [Vault.StagedUpload] = []
            for s in sealed {
                uploads.append(.init(location: s.record.location, sha256: Array(s.record.sha256!), size: s.record.size))
                let sidecar = DEKSidecar.location(forBundle: s.record.location)
                let path = vault.absolute(sidecar)
                uploads.append(.init(location: sidecar, sha256: try vault.fileSHA256(path), size: try Posix.status(path)?.size ?? 0))
            }
            try vault.uploadStaged(uploads)
            try vault.reached("archive:uploaded")
        }
        try vault.catalog.write { db in
            for id in group.flatMap(\.failedIds) { _ = try BundleRecord.deleteOne(db, key: id) }
            for s in sealed {
                try s.record.update(db)
                if let s3Source, !keepSource {
                    // The exact keys to delete, committed with the bundle: a crash before they are deleted is finished by
                    // the next archive run, which deletes these keys (never objects written after the listing).
                    let insert = try db.cachedStatement(sql: "INSERT INTO source_objects (bundle_id, source, key) VALUES (?, ?, ?)")
                    for key in s.sourceKeys { try insert.execute(arguments: [s.record.id, s3Source.description, key]) }
                }
                try Catalog.audit(db, at: now, action: "archive", user: s.record.userId, detail: [
                    "bundle": s.record.id, "expiryDay": expiry.iso, "files": String(s.record.files), "bytes": String(s.record.plaintextBytes),
                ])
            }
        }
        if !vault.store.isLocal {
            // The staging copies are not the stored bundles; the store's objects are.
            for s in sealed {
                for location in [s.record.location, DEKSidecar.location(forBundle: s.record.location)] {
                    _ = try Posix.unlinkIfPresent(vault.absolute(location))
                }
            }
        }
        try vault.reached("archive:committed")
        var removed: [Sealed] = [], notRemoved: [ArchiveReport.Skipped] = []
        if !keepSource, !sealed.isEmpty, let s3Source {
            // Committed: delete the users' source objects (DeleteObjects, batches of 1000 with Content-MD5). A user whose
            // objects could not all be deleted stays 'pending-removal' with its keys recorded; every run retries.
            var refused: [String: String] = [:]
            var storeFailure: String?
            do {
                for failure in try s3Source.delete(sealed.flatMap(\.sourceKeys)) {
                    refused[failure.key] = "\(s3Source.url(ofKey: failure.key)): \(failure.code) \(failure.message)"
                }
            } catch {
                storeFailure = "\(S3ArchiveSource.storeError(error, doing: "deleting source objects"))"
            }
            for s in sealed {
                if let reason = storeFailure ?? s.sourceKeys.lazy.compactMap({ refused[$0] }).first {
                    notRemoved.append(.init(user: s.record.userId, reason: "archived in bundle \(s.record.id), but its source objects could not be deleted: \(reason)",
                                            path: s.shown))
                } else {
                    removed.append(s)
                }
            }
            try vault.catalog.write { db in
                let update = try db.cachedStatement(sql: "UPDATE bundles SET source_state = 'removed' WHERE id = ?")
                let forget = try db.cachedStatement(sql: "DELETE FROM source_objects WHERE bundle_id = ?")
                for s in removed {
                    try update.execute(arguments: [s.record.id])
                    try forget.execute(arguments: [s.record.id])
                }
            }
        } else if !keepSource, !sealed.isEmpty {
            // Committed: from here on a source that cannot be removed is that user's problem, never the job's. Its row
            // stays 'pending-removal' and every run reports it (and retries) until it is gone.
            var byParent: [String: [Sealed]] = [:]
            for s in sealed {
                do {
                    try Posix.removeTree(s.dir)
                    byParent[Posix.directoryName(s.dir), default: []].append(s)
                } catch {
                    notRemoved.append(.init(user: s.record.userId, reason: "archived in bundle \(s.record.id), but its source could not be removed: \(error)",
                                            path: s.dir))
                }
            }
            for (parent, users) in byParent.sorted(by: { $0.key < $1.key }) {
                do {
                    try Posix.syncDirectory(parent)
                    removed += users
                } catch {
                    notRemoved += users.map {
                        .init(user: $0.record.userId, reason: "archived in bundle \($0.record.id), but the removal of its source was not made durable: \(error)",
                              path: $0.dir)
                    }
                }
            }
            try vault.catalog.write { db in
                let update = try db.cachedStatement(sql: "UPDATE bundles SET source_state = 'removed' WHERE id = ?")
                for s in removed { try update.execute(arguments: [s.record.id]) }
            }
        }
        locked {
            archived += sealed.map(\.result)
            for s in sealed {
                compressionTotals.tarBytes += s.compression.tarBytes
                compressionTotals.frameBytes += s.compression.frameBytes
                compressionTotals.fastFileBytes += s.compression.fastFileBytes
            }
            removedSources += removed.count
            sourcesNotRemoved += notRemoved
        }
    }

    /// The first entry where two manifests differ (paths compared as bytes): its path in each (nil past the end), or nil
    /// when they are equal.
    static func firstDifference(_ a: [Manifest.Entry], _ b: [Manifest.Entry]) -> (String?, String?)? {
        for i in 0..<max(a.count, b.count) {
            let x = i < a.count ? a[i] : nil, y = i < b.count ? b[i] : nil
            guard let x, let y else { return (x?.path, y?.path) }
            if !x.path.utf8.elementsEqual(y.path.utf8) || x.type != y.type || x.size != y.size || x.mode != y.mode || x.mtime != y.mtime
                || x.sha256 != y.sha256 { return (x.path, y.path) }
        }
        return nil
    }

    private func sealOne(_ user: PreparedUser) throws -> Sealed {
        let (item, header, record, userKey) = (user.work, user.header, user.record, user.userKey)
        let path = vault.absolute(record.location)
        // An S3 source: the user's objects are downloaded into a private staging directory, sealed and verified from
        // there like a source directory, and the copy removed here (the objects stay the source until the commit).
        defer { if s3Source != nil { try? Posix.removeTree(item.dir) } }
        let sourceKeys = try s3Source?.download(user: item.user.rawValue, to: item.dir) ?? []
        /// A path of the sealed tree as reports name it (an S3 source's staging path becomes its object URL).
        func shown(_ file: String) -> String {
            guard s3Source != nil, file.hasPrefix(item.dir) else { return file }
            return item.shown + file.dropFirst(item.dir.count)
        }
        let dek = try SecretBytes.random(count: 32)
        let written: SealedBundle
        do {
            // The bundle is verified while it is written (G4, vault-format.md §4): a second thread reads the file behind
            // the writer, decrypts, decompresses and untars it, checks every file's SHA-256 and hashes the whole file.
            let faults = vault.archiveFaults.flatMap { $0.user == item.user.rawValue ? $0 : nil }
            written = try BundleWriter.seal(source: item.dir, header: header, dataKey: dek, to: path, compression: compression,
                                            syncDirectory: false, deferSync: true, verifyPipelined: true,
                                            fault: faults.map { .init(flipCompressedByteAt: $0.flipCompressedByteAt, flipFileByteAt: $0.flipFileByteAt) })
        } catch let error as VaultError {
            // The source as it is (unreadable, vanished, a link or device, a bad name): this user fails, the job goes on.
            switch error {
            case .invalidSource(let file, let reason):
                throw UserFailure(reason: VaultError.invalidSource(path: shown(file), reason: reason).description, path: shown(file))
            case .notFound(let file, _) where file == item.dir: throw UserFailure(reason: "\(item.shown) disappeared while archiving; run again", path: item.shown)
            // The verifier's findings: the bundle as produced does not read back as the source.
            case .invalidContents(_, let reason), .corruptBundle(_, let reason), .malformedHeader(_, let reason):
                throw UserFailure(reason: "its bundle did not read back as written (\(reason)); source \(item.shown) kept", path: item.shown)
            case .wrongKeyOrModifiedHeader, .notABundle:
                throw UserFailure(reason: "its bundle did not read back as written (\(error)); source \(item.shown) kept", path: item.shown)
            default: throw error
            }
        } catch let error as ArchiveError {
            if case .unsupportedEntry = error { throw UserFailure(reason: "cannot archive \(item.shown): \(error)", path: item.shown) }
            throw error
        }
        guard let (readBack, manifest) = written.verified else { preconditionFailure("sealed without the pipelined verifier") }
        guard readBack == header else {
            throw UserFailure(reason: "its bundle's header did not read back as written; source \(item.shown) kept", path: item.shown)
        }
        if let (listed, seen) = Self.firstDifference(written.manifest.entries, manifest.entries) {
            let name = listed ?? seen ?? ""
            throw UserFailure(reason: "its bundle did not read back as written: entry '\(name)' differs from what was sealed; source \(item.shown) kept",
                              path: item.shown + "/" + name)
        }
        // `written.fileSHA256` and `written.head` are the hash and first bytes of the file as the verifier read it.
        let head = written.head
        // The DEK is zeroed when `dek` is released at the end of this function.
        let (sealedDEK, innerSHA256) = try KeyHierarchy.sealDataKeyLayers(dek, binding: .init(header: header), userKey: userKey.publicKey,
                                                                          outerRole: .day, outerKey: dayKey.publicKey)
        var r = record
        r.state = .live
        r.size = Int64(written.fileSize)
        r.sha256 = Data(written.fileSHA256)
        r.outerRole = KeyRole.day.rawValue
        r.outerKeyId = Data(dayKey.keyId)
        r.sealedDek = Data(sealedDEK)
        // G8 (§3.10): the bundle as written and its first seal, signed with the job credential.
        let prefix = try BundleReader.signedPrefix(of: head, path: path).prefix
        if let bundleSig = try vault.sign(.bundle, BundleStatement.bundle(prefix: prefix, size: r.size, fileSHA256: written.fileSHA256,
                                                                         innerSHA256: innerSHA256)),
           let sealSig = try vault.sign(.seal, vault.sealBody(bundleId: r.id, role: .day, outerKeyId: dayKey.keyId, expiryDay: r.expiryDay,
                                                             outer: sealedDEK)) {
            r.innerSha256 = Data(innerSHA256)
            r.bundleSig = Data(bundleSig.encoded)
            r.sealSig = Data(sealSig.encoded)
        }
        let sidecar = try vault.writeSidecarDeferringSync(bundleLocation: record.location, r.sidecar!)
        r.files = Int64(manifest.fileCount)
        r.plaintextBytes = manifest.totalFileBytes
        r.sourceState = keepSource ? .kept : .pendingRemoval
        return Sealed(record: r, result: .init(user: item.user.rawValue, bundleId: r.id, expiryDay: expiry.iso, files: manifest.fileCount,
                                               bytes: manifest.totalFileBytes, bundleBytes: Int64(written.fileSize),
                                               compressionRatio: (written.compression.ratio * 10_000).rounded() / 10_000),
                      dir: item.dir, shown: item.shown, sourceKeys: sourceKeys, files: [written.pendingSync!, sidecar],
                      compression: written.compression)
    }
}
