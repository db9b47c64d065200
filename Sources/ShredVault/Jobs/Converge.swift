#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GRDB

/// What `converge` finished before a job's own work (vault-format.md §6.1).
public struct ConvergeReport: Sendable, Codable, Equatable {
    /// Intents of interrupted jobs rolled forward, by kind.
    public var resumedIntents: [String] = []
    /// Deletion requests completed (interrupted, or no longer blocked by a hold).
    public var completedDeletions: [String] = []
    /// Hold keys of cases that hold nobody, destroyed (an interrupted release or hold placement).
    public var destroyedHoldKeys: [String] = []
    /// Temporary files an interrupted job left, removed (vault-relative or absolute paths).
    public var removedLeftovers: [String] = []
    /// Deletion receipts issued late (§6.3), by request id: requests completed before the vault could sign.
    public var lateReceipts: [String] = []

    public var isEmpty: Bool { self == ConvergeReport() }
}

/// A resealing of outer DEK layers (hold place / hold release), recorded before its first change.
/// Everything in it is public or sealed: rolling it forward needs no key.
struct ResealIntent: Codable {
    struct Update: Codable {
        var bundleId: String
        var location: String
        var role: String
        var keyId: String
        var sealed: String
        var expiryDay: Int64
        /// The new seal's signature (§3.10); absent in a vault without a trust record.
        var sealSig: String?
    }
    var action: String
    var user: String
    var caseId: String
    var reason: String?
    var at: Int64
    var updates: [Update]
    var newExpiryDay: String?
}

/// After a release: destroy the case's hold key once the case holds nobody.
struct HoldKeyIntent: Codable {
    var caseId: String
    var at: Int64
}

enum IntentKind: String {
    case reseal
    case destroyHoldKey = "destroy-hold-key"
}

extension Vault {
    /// Rolls forward everything an interrupted job left, before any job changes the vault (every mutating job runs
    /// it through `sweep`, and `hold`, `delete`, `restore`, `archive`, `backup`, `keystore` call that first):
    /// 1. removes temporary files (a killed snapshot, restore, atomic write or copy) from the vault and keystore
    ///    directories; 2. finishes recorded intents in order; 3. completes every deletion request that is pending
    ///    (interrupted) or blocked by holds that no longer exist, issues the receipts completed requests lack and
    ///    mirrors receipts into the keyring; 4. destroys hold keys of cases that hold nobody.
    /// Each step is idempotent, so a crash inside `converge` is finished by the next one.
    @discardableResult
    public func converge(now: Int64) throws -> ConvergeReport {
        var report = ConvergeReport()
        // A remote store that does not answer, refuses the credentials or lacks the bucket stops the job here, with
        // one line (exit 14), before anything changes (§6.5 "Faults").
        try store.probe()
        try convergeRoot()
        report.removedLeftovers = try removeLeftovers() + convergeStore() + convergeSourceStaging()
        try mirrorHoldsToKeyring()
        // Oldest first, until none is left: finishing one may record its follow-up (a release's key destruction).
        // Each step deletes its intent in the transaction that completes it (or throws), so this ends; the bound
        // only guards against a defect looping for ever.
        var steps = 0
        while let (id, kind, payload) = try pendingIntents().first {
            steps += 1
            guard steps <= 100_000 else {
                throw VaultError.database(path: catalog.path, message: "unfinished job \(id) (\(kind)) did not complete when rolled forward")
            }
            try resumeIntent(id: id, kind: kind, payload: payload, now: now)
            report.resumedIntents.append(kind)
        }
        report.completedDeletions = try convergeDeletions(now: now)
        report.lateReceipts = try issueMissingReceipts(now: now)
        try mirrorReceipts()
        report.destroyedHoldKeys = try destroyUnusedHoldKeys(now: now)
        return report
    }

    // MARK: - Intents

    /// Whether an interrupted job left an intent that `converge` has not finished yet.
    func hasPendingIntents() throws -> Bool {
        try catalog.read { db in try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM intents)") ?? false }
    }

    func pendingIntents() throws -> [(Int64, String, String)] {
        try catalog.read { db in
            try Row.fetchAll(db, sql: "SELECT id, kind, payload FROM intents ORDER BY id").map { ($0["id"], $0["kind"], $0["payload"]) }
        }
    }

