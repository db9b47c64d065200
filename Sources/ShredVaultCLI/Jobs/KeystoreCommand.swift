import ArgumentParser
import ShredVault

struct KeystoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keystore",
        abstract: "Back up and restore the keystore under backup-epoch keys (the 30-day promise for backups).",
        discussion: """
            A keystore backup is a consistent snapshot sealed to the current backup epoch's key. `sweep` destroys \
            that key backup-days (default 30) after the epoch began, after which the backup is permanently \
            unreadable (vault-format.md §5).
            """,
        subcommands: [KeystoreBackup.self, KeystoreRestore.self])
}

struct KeystoreBackup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Write a sealed snapshot of the keystore to a new file. Needs no private key.",
        discussion: """
            Example:
              shredvault keystore backup --to /backups/keystore-$(date -u +%F).svks
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("to"), help: ArgumentHelp("Snapshot file to create; it must not exist.", valueName: "FILE"))
    var output: String

    func run() throws {
        try reportingErrors {
            let vault = try global.openVault()
            let report = try vault.backupKeystore(to: output, now: global.now)
            if global.json { return try Output.json(report) }
            print("keystore snapshot of \(Output.plural(report.keys, "key")) written to \(report.path) (\(Output.bytes(Int64(report.bytes)))), "
                  + "sealed to the epoch key of \(report.epochStart); permanently unreadable from \(report.unreadableFrom)")
        }
    }
}

struct KeystoreRestore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Replace the keystore with a snapshot, replaying the erasure ledger. Needs the restore key.",
        discussion: """
            Refuses a snapshot of another vault, a tampered or truncated one, and one past the backup window \
            ("backup taken DATE is past the N-day backup window and is permanently unreadable", exit 11). \
            Every key destroyed after the snapshot was taken (deletions, expiries, released holds) is removed \
            again before the snapshot replaces the keystore, so a restore never brings a shredded key back.

            Example:
              shredvault keystore restore /backups/keystore-2026-11-29.svks --master-key-file /root/restore.key
            """)

    @OptionGroup var global: GlobalOptions

    @Argument(help: ArgumentHelp("The snapshot file.", valueName: "FILE"))
    var snapshot: String

    func run() throws {
        try reportingErrors {
            let vault = try global.openVault(createMissingKeystore: true)
            let key = try vault.restoreKey(path: global.restoreKeyPath)
            let report = try vault.restoreKeystore(from: snapshot, restoreKey: key, now: global.now)
            if global.json { return try Output.json(report) }
            print("restored the keystore from \(report.path) (taken \(report.takenAt)): \(Output.plural(report.restoredKeys, "key")) kept, "
                  + "\(Output.plural(report.purgedByLedger, "key")) destroyed since the snapshot purged again by the erasure ledger, "
                  + "\(Output.plural(report.purgedByPolicy, "key")) of ended days or deleted users purged")
        }
    }
}
