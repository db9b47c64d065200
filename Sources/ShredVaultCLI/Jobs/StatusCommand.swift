import ArgumentParser
import Foundation
import ShredVault

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show what the vault holds and what is due: expiries, holds, deletion deadlines, keys. Needs no key.",
        discussion: """
            Warns (on stderr, exit 0) when a live bundle is past its expiry day, i.e. the sweep is overdue, and \
            when a deletion request is past its deadline. Counts come from indexed catalog queries, so status is \
            fast on large vaults. Also shows when the audit log's signed head was last exported (`shredvault audit \
            head`) and how many records came after it: those are the ones a truncation could remove unnoticed.

            HEALTH
              Every status ends with a health line (in JSON a "health" object with
              "healthy" and "reasons", each reason a stable "kind" and a "message").
              With --health, status exits 20 when the vault is unhealthy, with one
              "shredvault: unhealthy: KIND: MESSAGE" line on stderr per reason:
                deletion-overdue  an open deletion request is past its deadline
                sweep-late        a live bundle is past its expiry day, or no sweep
                                  ran since the start of yesterday (UTC)
                archive-stale     no successful archive within --max-archive-age
                backup-stale      no successful backup within --max-backup-age
                clock-refused     the clock guard would refuse a job (exit 12)
                check-failed      the last `shredvault check` found violations
              A vault younger than a threshold is not held to it. Without --health,
              status exits 0 whatever the verdict (as before).

            Example:
              shredvault status --vault /srv/shredvault
              shredvault status --json | jq .deletionRequestsOverdue
              shredvault status --health --max-backup-age 2d || alert
            """)

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Exit 20 when the vault is unhealthy (for monitoring), one line per reason on stderr; see HEALTH.")
    var health = false

    @Option(name: .customLong("max-archive-age"),
            help: ArgumentHelp("Unhealthy when the last successful archive is older than this: N followed by s, m, h or d (default: 2d).", valueName: "AGE"))
    var maxArchiveAge: String?

    @Option(name: .customLong("max-backup-age"),
            help: ArgumentHelp("Unhealthy when the last successful backup is older than this: N followed by s, m, h or d (default: 8d).", valueName: "AGE"))
    var maxBackupAge: String?

    func validate() throws {
        if let a = maxArchiveAge, Self.seconds(a) == nil { throw ValidationError("--max-archive-age '\(a)' is not an age such as 36h or 2d") }
        if let a = maxBackupAge, Self.seconds(a) == nil { throw ValidationError("--max-backup-age '\(a)' is not an age such as 8d") }
    }

    /// "90s", "30m", "36h", "2d" (a bare number is seconds) as seconds, nil if malformed or not positive.
    static func seconds(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400]
        var digits = Substring(text)
        var unit: Int64 = 1
        if let last = text.last, let u = units[last] { unit = u; digits = digits.dropLast() }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber), let n = Int64(digits), n > 0,
              n <= Int64.max / unit else { return nil }
        return n * unit
    }

    func run() throws {
        let job = JobRun("status", global)
        try reportingErrors { try job.run {
            let vault = try global.openVault(readOnly: true)
            var s = try vault.status(now: global.now)
            let thresholds = HealthThresholds(maxArchiveAgeSeconds: maxArchiveAge.flatMap(Self.seconds) ?? HealthThresholds.defaultArchiveAge,
                                              maxBackupAgeSeconds: maxBackupAge.flatMap(Self.seconds) ?? HealthThresholds.defaultBackupAge)
            let verdict = try vault.health(now: global.now, thresholds: thresholds)
            s.health = verdict
            if global.json {
                try Output.json(s)
            } else {
                printText(s)
            }
            if s.overdueBundles > 0 {
                Output.warning("\(Output.plural(s.overdueBundles, "live bundle")) past the expiry day: run `shredvault sweep` now (archive limit G1)")
            }
            if !s.deletionRequestsOverdue.isEmpty {
                Output.warning("\(Output.plural(s.deletionRequestsOverdue.count, "deletion request")) past the deadline (see above)")
            }
            if let problem = s.clockProblem { Output.warning(problem) }
            for p in s.sourcesPendingRemoval {
                Output.warning("user \(p.user) was archived (bundle \(p.bundleId)) but its source is still in the export: "
                               + "an archive run could not remove it; fix that and run archive again")
            }
            try job.writeMetrics(vault)
            if health, !verdict.healthy {
                for r in verdict.reasons { FileHandle.standardError.write(Data("shredvault: unhealthy: \(r.kind): \(r.message)\n".utf8)) }
                throw ExitCode(ExitCodes.unhealthy)
            }
        } }
    }

    private func printText(_ s: VaultStatus) {
        let p = s.policy
        print("vault \(s.vaultId), \(s.today)" + (s.drill ? " — DRILL vault (simulated clocks allowed; not production data)" : ""))
        print("policy:     bundles live \(p.archiveDays) days; archive after \(p.inactiveDays) inactive days; deletions due in \(p.deletionBusinessDays) business days"
              + (p.holidays.isEmpty ? "" : " (holidays: \(p.holidays.joined(separator: ", ")))"))
        print("live:       \(Output.plural(s.liveBundles, "bundle")) of \(Output.plural(s.liveUsers, "user")), \(Output.bytes(s.liveBundleBytes)) "
              + "(\(Output.bytes(s.livePlaintextBytes)) of files)")
        print("next expiry: " + (s.nextExpiryDay.map { "\($0) (bundles expiring that day are destroyed when it ends)" } ?? "none"))
        if s.overdueBundles > 0 {
            print("OVERDUE:    \(Output.plural(s.overdueBundles, "bundle")) past the expiry day; run `shredvault sweep`")
        }
        print("holds:      \(Output.plural(s.activeHolds, "active hold")), \(Output.plural(s.heldBundles, "held bundle"))")
        print("ended:      \(s.expiredBundles) expired, \(s.shreddedBundles) shredded bundles; \(Output.plural(s.tombstones, "deleted user"))")
        print("deletion requests: \(s.openDeletionRequests) open, \(s.deletionRequestsDueSoon.count) due within 2 days, \(s.deletionRequestsOverdue.count) overdue")
        for r in s.deletionRequestsOverdue { print("  OVERDUE  " + describe(r)) }
        for r in s.deletionRequestsDueSoon { print("  due soon " + describe(r)) }
        let roles = ["day", "user", "hold", "epoch"].filter { s.keys[$0] != nil } + s.keys.keys.filter { !["day", "user", "hold", "epoch"].contains($0) }.sorted()
        print("keys:       " + (roles.isEmpty ? "none" : roles.map { "\(s.keys[$0]!) \($0)" }.joined(separator: ", ")))
        if !s.sourcesPendingRemoval.isEmpty {
            print("sources not removed: \(s.sourcesPendingRemoval.map(\.user).joined(separator: ", ")) (archived; still in the export)")
        }
        print("last sweep: \(s.lastSweepAt ?? "never")")
        if !s.drill {
            print("clock:      latest job \(s.latestJobAt ?? "never"); jobs refuse a clock more than 5 minutes behind it or more than "
                  + "\(p.maxClockJumpDays) days ahead (--accept-clock)" + (s.clockProblem == nil ? "" : "; REFUSED now, see the warning"))
        }
        print("audit log:  \(Output.plural(s.auditRecords, "record")) (verify with `shredvault audit verify`)")
        if let at = s.auditHeadExportedAt, let age = s.auditHeadExportAgeSeconds, let seq = s.auditHeadExportedSeq {
            print("audit head: last exported \(at), \(Output.age(age)) ago (record \(seq); \(Output.plural(s.auditRecordsAfterExportedHead ?? 0, "record")) after it)")
        } else {
            print("audit head: never exported (`shredvault audit head --out FILE`, stored outside the vault, proves later that no record was removed)")
        }
        if let h = s.health {
            print("health:     " + (h.healthy ? "healthy" : "UNHEALTHY (\(Output.plural(h.reasons.count, "reason")))"))
            for r in h.reasons { print("  \(r.kind): \(r.message)") }
        }
    }

    private func describe(_ r: VaultStatus.Request) -> String {
        "request \(r.requestId) for \(r.user): deadline \(r.deadline), \(r.state)" + (r.blockedBy.map { " by legal hold \($0)" } ?? "")
    }
}