    static func encodeIntent<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func insertIntent(_ db: Database, kind: IntentKind, at: Int64, payload: String) throws -> Int64 {
        try db.execute(sql: "INSERT INTO intents (kind, created_at, payload) VALUES (?, ?, ?)", arguments: [kind.rawValue, at, payload])
        return db.lastInsertedRowID
    }

    private func resumeIntent(id: Int64, kind: String, payload: String, now: Int64) throws {
        /// A record the catalog cannot have written is bad data (exit 65), not an internal error.
        func decode<T: Decodable>(_ type: T.Type) throws -> T {
            do { return try JSONDecoder().decode(type, from: Data(payload.utf8)) } catch is DecodingError {
                throw VaultError.malformedInput(path: catalog.path, line: 1, reason: "the record of unfinished job \(id) (\(kind)) is not valid JSON of its kind")
            }
        }
        switch IntentKind(rawValue: kind) {
        case .reseal:
            try applyReseal(id: id, try decode(ResealIntent.self))
        case .destroyHoldKey:
            try finishHoldKey(id: id, try decode(HoldKeyIntent.self))
        case nil:
            throw VaultError.malformedInput(path: catalog.path, line: 1,
                                            reason: "unfinished job of unknown kind '\(kind)' (written by a newer shredvault?); upgrade shredvault")
        }
    }

    /// Records a reseal intent (one catalog transaction), then applies it. A crash anywhere after the record is
    /// finished by the next job's `converge`.
    func recordAndApplyReseal(_ intent: ResealIntent) throws -> Int64? {
        let payload = try Self.encodeIntent(intent)
        let id = try catalog.write { db in try Self.insertIntent(db, kind: .reseal, at: intent.at, payload: payload) }
        try reached("\(intent.action):intent")
        return try applyReseal(id: id, intent)
    }

    /// Rolls a reseal forward: (1) every sidecar gets the new outer seal (so a catalog lost now is rebuilt by
    /// `reindex` in the new state), (2) the keyring's hold mirror, (3) one catalog transaction: hold row, bundle
    /// rows, audit, and the intent replaced by its follow-up (a release's hold-key destruction). Returns the
    /// follow-up intent's id, if any.
    @discardableResult
    func applyReseal(id: Int64, _ intent: ResealIntent) throws -> Int64? {
        var directories = Set<String>()
        let rows = try catalog.read { db in
            try BundleRecord.fetchAll(db, keys: intent.updates.map(\.bundleId))
        }
        let byId = Dictionary(rows.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for up in intent.updates {
            guard let role = KeyRole(rawValue: up.role), let keyId = Hex.decode(up.keyId), let sealed = Hex.decode(up.sealed),
                  up.sealSig == nil || VaultSignature(hex: up.sealSig) != nil else {
                throw VaultError.malformedInput(path: catalog.path, line: 1, reason: "unfinished \(intent.action) of \(intent.user) is malformed")
            }
            // A bundle that is no longer live (never the case right after the intent) keeps no sidecar.
            // In an object store (§6.5) a live row's object is there (archive commits only after its upload was checked).
            guard var row = byId[up.bundleId] else { continue }
            let present: Bool = store.isLocal ? Posix.exists(absolute(up.location)) : row.state == .live
            guard present else { continue }
            row.outerRole = role.rawValue
            row.outerKeyId = Data(keyId)
            row.sealedDek = Data(sealed)
            row.sealSig = VaultSignature(hex: up.sealSig).map { Data($0.encoded) }
            try writeSidecar(bundleLocation: up.location, row.sidecar!, syncDirectory: false)
            if store.isLocal { directories.insert(Posix.directoryName(absolute(up.location))) }
        }
        for d in directories.sorted() { try Posix.syncDirectory(d) }
        try reached("\(intent.action):sidecars")
        let releasing = intent.action == "hold-release"
        if releasing {
            try keyring.mirrorHoldRelease(caseId: intent.caseId, user: intent.user, at: intent.at)
        } else {
            try keyring.mirrorHold(caseId: intent.caseId, user: intent.user, reason: intent.reason ?? "", placedAt: intent.at)
        }
        return try catalog.write { db -> Int64? in
            if releasing {
                try db.execute(sql: "UPDATE holds SET released_at = ? WHERE case_id = ? AND user_id = ? AND released_at IS NULL",
                               arguments: [intent.at, intent.caseId, intent.user])
            } else {
                // A case released earlier may be placed again: the row is reopened (the audit log keeps the history).
                try db.execute(sql: """
                    INSERT INTO holds (case_id, user_id, reason, placed_at, released_at) VALUES (?, ?, ?, ?, NULL)
                    ON CONFLICT (case_id, user_id) DO UPDATE SET reason = excluded.reason, placed_at = excluded.placed_at, released_at = NULL
                    """, arguments: [intent.caseId, intent.user, intent.reason ?? "", intent.at])
            }
            for up in intent.updates {
                try db.execute(sql: """
                    UPDATE bundles SET outer_role = ?, outer_key_id = ?, sealed_dek = ?, expiry_day = ?, seal_sig = ? WHERE id = ? AND state = 'live'
                    """, arguments: [up.role, Data(Hex.decode(up.keyId)!), Data(Hex.decode(up.sealed)!), up.expiryDay,
                                     VaultSignature(hex: up.sealSig).map { Data($0.encoded) }, up.bundleId])
            }
            var detail = ["case": intent.caseId, "bundles": String(intent.updates.count)]
            if releasing { detail["expiryDay"] = intent.newExpiryDay ?? "" }
            try Catalog.audit(db, at: intent.at, action: releasing ? "hold-release" : "hold-place", user: intent.user, detail: detail)
            try db.execute(sql: "DELETE FROM intents WHERE id = ?", arguments: [id])
            guard releasing else { return nil }
            return try Self.insertIntent(db, kind: .destroyHoldKey, at: intent.at,
                                         payload: try Self.encodeIntent(HoldKeyIntent(caseId: intent.caseId, at: intent.at)))
        }
    }

    /// Destroys the case's hold key if the case holds nobody any more (ledger first), then drops the intent.
    func finishHoldKey(id: Int64, _ intent: HoldKeyIntent) throws {
        let active = try catalog.read { db in
            try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM holds WHERE case_id = ? AND released_at IS NULL)", arguments: [intent.caseId]) ?? false
        }
        if !active, let key = try keystore.key(role: .hold, subject: intent.caseId) {
            try recordErasures([key], now: intent.at, reason: "hold \(intent.caseId) released")
            try destroyKeys([key.keyId], in: keystore)
        }
        try catalog.write { db in try db.execute(sql: "DELETE FROM intents WHERE id = ?", arguments: [id]) }
    }

