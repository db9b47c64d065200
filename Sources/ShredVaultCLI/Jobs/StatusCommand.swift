import ArgumentParser
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

            Example:
              shredvault status --vault /srv/shredvault
              shredvault status --json | jq .deletionRequestsOverdue
            """)

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reportingErrors {
            let vault = try global.openVault(readOnly: true)
            let s = try vault.status(now: global.now)
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
        }
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
    }

    private func describe(_ r: VaultStatus.Request) -> String {
        "request \(r.requestId) for \(r.user): deadline \(r.deadline), \(r.state)" + (r.blockedBy.map { " by legal hold \($0)" } ?? "")
    }
}
