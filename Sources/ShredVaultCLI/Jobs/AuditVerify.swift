import ArgumentParser
import ShredVault

struct AuditVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the audit log's hash chain and signed heads; exit 2 if a record is missing, modified, reordered or not signed by a job of this vault. Needs no key.",
        discussion: """
            Checks that the records chain from the first to the last and, in a vault with a trust record, that \
            every record since the trust record is covered by exactly one signed head whose signature verifies \
            with a signer of the trust record. Records written before the vault had a trust record are counted as \
            unsigned, which is not a failure.

            --head FILE also checks a head exported earlier with `shredvault audit head`: its signature, that it \
            is of this vault, and that the log still holds its record with exactly its hash. This catches a \
            rewrite, drop or re-chain at or before that record and a log cut short before it; records appended \
            after the exported head are protected only by their own signatures. A FILE that is not an exported \
            head exits 65.

            With --json prints {"ok": bool, "records": N, "signedRecords": N, "unsignedRecords": N, "heads": N, \
            "exportedHeadSeq": N, "kind": "...", "problem": "..."} (exportedHeadSeq when --head held; kind \
            (audit-chain, audit-signature or audit-head) and problem only when not ok; records counts the records \
            whose chain verified).

            Example:
              shredvault audit verify --json
              shredvault audit verify --head /var/lib/siem/shredvault-head-2026-11-29.json
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("head"),
            help: ArgumentHelp("A head exported with `shredvault audit head`: the log must still hold its record, unchanged.", valueName: "FILE"))
    var head: String?

    func run() throws {
        try reportingErrors {
            let exported = try head.map(ExportedAuditHead.read)
            let vault = try global.openVault(readOnly: true)
            let report = try vault.verifyAudit(exportedHead: exported)
            if global.json {
                try Output.json(report)
            } else if let problem = report.problem {
                print("audit log: \(problem)" + (report.kind == .chain ? " (\(Output.plural(report.records, "record")) verified before it)" : ""))
            } else {
                var line = "audit log: \(Output.plural(report.records, "record")), hash chain intact"
                if vault.trust != nil || report.heads > 0 {
                    line += "; \(report.signedRecords) signed by the vault's jobs (\(Output.plural(report.heads, "head")))"
                }
                if report.unsignedRecords > 0 { line += ", \(report.unsignedRecords) unsigned (before the trust record)" }
                if let seq = report.exportedHeadSeq { line += "; the exported head of record \(seq) holds" }
                print(line)
            }
            if let problem = report.problem {
                printError(report.kind == .exportedHead ? "the exported audit head does not hold: \(problem)" : "the audit log is broken: \(problem)")
                throw ExitCode(ExitCodes.violations)
            }
        }
    }
}
