import Foundation
import VaultS3
import VaultCrypto

public struct RestoreManyReport: Sendable, Codable {
    public var caseId: String
    public var target: String
    public var users: [RestoreReport] = []
    public var files: Int { users.reduce(0) { $0 + $1.bundles.reduce(0) { $0 + $1.files } } }
    public var bytes: Int64 { users.reduce(0) { $0 + $1.bundles.reduce(0) { $0 + $1.bytes } } }
}

extension Vault {
    /// Users with an active hold under `caseId`.
    public func heldUsers(caseId: String) throws -> [UserID] {
        try catalog.read { db in
            try String.fetchAll(db, sql: "SELECT user_id FROM holds WHERE case_id = ? AND released_at IS NULL ORDER BY user_id", arguments: [caseId])
        }.compactMap(UserID.init)
    }

    /// Restores several users held under one case, concurrently (`jobs` workers), into `target/<user>/`.
    /// `target` must not exist; users are extracted below a private staging directory that becomes `target`
    /// only when every user restored and verified; on any failure nothing is left behind.
    public func restore(users: [UserID], caseId: String, to target: String, restoreKey: P256PrivateKey, now: Int64,
                        jobs: Int = ProcessInfo.processInfo.activeProcessorCount,
                        progress: ProgressHandler? = nil) throws -> RestoreManyReport {
        let target = target.count > 1 && target.hasSuffix("/") ? String(target.dropLast()) : target
        if Posix.exists(target) { throw VaultError.targetExists(path: target) }
        guard !users.isEmpty else { throw VaultError.invalidArgument("no users to restore (case \(caseId) holds none)") }
        try requireTrust("restore")
        _ = try sweep(now: now)
        let parent = Posix.directoryName(target)
        _ = try Self.removeInterruptedRestores(in: parent)
        let staging = parent + "/." + Posix.baseName(target) + ".partial-" + Hex.encode(try SecureRandom.bytes(count: 6))
        try Posix.makeDirectory(staging, mode: 0o700)
        final class Shared: @unchecked Sendable {
            let lock = NSLock()
            var done = 0
            var reports: [RestoreReport] = []
            var progress: ProgressHandler?
            var bytes: Int64 = 0
        }
        let shared = Shared()
        shared.progress = progress
        let keyCache = PrivateKeyCache()
        do {
            let inputs = try restoreInputs(users: users, caseId: caseId)
            // Largest first (by the bytes of their live bundles; ties in id order): the last users to start are the
            // small ones, so workers finish together instead of one big user running on alone at the end.
            let bytes = Dictionary(uniqueKeysWithValues: users.map { u in
                (u.rawValue, inputs[u.rawValue]?.live.reduce(Int64(0)) { $0 + $1.size } ?? 0)
            })
            let users = users.enumerated().sorted { a, b in
                let x = bytes[a.element.rawValue] ?? 0, y = bytes[b.element.rawValue] ?? 0
                return x != y ? x > y : a.offset < b.offset
            }.map(\.element)
            let workers = max(1, min(jobs, users.count))
            // Threads, not concurrentPerform (at most one per core on Linux): more jobs than cores help when each
            // waits on an object store's downloads.
            try BlockingWorkers.forEach(users.count, workers: workers, stackSize: 1 << 22) { [self] index, notYetStarted in
                let user = users[index]
                // While other workers still have users to start, every core is busy: read this user on this thread
                // alone. Among the last `workers` users (or with one worker), cores fall idle as workers finish: let a
                // big bundle use them (issue 15: one big user uses every core, without oversubscribing while many
                // users restore in parallel).
                let pipeline: BundleReader.Pipeline = workers == 1 || notYetStarted < workers ? .automatic : .never
                var r = try restoreOne(user: user, caseId: caseId, to: staging + "/" + user.rawValue, restoreKey: restoreKey,
                                       keyCache: keyCache, syncParent: false, inputs: inputs[user.rawValue], pipeline: pipeline)
                r.target = target + "/" + user.rawValue
                shared.lock.withLock {
                    shared.reports.append(r)
                    shared.done += 1
                    shared.bytes += r.bundles.reduce(0) { $0 + $1.bytes }
                    shared.progress?(shared.done, users.count, user.rawValue, shared.bytes)
                }
            }
            try Posix.syncDirectory(staging)
            try Posix.renameNoReplace(staging, target)
            try Posix.syncDirectory(parent)
        } catch {
            try? Posix.removeTree(staging)
            throw error
        }
        var report = RestoreManyReport(caseId: caseId, target: target)
        report.users = shared.reports.sorted { $0.user < $1.user }
        try catalog.write { db in
            for r in report.users {
                try Catalog.audit(db, at: now, action: "restore", user: r.user, detail: [
                    "case": caseId, "bundles": r.bundles.map(\.bundleId).joined(separator: ","),
                ])
            }
        }
        return report
    }
}

extension Vault {
    /// Users that have at least one live bundle, in id order.
    public func liveUserIds() throws -> [UserID] {
        try catalog.read { db in
            try String.fetchAll(db, sql: "SELECT DISTINCT user_id FROM bundles WHERE state = 'live' ORDER BY user_id")
        }.compactMap(UserID.init)
    }
}
