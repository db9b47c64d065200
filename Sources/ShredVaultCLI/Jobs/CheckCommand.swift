import ArgumentParser
import ShredVault

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Verify catalog, bundle files and keystore agree; exit 2 on any violation.",
        discussion: """
            Checks without changing anything: every live bundle's file exists with the \
            catalog's SHA-256 and a header naming this vault, bundle and user, and its DEK \
            sidecar matches the catalog; its user and day (or hold) keys exist; no day key of an \
            ended day and no user key of a deleted user remains; no unheld bundle is past its \
            expiry day; no backup-epoch key or keystore snapshot outlives the backup window; no \
            file under bundles/ is unknown to the catalog; the audit chain is intact and, in a vault with a trust \
            record, every record since it is covered by a head signed by a job of the vault. Needs no key.

            --read-data also unseals every data key and decrypts every bundle in full (every chunk, the zstd \
            checksum, every file's SHA-256): run it where the restore key is.

            Each violation is printed as KIND SUBJECT: MESSAGE, with a stable KIND such as \
            bundle-missing, bundle-mismatch, key-missing, overdue-expiry, ended-day-key, \
            tombstoned-user-key, orphan-file, audit-chain or audit-signature.

            Notes (printed as note: KIND SUBJECT: MESSAGE, and in "notices" with --json) do not fail the check: \
            audit-head-not-exported (no signed audit head was ever exported with `shredvault audit head`) and \
            audit-head-stale (the last export is more than 7 days old). Only an exported head kept outside the \
            vault shows that records were not removed from the end of the audit log.

            Example:
              shredvault check --vault /srv/shredvault
              shredvault check --read-data --master-key-file /root/shredvault-restore.key
            """)

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Also decrypt every bundle in full (needs the restore key).")
    var readData = false

    @Flag(help: "Compare bundle file sizes and headers instead of reading every file for its SHA-256 (for very large vaults).")
    var quick = false

    func run() throws {
        let job = JobRun("check", global)
        try reportingErrors { try job.run {
            let vault = try global.openVault(readOnly: true)
            let key = readData ? try vault.restoreKey(path: global.restoreKeyPath) : nil
            let progress = ProgressLine(readData ? "decrypting" : "checking")
            let report: CheckReport
            do {
                defer { progress.finish() }
                report = try vault.check(now: global.now, readData: readData, restoreKey: key, quick: quick, progress: progress.handler)
            }
            // Best effort: a user without write access to the catalog may still check (status --health reads it).
            try? vault.recordCheckOutcome(ok: report.ok, at: global.now)
            if global.json {
                try Output.json(report)
            } else {
                for v in report.violations { print("\(v.kind) \(v.subject): \(v.message)") }
                for n in report.notices { print("note: \(n.kind) \(n.subject): \(n.message)") }
                print("check \(report.today)\(report.drill ? " (drill vault)" : ""): \(Output.plural(report.checkedBundles, "live bundle")) (\(Output.bytes(report.checkedBytes))) "
                      + (report.readData ? "decrypted and verified" : "checked (files and keys; --read-data also decrypts)")
                      + ", audit log \(Output.plural(report.auditRecords, "record")): "
                      + (report.ok ? "OK" : Output.plural(report.violations.count, "violation")))
            }
            if !report.ok {
                printError("check found \(Output.plural(report.violations.count, "violation")) (listed on stdout); see `shredvault check --help` for each kind")
                try? job.writeMetrics(vault)
                throw ExitCode(ExitCodes.violations)
            }
            try job.succeeded(vault, [
                "checked_bundles": .stringConvertible(report.checkedBundles), "checked_bytes": .stringConvertible(report.checkedBytes),
                "read_data": .stringConvertible(report.readData), "violations": .stringConvertible(report.violations.count),
            ])
        } }
    }
}
