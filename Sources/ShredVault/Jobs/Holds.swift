import Foundation
import GRDB
import VaultCrypto

public struct HoldReport: Sendable, Codable {
    public var user: String
    public var caseId: String
    public var action: String
    /// Bundles whose outer seal changed.
    public var resealedBundles = 0
    /// For release: the expiry day the bundles now have, if no hold remains.
    public var newExpiryDay: String?
    /// For release: deletion requests that ran because the last hold was released.
    public var executedDeletions: [String] = []
    public var remainingHolds: [String] = []
    public var sweep: SweepReport?
}

extension Vault {
    /// 1–128 ASCII letters, digits and `- _ . : /`.
    public static func validCaseId(_ caseId: String) -> Bool {
        !caseId.isEmpty && caseId.utf8.count <= 128 && caseId.allSatisfy { $0.isLetter || $0.isNumber || "-_.:/".contains($0) } && caseId.unicodeScalars.allSatisfy(\.isASCII)
    }

    /// G5: places a legal hold. Every live bundle of the user sealed to a day key is resealed (outer layer only)
    /// to the case's hold key, which `sweep` never destroys while the hold lasts. Needs the restore key.
    public func placeHold(user: UserID, caseId: String, reason: String, restoreKey: P256PrivateKey, now: Int64) throws -> HoldReport {
        let u = user.rawValue
        guard Self.validCaseId(caseId) else { throw VaultError.invalidArgument("--case must be 1-128 characters of letters, digits and - _ . : /") }
        guard !reason.trimmingCharacters(in: " \n\t").isEmpty, reason.utf8.count <= 2000 else {
            throw VaultError.invalidArgument("--reason must be non-empty text (at most 2000 bytes)")
        }
        try requireTrust("hold place")
        var report = HoldReport(user: u, caseId: caseId, action: "placed")
        report.sweep = try sweep(now: now)
        try placeHoldOne(user: user, caseId: caseId, reason: reason, restoreKey: restoreKey, now: now, report: &report)
        return report
    }

    /// Places one hold on several users (one sweep first); each user is resealed in its own transaction.
    public func placeHold(users: [UserID], caseId: String, reason: String, restoreKey: P256PrivateKey, now: Int64) throws -> [HoldReport] {
        guard Self.validCaseId(caseId) else { throw VaultError.invalidArgument("--case must be 1-128 characters of letters, digits and - _ . : /") }
        guard !reason.trimmingCharacters(in: " \n\t").isEmpty, reason.utf8.count <= 2000 else {
            throw VaultError.invalidArgument("--reason must be non-empty text (at most 2000 bytes)")
        }
        try requireTrust("hold place")
        let sweepReport = try sweep(now: now)
        return try users.map { user in
            var report = HoldReport(user: user.rawValue, caseId: caseId, action: "placed")
            report.sweep = sweepReport
            try placeHoldOne(user: user, caseId: caseId, reason: reason, restoreKey: restoreKey, now: now, report: &report)
            return report
        }
    }

    private func placeHoldOne(user: UserID, caseId: String, reason: String, restoreKey: P256PrivateKey, now: Int64,
                              report: inout HoldReport) throws {
        let u = user.rawValue
        if try catalog.activeHolds(user: u).contains(where: { $0.caseId == caseId }) {
            report.action = "already-placed"
            report.remainingHolds = try catalog.activeHolds(user: u).map(\.caseId)
            return
        }
        let live = try catalog.liveBundles(user: u)
        if live.isEmpty { throw try unrecoverableOrUnknown(u) }
        // G8: every bundle and seal is this vault's own before anything changes (§3.10).
        for b in live { try checkBundleWithoutHash(b) }
        let holdKey = try keystore.keyCreatingIfNeeded(role: .hold, subject: caseId, master: archiveKey, vaultId: vaultId, now: now)
        var updates: [ResealIntent.Update] = []
        for b in live where b.outerRole == KeyRole.day.rawValue {
            let dayPrivate = try privateKey(role: .day, id: b.outerKeyId, restoreKey: restoreKey, user: u)
            let resealed = try KeyHierarchy.resealOuter(Array(b.sealedDek!), binding: try b.binding(vaultId: vaultId),
                                                        from: (.day, dayPrivate), to: (.hold, holdKey.publicKey),
                                                        checkInner: { try self.verifyInner(b, $0) })
            updates.append(try resealUpdate(b, role: .hold, keyId: holdKey.keyId, sealed: resealed, expiryDay: b.expiryDay))
        }
        // Intent first; then sidecars, keyring mirror and one catalog transaction (`applyReseal`). A crash after the
        // intent is finished by the next job; before it, nothing but the case's new hold key changed (`converge`
        // destroys a hold key of a case that holds nobody).
        try recordAndApplyReseal(ResealIntent(action: "hold-place", user: u, caseId: caseId, reason: reason, at: now, updates: updates))
        try catalog.checkpoint()
        report.resealedBundles = updates.count
        report.remainingHolds = try catalog.activeHolds(user: u).map(\.caseId)
    }

