import ArgumentParser

struct PolicyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "policy",
        abstract: "Show the retention policy, or change it after init (holidays, and limits that only shorten).",
        discussion: """
            The policy lives in the vault's config. `policy set` changes it as a job that changes the vault: it \
            needs the job credential ($SHREDVAULT_JOB_KEY), passes the clock guard, runs the sweep first, and \
            records every changed field in the audit log (action policy-set, field, old and new value).

            A change may make the vault forget sooner, never later: --archive-days (at most 90), \
            --inactive-days, --deletion-business-days and --backup-days can only be lowered. Bundles already \
            archived keep their expiry days and recorded deletion requests their deadlines; holidays change the \
            deadlines of later requests only. A refused change changes nothing.

            Example:
              shredvault policy set --add-holiday 2027-12-24 --add-holiday 2027-12-25
              shredvault policy show --json
            """,
        subcommands: [PolicyShow.self, PolicySet.self]
    )
}
