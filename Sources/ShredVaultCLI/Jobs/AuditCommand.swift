import ArgumentParser

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Verify the hash-chained audit log.",
        discussion: """
            Every archive, restore, hold, deletion, expiry and key destruction is recorded in the catalog's \
            audit log; each record carries the SHA-256 of the one before, so editing, removing or reordering \
            records breaks the chain.

            Example:
              shredvault audit verify --vault /srv/shredvault
            """,
        subcommands: [AuditVerify.self]
    )
}