    /// Releases a hold. Bundles sealed to this case's key are resealed to another active case of the user, or,
    /// when none remains, to the day key of max(original expiry day, release day); then deletion requests that
    /// the hold blocked are executed. The case's hold key is destroyed once no user is held under it.
    public func releaseHold(user: UserID, caseId: String, restoreKey: P256PrivateKey, now: Int64) throws -> HoldReport {
        try releaseHold(users: [user], caseId: caseId, restoreKey: restoreKey, now: now)[0]
    }

    /// Releases one case's hold on several users, one after the other (one sweep first), as `releaseHold(user:)` does
    /// for one. Every user must be held under the case: otherwise nothing changes (`holdNotFound` for the first that is
    /// not).
    public func releaseHold(users: [UserID], caseId: String, restoreKey: P256PrivateKey, now: Int64) throws -> [HoldReport] {
        try requireTrust("hold release")
        var seen = Set<String>()
        let users = users.filter { seen.insert($0.rawValue).inserted }
        for user in users where try !catalog.activeHolds(user: user.rawValue).contains(where: { $0.caseId == caseId }) {
            // A rerun of a release that was interrupted after it was recorded: finish that job (its case key's
            // destruction, the deletions it unblocked) before saying there is nothing left to release (§6.1).
            if try hasUnfinishedWork() { _ = try sweep(now: now) }
            throw VaultError.holdNotFound(user: user.rawValue, caseId: caseId)
        }
        let sweepReport = try sweep(now: now)
        return try users.map { user in
            var report = HoldReport(user: user.rawValue, caseId: caseId, action: "released")
            report.sweep = sweepReport
            try releaseHoldOne(user: user, caseId: caseId, restoreKey: restoreKey, now: now, report: &report)
            return report
        }
    }

