import ArgumentParser
import ShredVault

struct HoldRelease: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Release a user's legal hold for a case. Needs the restore key.",
        discussion: """
            If another case still holds the user, the bundles move to that case's hold key. Otherwise they are \
            resealed to the day key of max(original expiry day, today) and expire then, and every deletion \
            request the hold blocked runs now. The case's hold key is destroyed once no user is held under it.

            Example:
              shredvault hold release u0100037 --case HR-2026-14 \\
                  --master-key-file /root/shredvault-restore.key
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The held user.", valueName: "USER"))
    var user: String

    @Option(name: .customLong("case"), help: ArgumentHelp("The case whose hold ends.", valueName: "ID"))
    var caseId: String

    func validate() throws {
        try validateUser(user)
        try validateCase(caseId)
    }

    func run() throws {
        let job = JobRun("hold-release", global)
        try reportingErrors { try job.run {
            let vault = try global.openVault()
            job.vault = vault
            let key = try vault.restoreKey(path: global.restoreKeyPath)
            let report = try vault.releaseHold(user: UserID(user)!, caseId: caseId, restoreKey: key, now: global.now)
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
