import Foundation
import GRDB

/// What a sweep's `converge` would do, worked out without doing it (`sweep --dry-run`, vault-format.md §6.1).
struct ConvergencePlan {
    /// What `converge` would report: the leftovers it would remove, the intents it would finish (with the
    /// follow-ups they record), the deletion requests it would complete, the unused hold keys it would destroy.
    var report = ConvergeReport()
    /// Users whose deletion it would carry out: their bundles are gone before the sweep looks for expired ones.
    var shreddedUsers = Set<String>()
    /// Bundles whose outer seal a pending reseal changes: bundle id → (outer role, expiry day) afterwards.
    var reseals: [String: (role: String, expiryDay: Int64)] = [:]
}

extension Vault {
    /// The dry run of `sweep`: everything the real sweep would report, from the same state, with nothing changed.
    /// `report` holds the keys and the due bundles as the vault is now; convergence comes first in a real sweep, so
    /// what it would change (users shredded, bundles resealed) is applied to the due bundles here.
    func plannedSweep(_ report: SweepReport, due: [BundleRecord], today: CivilDay) throws -> SweepReport {
        var report = report
        let plan = try convergencePlan()
        if !plan.report.isEmpty { report.converged = plan.report }
        var expiring = Dictionary(due.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        if !plan.reseals.isEmpty {
            let resealed = try catalog.read { db in try BundleRecord.fetchAll(db, keys: Array(plan.reseals.keys)) }
            for b in resealed where b.state == .live {
                let (role, expiryDay) = plan.reseals[b.id]!
                var after = b
                after.outerRole = role
                after.expiryDay = expiryDay
                expiring[b.id] = role == KeyRole.day.rawValue && expiryDay < today.daysSinceEpoch ? after : nil
            }
        }
        for (id, b) in expiring where plan.shreddedUsers.contains(b.userId) { expiring[id] = nil }
        report.expiredBundles = expiring.count
        report.freedBytes = expiring.values.reduce(0) { $0 + $1.size }
        return report
    }

    /// `converge` step by step (vault-format.md §6.1), on the state it would find, changing nothing: the same order,
    /// the same rules, the holds as the pending intents leave them.
    func convergencePlan() throws -> ConvergencePlan {
        var plan = ConvergencePlan()
        plan.report.removedLeftovers = try leftoverFiles()
        struct Held: Hashable { var caseId: String; var user: String }
        var active = Set(try catalog.read { db in
            try Row.fetchAll(db, sql: "SELECT case_id, user_id FROM holds WHERE released_at IS NULL").map { Held(caseId: $0["case_id"], user: $0["user_id"]) }
        })
        // Cases whose hold key a `destroy-hold-key` intent handles (destroyed there if the case holds nobody); those a
        // release records run after every intent pending now.
        var holdKeyCases = Set<String>(), followUps: [String] = []
        for (id, kind, payload) in try pendingIntents() {
            func decode<T: Decodable>(_ type: T.Type) throws -> T {
                do { return try JSONDecoder().decode(type, from: Data(payload.utf8)) } catch {
                    throw VaultError.malformedInput(path: catalog.path, line: 1, reason: "the record of unfinished job \(id) (\(kind)) is not valid JSON of its kind")
                }
            }
            switch IntentKind(rawValue: kind) {
            case .reseal:
                let intent = try decode(ResealIntent.self)
                plan.report.resumedIntents.append(kind)
                let held = Held(caseId: intent.caseId, user: intent.user)
                if intent.action == "hold-release" {
                    active.remove(held)
                    followUps.append(intent.caseId)
                } else {
                    active.insert(held)
                }
                for up in intent.updates { plan.reseals[up.bundleId] = (up.role, up.expiryDay) }
            case .destroyHoldKey:
                holdKeyCases.insert(try decode(HoldKeyIntent.self).caseId)
                plan.report.resumedIntents.append(kind)
            case nil:
                throw VaultError.malformedInput(path: catalog.path, line: 1,
                                                reason: "unfinished job of unknown kind '\(kind)' (written by a newer shredvault?); upgrade shredvault")
            }
        }
        for caseId in followUps {
            plan.report.resumedIntents.append(IntentKind.destroyHoldKey.rawValue)
            holdKeyCases.insert(caseId)
        }
        // Deletion requests, as `convergeDeletions` takes them: per user, in the order received.
        let open = try catalog.read { db in
            try DeletionRequestRecord.fetchAll(db, sql: "SELECT * FROM deletion_requests WHERE state != 'done' ORDER BY received_at, request_id")
        }
        for request in open where !plan.shreddedUsers.contains(request.userId) && !active.contains(where: { $0.user == request.userId }) {
            plan.shreddedUsers.insert(request.userId)
            plan.report.completedDeletions += open.filter { $0.userId == request.userId }.map(\.requestId)
        }
        // Hold keys of cases that hold nobody, except those a `destroy-hold-key` intent destroys first.
        let activeCases = Set(active.map(\.caseId))
        plan.report.destroyedHoldKeys = try keystore.keys(role: .hold).map(\.subject).filter { !activeCases.contains($0) && !holdKeyCases.contains($0) }
        return plan
    }
}
