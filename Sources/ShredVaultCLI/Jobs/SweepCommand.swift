import ArgumentParser
import ShredVault

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Destroy the day keys of ended days and remove the bundles that expired with them.",
        discussion: """
            A bundle may be decrypted until the end of its expiry day (UTC). sweep first finishes what interrupted \
            jobs left (temporary files, job steps, deletion requests, unused hold keys), destroys the day key of \
            every day that has ended (the keystore is VACUUMed so the key bytes survive in no file) and the \
            backup-epoch keys whose window ended, then removes the expired bundle files and their sealed data \
            keys. Bundles under a legal hold are sealed to their case's key instead and survive. Idempotent; \
            needs no key. --dry-run reports all of this, as the sweep would do it now, and changes nothing.

            Every job that changes the vault (archive, delete, hold, restore) runs this sweep first, so a \
            missed night does not extend the archive limit past the next job; schedule it anyway right after \
            midnight UTC.

            Example:
              shredvault sweep --vault /srv/shredvault --dry-run
            """)

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Report what would be destroyed; change nothing.")
    var dryRun = false

    func run() throws {
        let job = JobRun("sweep", global)
        try reportingErrors { try job.run {
            let vault = try global.openVault(dryRun: dryRun)
            let report = try vault.sweep(now: global.now, dryRun: dryRun)
            try job.succeeded(vault, record: !dryRun, [
                "dry_run": .stringConvertible(dryRun), "destroyed_day_keys": .stringConvertible(report.destroyedDayKeys.count),
                "expired_bundles": .stringConvertible(report.expiredBundles), "freed_bytes": .stringConvertible(report.freedBytes),
            ])
            if global.json { return try Output.json(report) }
            var keys = report.destroyedDayKeys.isEmpty ? "no day keys"
                : "the day keys of \(Output.plural(report.destroyedDayKeys.count, "day")) (\(report.destroyedDayKeys.joined(separator: ", ")))"
            if !report.destroyedEpochKeys.isEmpty {
                keys += ", the backup-epoch keys of \(Output.plural(report.destroyedEpochKeys.count, "epoch")) starting "
                    + report.destroyedEpochKeys.joined(separator: ", ") + " (their keystore snapshots become unreadable)"
            }
            let bundles = "\(Output.plural(report.expiredBundles, "expired bundle")) (\(Output.bytes(report.freedBytes)))"
            let first = Self.convergence(report.converged)
            if report.dryRun {
                print("dry run \(report.today): " + (first.isEmpty ? "" : "would first " + first.joined(separator: "; ") + "; then ")
                      + "would destroy \(keys) and remove \(bundles); nothing changed")
            } else {
                print("sweep \(report.today): " + (first.isEmpty ? "" : first.joined(separator: "; ") + "; ") + "destroyed \(keys), removed \(bundles)")
            }
        } }
    }

    /// What the sweep finishes first for interrupted jobs (`SweepReport.converged`), one phrase per kind.
    static func convergence(_ c: ConvergeReport?) -> [String] {
        guard let c else { return [] }
        var parts: [String] = []
        if !c.removedLeftovers.isEmpty { parts.append("remove \(Output.plural(c.removedLeftovers.count, "temporary file")) of interrupted jobs") }
        if !c.resumedIntents.isEmpty { parts.append("finish \(Output.plural(c.resumedIntents.count, "interrupted job step")) (\(c.resumedIntents.joined(separator: ", ")))") }
        if !c.completedDeletions.isEmpty { parts.append("complete deletion requests \(c.completedDeletions.joined(separator: ", "))") }
        if !c.destroyedHoldKeys.isEmpty { parts.append("destroy the unused hold keys of \(c.destroyedHoldKeys.joined(separator: ", "))") }
        return parts
    }
}
