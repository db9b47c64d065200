#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB
import VaultCrypto

public struct ArchiveOptions: Sendable {
    public var source: String
    public var keepSource = false
    public var dryRun = false
    /// Restrict to these users (each must be listed in accounts.csv).
    public var users: [UserID]? = nil

    public init(source: String, keepSource: Bool = false, dryRun: Bool = false, users: [UserID]? = nil) {
        self.source = source
        self.keepSource = keepSource
        self.dryRun = dryRun
        self.users = users
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
    }
    public struct Skipped: Sendable, Codable {
        public var user: String
        public var reason: String
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
    public var failed: [Skipped] = []
    public var recoveredPartial = 0
    public var removedSources = 0
    public var plaintextBytes: Int64 { archived.reduce(0) { $0 + $1.bytes } }
}

extension Vault {
    /// The nightly job (G4). For every user of `accounts.csv` whose inactivity reached the threshold and who has
    /// no live bundle: seal `users/<id>` into a bundle with a fresh DEK, fsync, re-read it from disk and decrypt
    /// it with the DEK still in memory comparing every file's SHA-256, seal the DEK to the user and day public
    /// keys, commit the catalog row, and only then remove the source. Needs only the master public key.
    public func archive(_ options: ArchiveOptions, now: Int64, progress: ProgressHandler? = nil) throws -> ArchiveReport {
        let today = CivilDay(unixSeconds: now)
        var report = ArchiveReport(today: today.iso, dryRun: options.dryRun)
        let csvPath = options.source + "/accounts.csv"
        guard Posix.exists(csvPath) else { throw VaultError.notFound(path: csvPath, what: "accounts file") }
        let accounts = try AccountsCSV.parse(try Posix.readTextFile(csvPath), path: csvPath)
        var selected = accounts
        if let only = options.users {
            let listed = Set(accounts.map(\.userId))
            if let missing = only.first(where: { !listed.contains($0) }) {
                throw VaultError.invalidArgument("user \(missing) is not listed in \(csvPath)")
            }
            let wanted = Set(only)
            selected = accounts.filter { wanted.contains($0.userId) }
        }
        if !options.dryRun {
            report.recoveredPartial = try recoverInterruptedArchives(source: options.source)
            report.sweep = try sweep(now: now)
        }
        let candidates = selected.filter { policy.isInactive(lastActive: $0.lastActive, today: today) }.sorted { $0.userId < $1.userId }
        report.candidates = candidates.count
        for (i, account) in candidates.enumerated() {
            let user = account.userId.rawValue
            progress?(i, candidates.count, user)
            let userDir = options.source + "/users/" + user
            let sourceStatus = try Posix.status(userDir)
            if try catalog.tombstone(user: user) != nil {
                if sourceStatus != nil { report.reappeared.append(user) }
                report.skipped.append(.init(user: user, reason: "deleted (tombstone); never archived again"))
                continue
            }
            if try !catalog.liveBundles(user: user).isEmpty {
                report.skipped.append(.init(user: user, reason: "already archived"))
                continue
            }
            guard let st = sourceStatus else {
                report.skipped.append(.init(user: user, reason: "no data in \(options.source)/users"))
                continue
            }
            guard st.kind == .directory else {
                report.failed.append(.init(user: user, reason: "\(userDir) is not a directory"))
                continue
            }
            if options.dryRun {
                report.wouldArchive.append(user)
                continue
            }
            do {
                report.archived.append(try archiveUser(account.userId, from: userDir, today: today, now: now, keepSource: options.keepSource))
                if !options.keepSource { report.removedSources += 1 }
            } catch let error as VaultError {
                switch error {
                case .invalidSource, .notFound: report.failed.append(.init(user: user, reason: error.description))
                default: throw error
                }
            }
        }
        progress?(candidates.count, candidates.count, "")
        return report
    }

