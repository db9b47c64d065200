import Foundation
import GRDB

/// The clock of a production vault (vault-format.md §6.4): the vault remembers the latest time a job that changed it
/// ran — in the catalog's `meta` and in the keyring, so a rebuilt catalog does not forget it — and every such job
/// first judges its own clock against it (`ClockGuard`). A drill vault's clock is free.
extension Vault {
    /// Catalog `meta` key holding the latest job time (Unix seconds).
    static let latestJobTimeMeta = "latestJobAt"

    /// The latest time a job that changed this vault ran, or an operator accepted the clock: the later of the catalog's
    /// and the keyring's record. A vault made before the guard has neither; its audit log's latest time stands in.
    public func latestJobTime() throws -> Int64? {
        let recorded = try catalog.read { db -> Int64? in
            if let text = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [Self.latestJobTimeMeta]) {
                return Int64(text)
            }
            return try Int64.fetchOne(db, sql: "SELECT max(at) FROM audit")
        }
        return [recorded, try keyring.latestJobTime()].compactMap { $0 }.max()
    }

    /// The guard of a production vault, with its bound from the policy.
    var clockGuard: ClockGuard { ClockGuard(maxJumpDays: policy.maxClockJumpDays) }

    /// Admits the clock of a job that changes the vault, before its first change. In a production vault a clock more
    /// than `ClockGuard.backwardToleranceSeconds` behind the latest job time, or more than `maxClockJumpDays` ahead of
    /// it, is refused (`clockRefused`: nothing changes) unless the operator confirmed it (`acceptClock`), which is
    /// audited and makes `now` the latest job time; otherwise the latest job time moves up to `now`. A drill vault
    /// admits any clock and remembers none. Every vault refuses a time outside 1970-01-01…9999-12-31.
    func admitClock(now: Int64) throws {
        if admittedClock == now { return }
        guard Timestamp.isRepresentable(now) else {
            throw VaultError.invalidArgument("the clock \(Timestamp.format(now)) is outside 1970-01-01 to 9999-12-31, the days a vault can hold")
        }
        if config.isDrill {
            admittedClock = now
            return
        }
        let latest = try latestJobTime()
        let verdict = clockGuard.judge(now: now, latest: latest)
        if !verdict.isPlausible, let latest {
            guard acceptClock else { throw Self.clockRefusal(verdict, now: now, latest: latest, maxJumpDays: policy.maxClockJumpDays) }
            try keyring.setLatestJobTime(now)
            try catalog.write { db in
                try Catalog.setMeta(db, Self.latestJobTimeMeta, String(now))
                try Catalog.audit(db, at: now, action: "accept-clock", user: nil, detail: [
                    "latestJobAt": Timestamp.format(latest), "now": Timestamp.format(now),
                    "direction": { if case .behind = verdict { return "behind" } else { return "ahead" } }(),
                ])
            }
        } else if latest.map({ now > $0 }) ?? true {
            try keyring.setLatestJobTime(now)
            try catalog.write { db in try Catalog.setMeta(db, Self.latestJobTimeMeta, String(now)) }
        }
        admittedClock = now
    }

    /// The refusal of a clock the guard judged implausible: what is wrong, that nothing changed, and what to do.
    static func clockRefusal(_ verdict: ClockGuard.Verdict, now: Int64, latest: Int64, maxJumpDays: Int) -> VaultError {
        .clockRefused(clockProblem(verdict, now: now, latest: latest, maxJumpDays: maxJumpDays)
            + "; nothing was changed. Fix the host's clock, or, if this time is right, run the job again with --accept-clock (audited)")
    }

    /// What is wrong with a clock the guard judged implausible (also for `status` and `check`, which refuse nothing).
    static func clockProblem(_ verdict: ClockGuard.Verdict, now: Int64, latest: Int64, maxJumpDays: Int) -> String {
        if case .behind(let seconds) = verdict {
            return "the clock (\(Timestamp.format(now))) is \(ClockGuard.describe(seconds: seconds)) behind the latest job of this vault "
                + "(\(Timestamp.format(latest))): a job on a clock that went back would archive into days whose keys are already destroyed"
        }
        return "the clock (\(Timestamp.format(now))) is \(ClockGuard.describe(seconds: now - latest)) ahead of the latest job of this vault "
            + "(\(Timestamp.format(latest))), more than the \(maxJumpDays) days a production vault accepts: a sweep would destroy the "
            + "day keys of every day in between at once"
    }

    /// The refusal of a simulated clock (`--now`, `SHREDVAULT_NOW`) by a job that would change a production vault.
    public static func simulatedClockRefusal(source: String) -> VaultError {
        .clockRefused("""
            \(source) sets a simulated clock, which a production vault refuses for a job that changes it (its destructions \
            follow the clock); nothing was changed. Unset it to use the real clock; simulate time in a drill copy instead \
            (`shredvault drill --from VAULT --to DIR`, or `shredvault init --drill`). Read-only commands and --dry-run take it
            """)
    }

    /// How `now` compares with the latest job time, for `status` and `check` (nil for a drill vault).
    public func clockVerdict(now: Int64) throws -> ClockGuard.Verdict? {
        config.isDrill ? nil : clockGuard.judge(now: now, latest: try latestJobTime())
    }
}
