import ArgumentParser
import ShredVault

struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up the vault into a directory or an S3 bucket prefix: new bundles, a catalog snapshot and a sealed keystore snapshot.",
        discussion: """
            Incremental: only bundles not yet in the backup are copied, each verified by SHA-256 after copying. The \
            keystore snapshot is sealed to the current backup-epoch key, so the backup becomes unreadable \
            backup-days after its epoch (G3). The keyring and the restore key are never copied. Needs no private key.

            --to s3://BUCKET[/PREFIX] writes the same layout as objects (endpoint, region and credentials from the \
            AWS_* environment variables only; see "Object storage" in the README). New bundles are uploaded (in 8 MiB \
            parts above 8 MiB, each with Content-MD5) and read back; a bundle object already there with the right \
            size is not sent again. backup.json is written last: an interrupted backup leaves the previous one whole \
            (the next run completes it). Bundles the vault no longer has (swept, deleted) are then deleted from the \
            prefix. A prefix holding anything but a backup of this vault is refused (exit 73); a missing bucket or \
            refused credentials end the run before anything changes (exit 14). A vault whose own bundles are in S3 \
            cannot be backed up this way (exit 64).

            Examples:
              shredvault backup --to /mnt/backup/shredvault
              shredvault backup --to s3://backups/shredvault --json
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("to"), help: ArgumentHelp("Backup directory (created if missing; reused for increments), or s3://BUCKET[/PREFIX].", valueName: "DIR|s3://BUCKET/PREFIX"))
    var directory: String

    func run() throws {
        let job = JobRun("backup", global)
        try reportingErrors { try job.run {
            let vault = try global.openVault()
            let progress = ProgressLine("copying")
            let report: VaultBackupReport
            do {
                defer { progress.finish() }
                report = try vault.backup(to: directory, now: global.now, progress: progress.handler)
            }
            try job.succeeded(vault, [
                "live_bundles": .stringConvertible(report.liveBundles), "copied_bundles": .stringConvertible(report.copiedBundles),
                "copied_bytes": .stringConvertible(report.copiedBytes), "present_bundles": .stringConvertible(report.presentBundles),
                "removed_bundles": .stringConvertible(report.removedBundles),
            ])
            if global.json { return try Output.json(report) }
            print("backed up \(Output.plural(report.liveBundles, "live bundle")) to \(report.directory): copied \(report.copiedBundles) "
                  + "(\(Output.bytes(report.copiedBytes))), \(report.presentBundles) already there"
                  + (report.removedBundles > 0 ? ", \(Output.plural(report.removedBundles, "bundle")) the vault no longer has removed" : "")
                  + "; keystore snapshot \(report.keystoreSnapshot) "
                  + "unreadable from \(report.unreadableFrom)")
        } }
    }
}

struct RecoverCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recover",
        abstract: "Rebuild a vault from a backup (directory or S3 bucket prefix), the restore key and the keyring, then check it.",
        discussion: """
            --vault names the vault to create (it must not exist or be empty). The keyring (by default the path \
            recorded in the backup's config) supplies the backup-epoch key and the erasure ledger, so users \
            shredded after the backup stay unrecoverable. The destruction root (by default the one the backup's \
            config records, --root-file for a root file elsewhere) opens the keyring; the recovered vault takes \
            both over, and its destructions retire root generations the original used. So recover a lost vault \
            in place of the original; for a drill beside a live vault, pass copies (--keyring, --root-file) and \
            --drill: the recovered vault is then a drill vault (simulated clocks allowed, its own keyring binding). \
            A drill's backup always recovers as a drill. Exit 2 if the final check finds violations.

            --from s3://BUCKET[/PREFIX] reads a backup `backup --to s3://…` wrote (AWS_* environment variables for \
            the store): every object is streamed to disk and checked (catalog and keystore snapshot against the \
            SHA-256 backup.json records, each bundle against the size and SHA-256 the backed-up catalog records) \
            before the vault is declared recovered. A prefix whose first backup was interrupted (no backup.json) is \
            refused (exit 66); run the backup again to complete it.

            Examples:
              shredvault recover --from /mnt/backup/shredvault --vault /srv/shredvault \\
                  --master-key-file /root/restore.key
              shredvault recover --from s3://backups/shredvault --vault /srv/shredvault \\
                  --master-key-file /root/restore.key
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("from"), help: ArgumentHelp("Backup directory or s3://BUCKET[/PREFIX] written by `shredvault backup`.", valueName: "DIR|s3://BUCKET/PREFIX"))
    var from: String

    @Option(help: ArgumentHelp("Keyring file, if not at the path the backup's config records.", valueName: "FILE"))
    var keyring: String?

    @Option(name: .customLong("root-file"),
            help: ArgumentHelp("Destruction root file, if not where the backup's config records it (a copy, for a drill).", valueName: "FILE"))
    var rootFile: String?

    @Flag(help: "Recover as a drill vault (needs --keyring and --root-file copies; its clock is free, see `shredvault drill --help`).")
    var drill = false

    func run() throws {
        try reportingErrors {
            try global.checkSettings()
            guard let keyPath = global.restoreKeyPath else { throw VaultError.restoreKeyRequired }
            let report = try Vault.recover(from: from, to: global.vaultPath, restoreKeyPath: keyPath, keyringPath: keyring,
                                           rootPath: rootFile, drill: drill, simulatedClock: global.nowSource,
                                           acceptClock: global.acceptClock, now: global.now)
            Output.drill = report.drill
            if global.json {
                try Output.json(report)
            } else {
                print("recovered \(report.drill ? "drill vault " : "")\(report.vault) from \(report.from): \(Output.plural(report.restoredBundles, "bundle")) restored, "
                      + "\(report.missingBundles.count) missing, \(Output.plural(report.shreddedByLedger, "bundle")) shredded again by the erasure ledger; "
                      + "keystore: \(report.keystore?.restoredKeys ?? 0) keys")
                if report.keptObjects + report.uploadedObjects > 0 {
                    // A vault whose bundles are in a bucket (vault-format.md §5.4).
                    print("bundle store: \(Output.plural(report.keptObjects, "object")) kept, \(report.uploadedObjects) uploaded from the backup")
                }
                for v in report.check?.violations ?? [] { print("  violation \(v.kind): \(v.subject): \(v.message)") }
                print("check: " + ((report.check?.ok ?? false) ? "OK" : Output.plural(report.check?.violations.count ?? 0, "violation")))
            }
            if !(report.check?.ok ?? false) { throw ExitCode(ExitCodes.violations) }
        }
    }
}

struct ReindexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reindex",
        abstract: "Rebuild the catalog's bundle index from the bundle headers and DEK sidecars (catalog lost).",
        discussion: """
            For a vault whose catalog.db was lost: every bundle under bundles/ whose keys still exist is indexed \
            again with its sealed data key; holds are recovered from hold-sealed sidecars. Deletion requests, \
            tombstones and the audit log are not recoverable from bundles (restore them from a backup). \
            Refuses a catalog that already indexes bundles. Needs no private key.
            """)

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reportingErrors {
            let vault = try global.openVault(createMissingCatalog: true)
            let report = try vault.reindex(now: global.now)
            if global.json { return try Output.json(report) }
            print("indexed \(Output.plural(report.indexedBundles, "bundle")), recovered \(Output.plural(report.recoveredHolds, "hold")), "
                  + "skipped \(report.skipped.count)")
            for s in report.skipped { Output.warning("skipped \(s)") }
        }
    }
}