    private func releaseHoldOne(user: UserID, caseId: String, restoreKey: P256PrivateKey, now: Int64, report: inout HoldReport) throws {
        let u = user.rawValue
        let today = CivilDay(unixSeconds: now)
        let active = try catalog.activeHolds(user: u)
        guard active.contains(where: { $0.caseId == caseId }) else {
            throw VaultError.holdNotFound(user: u, caseId: caseId)
        }
        let others = active.filter { $0.caseId != caseId }
        guard let holdStored = try keystore.key(role: .hold, subject: caseId) else {
            throw VaultError.unrecoverable(user: u, date: "an earlier date", reason: "hold key of case \(caseId) missing from the keystore")
        }
        let holdPrivate = try keystore.privateKey(holdStored, restoreKey: restoreKey, vaultId: vaultId)
        let live = try catalog.liveBundles(user: u).filter { $0.outerRole == KeyRole.hold.rawValue && $0.outerKeyId.map(Array.init) == holdStored.keyId }
        var updates: [ResealIntent.Update] = []
        for b in live {
            let binding = try b.binding(vaultId: vaultId)
            try checkBundleWithoutHash(b)
            let checkInner: (SecretBytes) throws -> Void = { try self.verifyInner(b, $0) }
            if let next = others.first {
                let nextKey = try keystore.keyCreatingIfNeeded(role: .hold, subject: next.caseId, master: archiveKey, vaultId: vaultId, now: now)
                let sealed = try KeyHierarchy.resealOuter(Array(b.sealedDek!), binding: binding, from: (.hold, holdPrivate),
                                                          to: (.hold, nextKey.publicKey), checkInner: checkInner)
                updates.append(try resealUpdate(b, role: .hold, keyId: nextKey.keyId, sealed: sealed, expiryDay: b.expiryDay))
            } else {
                let day = policy.expiryAfterRelease(originalExpiry: CivilDay(daysSinceEpoch: b.originalExpiryDay), releaseDay: today)
                let dayKey = try keystore.keyCreatingIfNeeded(role: .day, subject: day.iso, master: archiveKey, vaultId: vaultId, now: now)
                let sealed = try KeyHierarchy.resealOuter(Array(b.sealedDek!), binding: binding, from: (.hold, holdPrivate),
                                                          to: (.day, dayKey.publicKey), checkInner: checkInner)
                updates.append(try resealUpdate(b, role: .day, keyId: dayKey.keyId, sealed: sealed, expiryDay: day.daysSinceEpoch))
                report.newExpiryDay = day.iso
            }
        }
        // Intent first, then sidecars, keyring mirror, catalog; then the case key's destruction (its own intent,
        // recorded with the catalog change) and any deletion request the hold blocked. Every step after the intent
        // is keyless and is finished by the next job if this one is interrupted.
        let intent = ResealIntent(action: "hold-release", user: u, caseId: caseId, reason: nil, at: now, updates: updates,
                                  newExpiryDay: report.newExpiryDay)
        if let followUp = try recordAndApplyReseal(intent) {
            try reached("hold-release:catalog")
            try finishHoldKey(id: followUp, HoldKeyIntent(caseId: caseId, at: now))
        }
        report.resealedBundles = updates.count
        try catalog.checkpoint()
        report.remainingHolds = others.map(\.caseId)
        try reached("hold-release:key")
        if others.isEmpty {
            report.executedDeletions = try convergeDeletions(now: now)
        }
    }

    /// One bundle's new outer seal for a reseal intent, with its seal signature (§3.10).
    private func resealUpdate(_ b: BundleRecord, role: KeyRole, keyId: [UInt8], sealed: [UInt8], expiryDay: Int64) throws -> ResealIntent.Update {
        let signature = try sign(.seal, sealBody(bundleId: b.id, role: role, outerKeyId: keyId, expiryDay: expiryDay, outer: sealed))
        return .init(bundleId: b.id, location: b.location, role: role.rawValue, keyId: Hex.encode(keyId), sealed: Hex.encode(sealed),
                     expiryDay: expiryDay, sealSig: signature.map { Hex.encode($0.encoded) })
    }

    /// Whether an interrupted job left work that `converge` finishes: a pending intent, or an open deletion request
    /// that no hold blocks any more.
    func hasUnfinishedWork() throws -> Bool {
        if try !pendingIntents().isEmpty { return true }
        let open = try catalog.read { db in
            try String.fetchAll(db, sql: "SELECT DISTINCT user_id FROM deletion_requests WHERE state != 'done'")
        }
        return try open.contains { try catalog.activeHolds(user: $0).isEmpty }
    }

    public func holds(includeReleased: Bool) throws -> [HoldRecord] {
        try catalog.read { db in
            try HoldRecord.fetchAll(db, sql: includeReleased
                ? "SELECT * FROM holds ORDER BY placed_at, case_id, user_id"
                : "SELECT * FROM holds WHERE released_at IS NULL ORDER BY placed_at, case_id, user_id")
        }
    }

    /// The error for a user without live bundles: unrecoverable (with the date and reason the key was destroyed)
    /// or unknown.
    func unrecoverableOrUnknown(_ user: String) throws -> VaultError {
        if let tomb = try catalog.tombstone(user: user) {
            return .unrecoverable(user: user, date: CivilDay(unixSeconds: tomb.deletedAt).iso, reason: "deletion request \(tomb.requestId)")
        }
        let ended = try catalog.bundles(user: user).filter { $0.endedAt != nil }.max { $0.endedAt! < $1.endedAt! }
        if let ended, let at = ended.endedAt {
            return .unrecoverable(user: user, date: CivilDay(unixSeconds: at).iso, reason: ended.endReason == "expired"
                ? "archive limit: expired after \(ended.expiry.iso)" : ended.endReason ?? "shredded")
        }
        return .unknownUser(user)
    }
}
