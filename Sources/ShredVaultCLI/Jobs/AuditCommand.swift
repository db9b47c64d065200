import ArgumentParser

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Verify the hash-chained, signed audit log; export its signed head.",
        discussion: """
            Every archive, restore, hold, deletion, expiry and key destruction is recorded in the catalog's \
            audit log; each record carries the SHA-256 of the one before, so editing, removing or reordering \
            records breaks the chain. In a vault with a trust record, the job that appends records also signs the \
            new head of the chain with its job credential, in the same transaction: a party who can rewrite the \
            vault directory but holds no job credential cannot re-chain the log without breaking a signature.

            What no signature inside the vault can show is that records were removed from the end together with \
            their heads. Export the signed head regularly and keep it outside the vault (a ticket, a SIEM, a \
            transparency log); `audit verify --head FILE` then proves that nothing up to that record was rewritten, \
            dropped or truncated. `status` and `check` show how old the last exported head is.

            Example:
              shredvault audit verify --vault /srv/shredvault
              shredvault audit head --out /var/lib/siem/shredvault-head-$(date +%F).json
              shredvault audit verify --head /var/lib/siem/shredvault-head-2026-11-29.json
            """,
        subcommands: [AuditVerify.self, AuditHeadCommand.self]
    )
}