    /// Seals, verifies and commits one user; removes the source unless asked to keep it.
    func archiveUser(_ user: UserID, from userDir: String, today: CivilDay, now: Int64, keepSource: Bool) throws -> ArchiveReport.Archived {
        let expiry = policy.expiryDay(archivedOn: today)
        let userKey = try keystore.keyCreatingIfNeeded(role: .user, subject: user.rawValue, master: archiveKey, vaultId: vaultId, now: now)
        let dayKey = try keystore.keyCreatingIfNeeded(role: .day, subject: expiry.iso, master: archiveKey, vaultId: vaultId, now: now)
        let header = BundleHeader(vaultId: vaultId, bundleId: try BundleHeader.randomId(), createdAt: now, expiryDay: expiry,
                                  userKeyId: userKey.keyId, dayKeyId: dayKey.keyId, userId: user)
        let location = Vault.bundleLocation(expiry: expiry, bundleId: header.bundleIdHex)
        // 1. Intent: a 'writing' row, so a crash before commit is cleaned up by the next run.
        var record = BundleRecord(
            id: header.bundleIdHex, userId: user.rawValue, archivedAt: now, originalExpiryDay: expiry.daysSinceEpoch,
            expiryDay: expiry.daysSinceEpoch, state: .writing, size: 0, sha256: nil, location: location,
            userKeyId: Data(userKey.keyId), outerRole: nil, outerKeyId: nil, sealedDek: nil, files: 0, plaintextBytes: 0,
            sourceState: .kept, endedAt: nil, endReason: nil)
        try catalog.write { db in try record.insert(db) }
        // 2. Seal with a fresh DEK; the writer fsyncs the file and its directory.
        let path = absolute(location)
        try Posix.makeDirectories(Posix.directoryName(path), mode: 0o700)
        let dek = try SecretBytes.random(count: 32)
        let sealed = try BundleWriter.seal(source: userDir, header: header, dataKey: dek, to: path)
        // 3. Verify from disk with the DEK still in memory: every chunk, the zstd checksum, every file's SHA-256.
        let (readBack, manifest) = try BundleReader.verify(path: path, dataKey: dek)
        guard readBack == header, manifest == sealed.manifest else {
            throw VaultError.bundleMismatch(path: path, reason: "read-back verification differs from what was written")
        }
        // 4. Seal the DEK (inner: user key, outer: day key); the DEK is zeroed when `dek` is released.
        let sealedDEK = try KeyHierarchy.sealDataKey(dek, binding: .init(header: header), userKey: userKey.publicKey,
                                                     outerRole: .day, outerKey: dayKey.publicKey)
        try writeSidecar(bundleLocation: location, role: .day, outerKeyId: dayKey.keyId, sealed: sealedDEK)
        // 5. Commit.
        record.state = .live
        record.size = Int64(sealed.fileSize)
        record.sha256 = Data(sealed.fileSHA256)
        record.outerRole = KeyRole.day.rawValue
        record.outerKeyId = Data(dayKey.keyId)
        record.sealedDek = Data(sealedDEK)
        record.files = Int64(manifest.fileCount)
        record.plaintextBytes = manifest.totalFileBytes
        record.sourceState = keepSource ? .kept : .pendingRemoval
        try catalog.write { db in
            try record.update(db)
            try Catalog.audit(db, at: now, action: "archive", user: user.rawValue, detail: [
                "bundle": record.id, "expiryDay": expiry.iso, "files": String(manifest.fileCount), "bytes": String(manifest.totalFileBytes),
            ])
        }
        // 6. Only now remove the source.
        if !keepSource { try removeSource(userDir, bundleId: record.id) }
        return .init(user: user.rawValue, bundleId: record.id, expiryDay: expiry.iso, files: manifest.fileCount,
                     bytes: manifest.totalFileBytes, bundleBytes: Int64(sealed.fileSize))
    }

    func removeSource(_ userDir: String, bundleId: String) throws {
        try Posix.removeTree(userDir)
        try Posix.syncDirectory(Posix.directoryName(userDir))
        try catalog.write { db in
            try db.execute(sql: "UPDATE bundles SET source_state = 'removed' WHERE id = ?", arguments: [bundleId])
        }
    }

    /// Finishes what a crashed run left: 'writing' rows (bundle never committed: its DEK was never stored, so the
    /// file is unreadable garbage) are removed with their files; sources of committed bundles are removed.
    func recoverInterruptedArchives(source: String) throws -> Int {
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
        let pending = try catalog.read { db in
            try BundleRecord.fetchAll(db, sql: "SELECT * FROM bundles WHERE source_state = 'pending-removal'")
        }
        for record in pending {
            let userDir = source + "/users/" + record.userId
            if record.state == .live, Posix.exists(userDir) {
                try removeSource(userDir, bundleId: record.id)
            } else {
                try catalog.write { db in
                    try db.execute(sql: "UPDATE bundles SET source_state = 'removed' WHERE id = ?", arguments: [record.id])
                }
            }
        }
        return writing.count
    }
}
