import ArgumentParser
import ShredVault

struct HoldRelease: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Release a case's legal hold on one or more users (or --all of them). Needs the restore key.",
        discussion: """
            If another case still holds the user, the bundles move to that case's hold key. Otherwise they are \
            resealed to the day key of max(original expiry day, today) and expire then, and every deletion \
            request the hold blocked runs now. The case's hold key is destroyed once no user is held under it.

            Several users may be named; --all releases every user the case holds (the case then holds nobody and \
            its key is destroyed). Every named user must be held under the case, or nothing is released (exit 66). \
            With several users, --json prints an array of reports.

            Examples:
              shredvault hold release u0100037 --case HR-2026-14 \\
                  --master-key-file /root/shredvault-restore.key
              shredvault hold release --all --case LIT-7
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The held user(s).", valueName: "USER"))
    var users: [String] = []

    @Flag(help: "Release every user the case holds.")
    var all = false

    @Option(name: .customLong("case"), help: ArgumentHelp("The case whose hold ends.", valueName: "ID"))
    var caseId: String

    func validate() throws {
        for user in users { try validateUser(user) }
        if users.isEmpty && !all { throw ValidationError("name at least one USER, or pass --all") }
        if !users.isEmpty && all { throw ValidationError("give USER arguments or --all, not both") }
        try validateCase(caseId)
    }

    func run() throws {
        let job = JobRun("hold-release", global)
        try reportingErrors { try job.run {
            let vault = try global.openVault()
            job.vault = vault
            let key = try vault.restoreKey(path: global.restoreKeyPath)
            if all || users.count > 1 {
                let targets = all ? try vault.heldUsers(caseId: caseId) : users.compactMap(UserID.init)
                if targets.isEmpty { throw VaultError.notFound(path: caseId, what: "active legal hold case") }
                let reports = try vault.releaseHold(users: targets, caseId: caseId, restoreKey: key, now: global.now)
                if global.json { return try Output.json(reports) }
                if let line = Output.sweepLine(reports.first?.sweep) { print(line) }
                let resealed = reports.reduce(0) { $0 + $1.resealedBundles }
                let stillHeld = reports.filter { !$0.remainingHolds.isEmpty }.count
                print("released hold \(caseId) on \(Output.plural(reports.count, "user")): resealed \(Output.plural(resealed, "bundle"))"
                      + (stillHeld > 0 ? " (\(Output.plural(stillHeld, "user")) still held under other cases)" : ""))
                let executed = reports.flatMap(\.executedDeletions)
                if !executed.isEmpty { print("executed blocked deletion requests \(executed.joined(separator: ", "))") }
                return
            }
            let report = try vault.releaseHold(user: UserID(users[0])!, caseId: caseId, restoreKey: key, now: global.now)
            if global.json { return try Output.json(report) }
            if let line = Output.sweepLine(report.sweep) { print(line) }
            var line = "released hold \(report.caseId) on user \(report.user): "
            if !report.remainingHolds.isEmpty {
                line += "\(Output.plural(report.resealedBundles, "bundle")) still held under \(report.remainingHolds.joined(separator: ", "))"
            } else if let day = report.newExpiryDay {
                line += "resealed \(Output.plural(report.resealedBundles, "bundle")) to the day key of \(day), the new expiry day"
            } else {
                line += "no held bundle remained"
            }
            print(line)
            if !report.executedDeletions.isEmpty {
                print("executed blocked deletion request\(report.executedDeletions.count == 1 ? "" : "s") \(report.executedDeletions.joined(separator: ", ")): user \(report.user) shredded")
            }
        } }
    }
}
