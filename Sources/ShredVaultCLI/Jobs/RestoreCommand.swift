import ArgumentParser
import Foundation
import ShredVault

struct RestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a held user's files for a legal case into a new directory. Needs the restore key.",
        discussion: """
            Only a user under an active hold for --case can be restored (place one with `shredvault hold place`; \
            otherwise exit 10). Each bundle file is checked against the catalog, decrypted, and every chunk, \
            the zstd checksum and every file's SHA-256 verified before DIR appears; on any failure nothing is \
            left behind. DIR must not exist. One bundle is restored directly into DIR, several into \
            DIR/<bundle-id>/. A user whose keys were destroyed (expired or deleted) is reported as \
            unrecoverable with the date and reason (exit 11). The restore is recorded in the audit log.

            Example:
              shredvault restore u0100037 --case HR-2026-14 \\
                  --to /secure/HR-2026-14/u0100037 \\
                  --master-key-file /root/shredvault-restore.key
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The user(s) to restore. Several users (or --all-held) go to DIR/<user>/.", valueName: "USER"))
    var users: [String] = []

    @Flag(help: "Restore every user held under --case, into DIR/<user>/.")
    var allHeld = false

    @Option(help: ArgumentHelp("Users restored concurrently (default: one per core; two per core when the bundles are in an object store, whose downloads wait on the network).", valueName: "N"))
    var jobs: Int?

    @Option(name: .customLong("case"), help: ArgumentHelp("The active hold case the restore is for.", valueName: "ID"))
    var caseId: String

    @Option(name: .customLong("to"), help: ArgumentHelp("Directory to create; it must not exist.", valueName: "DIR"))
    var target: String

    func validate() throws {
        for user in users { try validateUser(user) }
        if users.isEmpty && !allHeld { throw ValidationError("name at least one USER, or pass --all-held") }
        if !users.isEmpty && allHeld { throw ValidationError("give USER arguments or --all-held, not both") }
        if let jobs, !(1...256).contains(jobs) { throw ValidationError("--jobs must be between 1 and 256") }
        try validateCase(caseId)
        if target.isEmpty { throw ValidationError("--to must name a directory to create") }
    }

    func run() throws {
        let job = JobRun("restore", global)
        try reportingErrors { try job.run {
            let vault = try global.openVault()
            job.vault = vault
            let key = try vault.restoreKey(path: global.restoreKeyPath)
            if allHeld || users.count > 1 {
                let targets = allHeld ? try vault.heldUsers(caseId: caseId) : users.compactMap(UserID.init)
                let progress = ProgressLine("restoring")
                let many: RestoreManyReport
                do {
                    defer { progress.finish() }
                    many = try vault.restore(users: targets, caseId: caseId, to: target, restoreKey: key, now: global.now,
                                             jobs: jobs ?? ProcessInfo.processInfo.activeProcessorCount * (vault.store.isLocal ? 1 : 2),
                                             progress: progress.handler)
                }
                if global.json { return try Output.json(many) }
                print("restored \(Output.plural(many.users.count, "user")) for case \(caseId) into \(many.target)/<user>: "
                      + "\(Output.plural(many.files, "file")) (\(Output.bytes(many.bytes))), every file verified")
                return
            }
            let report = try vault.restore(user: UserID(users[0])!, caseId: caseId, to: target, restoreKey: key, now: global.now)
            if global.json { return try Output.json(report) }
            if let line = Output.sweepLine(report.sweep) { print(line) }
            let files = report.bundles.reduce(0) { $0 + $1.files }, bytes = report.bundles.reduce(Int64(0)) { $0 + $1.bytes }
            print("restored user \(report.user) for case \(report.caseId) into \(report.target): \(Output.plural(files, "file")) "
                  + "(\(Output.bytes(bytes))) from \(Output.plural(report.bundles.count, "bundle")), every file verified")
            if report.bundles.count > 1 {
                for b in report.bundles { print("  bundle \(b.bundleId) -> \(b.target): \(Output.plural(b.files, "file")) (\(Output.bytes(b.bytes)))") }
            }
        } }
    }
}
