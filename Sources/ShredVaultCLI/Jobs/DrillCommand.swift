import ArgumentParser
import ShredVault

struct DrillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drill",
        abstract: "Copy a vault into a drill vault with its own keyring and destruction root; the original is only read.",
        discussion: """
            Makes DIR (new, or empty; mode 0700) holding DIR/vault, a copy of the vault, and copies of its keyring \
            and destruction root file, bound to the copy. The original is read under its shared lock and never \
            written: whatever the drill does — sweeps on a simulated clock, deletions, key destructions — leaves \
            the production vault, its keyring and its root byte for byte as they were.

            A drill vault takes --now on every command (no clock guard), says "drill" in status and in every JSON \
            report, never shares a keyring or root with a production vault, and never becomes one. It reads the \
            production vault's job credential and uses the same restore key. Its archive removes the source it is \
            given, like any vault: give it a copy of the export. Remove the drill with `rm -r DIR`. A vault whose \
            root is in a PKCS#11 token cannot be copied (the root keys are not extractable): use \
            `shredvault recover --drill` from a backup with copies of the keyring and a root file.

            A plain `cp -a` of a vault is refused by every job (exit 13): it would share the original's keyring \
            and root.

            Example:
              shredvault drill --from /srv/shredvault --to /srv/drill-2026-12
              shredvault sweep --vault /srv/drill-2026-12/vault --now 2027-03-01
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("from"), help: ArgumentHelp("The vault to copy (default: --vault or $SHREDVAULT_VAULT).", valueName: "VAULT"))
    var from: String?

    @Option(name: .customLong("to"), help: ArgumentHelp("New directory for the drill (it must not exist or be empty).", valueName: "DIR"))
    var directory: String

    func validate() throws {
        if directory.isEmpty { throw ValidationError("--to must name a new directory") }
        if let from, from.isEmpty { throw ValidationError("--from must name a vault") }
    }

    func run() throws {
        try reportingErrors {
            try global.checkSettings(needsVault: from == nil)
            let report = try Vault.makeDrill(from: from ?? global.vaultPath, to: directory, lockWait: global.lockWait, now: global.now)
            Output.drill = true
            if global.json { return try Output.json(report) }
            print("drill vault \(report.vault) made from \(report.from) (\(Output.plural(report.liveBundles, "live bundle"))); the original was only read")
            print("keyring: \(report.keyringPath) (a copy, bound to the drill)")
            if let root = report.rootPath { print("destruction root: \(root) (a copy)") }
            print("use it with --vault \(report.vault); every command takes --now there")
        }
    }
}