    // MARK: - Deletion requests

    /// Completes every open deletion request whose user no hold covers (an interrupted `delete`, or a request
    /// blocked by holds since released) and keeps the blocking cases of the others current. Returns the request ids
    /// completed.
    func convergeDeletions(now: Int64) throws -> [String] {
        let open = try catalog.read { db in
            try DeletionRequestRecord.fetchAll(db, sql: "SELECT * FROM deletion_requests WHERE state != 'done' ORDER BY received_at, request_id")
        }
        var completed: [String] = []
        var seen = Set<String>()
        for request in open where !seen.contains(request.userId) {
            seen.insert(request.userId)
            let requests = open.filter { $0.userId == request.userId }
            let holds = try catalog.activeHolds(user: request.userId).map(\.caseId)
            if holds.isEmpty {
                _ = try shredUser(request.userId, requestId: request.requestId, now: now)
                completed += requests.map(\.requestId)
            } else {
                let blockedBy = holds.joined(separator: ",")
                try catalog.write { db in
                    for r in requests where r.state != .blocked || r.blockedBy != blockedBy {
                        try db.execute(sql: "UPDATE deletion_requests SET state = 'blocked', blocked_by = ? WHERE request_id = ?",
                                       arguments: [blockedBy, r.requestId])
                        try Catalog.audit(db, at: now, action: "deletion-blocked", user: r.userId, detail: ["request": r.requestId, "holds": blockedBy])
                    }
                }
            }
        }
        return completed
    }

    /// Hold keys whose case holds nobody and that no unfinished intent still needs: left by a hold placement
    /// interrupted before it recorded its intent, or a release interrupted before its key destruction.
    func destroyUnusedHoldKeys(now: Int64) throws -> [String] {
        let (active, pending) = try catalog.read { db in
            (try String.fetchSet(db, sql: "SELECT DISTINCT case_id FROM holds WHERE released_at IS NULL"),
             try Int.fetchOne(db, sql: "SELECT count(*) FROM intents") ?? 0)
        }
        guard pending == 0 else { return [] }
        let unused = try keystore.keys(role: .hold).filter { !active.contains($0.subject) }
        guard !unused.isEmpty else { return [] }
        try recordErasures(unused, now: now, reason: "hold key of a case that holds nobody")
        try destroyKeys(unused.map(\.keyId), in: keystore)
        return unused.map(\.subject)
    }

