import ArgumentParser
import ShredVault

struct KeyringCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyring",
        abstract: "The keyring beside the restore key: backup-epoch keys and the erasure-ledger mirror.",
        discussion: """
            The keyring is bound to exactly one vault (its id and directory): every job refuses an empty, foreign \
            or replaced keyring and one that another live vault owns (exit 13), and names a missing one (exit 66).
            """,
        subcommands: [KeyringRebuild.self])
}

struct KeyringRebuild: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Make a new keyring for a vault whose keyring is lost, from the catalog. Needs no private key.",
        discussion: """
            Creates the keyring at the path the config names (it must not exist) and fills it from the catalog: the \
            erasure ledger, every hold and deletion request, and the clock guard's latest job time; then binds it to \
            the vault. The backup-epoch keys are gone with the old keyring: keystore snapshots taken so far are \
            unreadable from now on (G3 makes them so within backup-days anyway), so take a new backup.

            Example:
              shredvault keyring rebuild --vault /srv/shredvault
            """)

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reportingErrors {
            let vault = try global.openVault(createMissingKeyring: true)
            let report = try vault.rebuildKeyring(now: global.now)
            if global.json { return try Output.json(report) }
            print("rebuilt keyring \(report.keyringPath): \(Output.plural(report.ledgerEntries, "erasure-ledger entry", "erasure-ledger entries")), "
                  + "\(Output.plural(report.holds, "hold")), \(Output.plural(report.deletionRequests, "deletion request")); "
                  + "\(Output.plural(report.unreadableSnapshots, "keystore snapshot")) taken before are unreadable now: take a new backup")
        }
    }
}
