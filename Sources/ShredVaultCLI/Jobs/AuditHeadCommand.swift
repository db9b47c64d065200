import ArgumentParser
import ShredVault

struct AuditHeadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "head",
        abstract: "Print the latest signed head of the audit log, to store outside the vault. Needs no key.",
        discussion: """
            Verifies the whole log first (as `audit verify`; exit 2 and nothing exported if it fails), then prints \
            the head the last job signed as one line of JSON:

              {"at":T,"first":N,"format":"shredvault-audit-head/v1","hash":H,
               "prevHash":H,"seq":N,"signature":S,"signer":K,"vaultId":V}

            seq is the last record the head covers and hash (64 hex) that record's hash; signature (160 hex) is \
            the job credential's signature (vault-format.md §6.2), which anyone can check with the vault's trust \
            record. Store it where a party who can rewrite the vault cannot (a ticket, a SIEM, a transparency \
            log): later, `shredvault audit verify --head FILE` proves that no record up to seq was rewritten, \
            dropped or truncated. Export daily: records after the last exported head can be cut off together \
            with their signed heads without a trace.

            The export is recorded in the catalog (when, which record) so that `status` shows its age and \
            `check` notes when none was exported or the last one is older than 7 days. A vault without a trust \
            record has no signed heads (exit 66; `shredvault trust init`).

            --out FILE writes the document to FILE (replacing it; it must be outside the vault) and prints a \
            summary, or with --json the document.

            Example:
              shredvault audit head --out /var/lib/siem/shredvault-head-$(date +%F).json
              shredvault audit head | logger -t shredvault-audit-head
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("out"), help: ArgumentHelp("Write the head to FILE (outside the vault) instead of stdout.", valueName: "FILE"))
    var out: String?

    func run() throws {
        try reportingErrors {
            let vault = try global.openVault(readOnly: true)
            let (exported, verification) = try vault.latestAuditHead()
            guard let exported else {
                if global.json { try Output.json(verification) }
                printError("the audit log is broken, no head exported: \(verification.problem ?? "") (see `shredvault audit verify`)")
                throw ExitCode(ExitCodes.violations)
            }
            if let out {
                try vault.writeExportedAuditHead(exported, to: out)
                if !global.json {
                    print("audit head: record \(exported.seq) of vault \(exported.vaultId), signed by \(exported.signer) at \(Timestamp.format(exported.at)); written to \(out)")
                }
            }
            if out == nil || global.json { print(try exported.encoded()) }
            try vault.recordAuditHeadExport(exported, now: global.now)
        }
    }
}
