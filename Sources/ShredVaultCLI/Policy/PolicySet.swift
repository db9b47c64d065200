import ArgumentParser
import ShredVault

struct PolicySet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "Change the retention policy: add or remove holidays, shorten limits (audited; needs the job credential).",
        discussion: """
            Each changed field is one audit record (policy-set). Values already in place change nothing; \
            removing a holiday the policy does not hold, lengthening a limit, or a value out of range is \
            refused with exit 64 and nothing changed.

            Example:
              shredvault policy set --add-holiday 2027-01-01 --remove-holiday 2026-12-26
              shredvault policy set --archive-days 60
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("add-holiday"), parsing: .upToNextOption,
            help: ArgumentHelp("Non-working days to add (repeatable); they move the deadlines of later deletion requests.", valueName: "YYYY-MM-DD"))
    var addHolidays: [String] = []

    @Option(name: .customLong("remove-holiday"), parsing: .upToNextOption,
            help: ArgumentHelp("Holidays to remove (repeatable); each must be in the policy.", valueName: "YYYY-MM-DD"))
    var removeHolidays: [String] = []

    @Option(help: ArgumentHelp("New archive limit, 1-90 days counting the archive day; only shorter than now. New bundles only.", valueName: "N"))
    var archiveDays: Int?

    @Option(help: ArgumentHelp("New inactivity threshold in days; only shorter than now.", valueName: "N"))
    var inactiveDays: Int?

    @Option(help: ArgumentHelp("New deletion deadline in business days, 1-7; only shorter than now. Later requests only.", valueName: "N"))
    var deletionBusinessDays: Int?

    @Option(help: ArgumentHelp("New backup window in days, 1-30; only shorter than now, never below the backup epoch. The sweep applies it at once.", valueName: "N"))
    var backupDays: Int?

    @Option(help: ArgumentHelp("New clock-guard bound of a production vault, 1-90 days.", valueName: "N"))
    var maxClockJumpDays: Int?

    var change: PolicyChange {
        PolicyChange(archiveDays: archiveDays, inactiveDays: inactiveDays, deletionBusinessDays: deletionBusinessDays, backupDays: backupDays,
                     maxClockJumpDays: maxClockJumpDays, addHolidays: addHolidays, removeHolidays: removeHolidays)
    }

    func validate() throws {
        if change.isEmpty {
            throw ValidationError("nothing to change: pass --add-holiday, --remove-holiday, --archive-days, --inactive-days, --deletion-business-days, --backup-days or --max-clock-jump-days")
        }
    }

    func run() throws {
        try reportingErrors {
            let vault = try global.openVault()
            let report = try vault.setPolicy(change, now: global.now)
            if global.json { return try Output.json(report) }
            if let line = Output.sweepLine(report.sweep) { print(line) }
            if report.changes.isEmpty { return print("policy unchanged: every requested value is already in place") }
            for c in report.changes {
                print("policy \(c.field): \(c.old.isEmpty ? "(none)" : c.old) -> \(c.new.isEmpty ? "(none)" : c.new) (audited)")
            }
        }
    }
}