    // MARK: - Keyring hold mirror

    /// Copies holds the keyring's mirror lacks from the catalog (vaults made before the mirror). Never overwrites a
    /// mirrored hold: the mirror is written first at every change, and a catalog restored from a backup may be older.
    func mirrorHoldsToKeyring() throws {
        let holds = try catalog.read { db in try HoldRecord.fetchAll(db, sql: "SELECT * FROM holds") }
        guard !holds.isEmpty else { return }
        let mirrored = Set(try keyring.mirroredHolds().map { "\($0.caseId)\u{0}\($0.userId)" })
        try keyring.mirrorMissingHolds(holds.filter { !mirrored.contains("\($0.caseId)\u{0}\($0.userId)") })
    }

    // MARK: - Temporary files

    /// Names the vault's own temporary files carry: `.NAME.partial-<12 hex>` (bundle writer, copies, restores,
    /// sealed snapshots), `NAME.tmp-<pid>-<tid>` (atomic small-file writes), `.snapshot-*`/`.restore-*` (keystore
    /// copies being built).
    static func isTemporaryName(_ name: String) -> Bool {
        if name.hasPrefix("."), let r = name.range(of: ".partial-", options: .backwards) {
            let tail = name[r.upperBound...]
            return tail.count == 12 && tail.allSatisfy(\.isHexDigit)
        }
        if name.range(of: ".tmp-") != nil, name.split(separator: "-").count >= 3 {
            let tail = name[name.range(of: ".tmp-", options: .backwards)!.upperBound...].split(separator: "-")
            return tail.count == 2 && tail.allSatisfy { $0.allSatisfy(\.isNumber) }
        }
        return name.hasPrefix(".snapshot-") || name.hasPrefix(".restore-")
    }

    /// The vault's temporary files present now (vault root, keystore directory, bundle tree), absolute paths.
    func leftoverFiles() throws -> [String] {
        var out: [String] = []
        for directory in Set([root, Posix.directoryName(keystore.path)]) {
            for name in try Posix.listDirectory(directory) where Self.isTemporaryName(name) { out.append(directory + "/" + name) }
        }
        out += try bundleTreeFiles().filter { Self.isTemporaryName(Posix.baseName($0)) }.map(absolute)
        return out.sorted()
    }

    /// Removes what an interrupted restore left in `parent`: its private staging directories
    /// (`.NAME.partial-<12 hex>`, mode 0700), which may hold plaintext. Every restore does this first, so a kill
    /// in the middle of one leaves nothing readable past the next restore into the same parent.
    static func removeInterruptedRestores(in parent: String) throws -> [String] {
        guard let st = try Posix.status(parent), st.kind == .directory else { return [] }
        let staging = try Posix.listDirectory(parent).filter { $0.hasPrefix(".") && $0.contains(".partial-") && isTemporaryName($0) }.map { parent + "/" + $0 }
            .filter { guard let entry = try Posix.status($0) else { return false }; return entry.kind == .directory && entry.mode & 0o777 == 0o700 }
        return try removeSyncingParents(staging)
    }

    /// Removes `.NAME.partial-<12 hex>` files beside `output` that an interrupted write of the same file left.
    static func removeInterruptedWrites(of output: String) throws -> [String] {
        let parent = Posix.directoryName(output), prefix = "." + Posix.baseName(output) + ".partial-"
        guard let st = try Posix.status(parent), st.kind == .directory else { return [] }
        let partial = try Posix.listDirectory(parent).filter { $0.hasPrefix(prefix) && isTemporaryName($0) }.map { parent + "/" + $0 }
            .filter { try Posix.status($0)?.kind == .regular }
        return try removeSyncingParents(partial)
    }

    /// Removes the vault's temporary files (each may hold a plaintext keystore copy or unfinished bundle).
    func removeLeftovers() throws -> [String] { try Self.removeSyncingParents(try leftoverFiles()) }

    /// Removes each path (a file or a whole tree), then fsyncs every parent directory once; returns the paths.
    static func removeSyncingParents(_ paths: [String]) throws -> [String] {
        for path in paths { try Posix.removeTree(path) }
        for d in Set(paths.map(Posix.directoryName)).sorted() { try Posix.syncDirectory(d) }
        return paths
    }
}
