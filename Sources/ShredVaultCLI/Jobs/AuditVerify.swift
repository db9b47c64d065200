import ArgumentParser
import ShredVault

struct AuditVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check the audit log's hash chain; exit 2 if a record is missing, modified or reordered. Needs no key.",
        discussion: """
            With --json prints {"ok": bool, "records": N, "problem": "..."} (problem only when not ok; \
            records counts the records verified before it).

            Example:
              shredvault audit verify --json
            """)

    @OptionGroup var global: GlobalOptions

    struct Report: Encodable {
        var ok: Bool
        var records: Int
        var problem: String?
    }

    func run() throws {
        try reportingErrors {
            let vault = try global.openVault(readOnly: true)
            let (records, problem) = try vault.catalog.verifyAudit()
            if global.json {
                try Output.json(Report(ok: problem == nil, records: records, problem: problem))
            } else if let problem {
                print("audit log: \(problem) (\(Output.plural(records, "record")) verified before it)")
            } else {
                print("audit log: \(Output.plural(records, "record")), hash chain intact")
            }
            if let problem {
                printError("the audit log is broken: \(problem)")
                throw ExitCode(ExitCodes.violations)
            }
        }
    }
}
