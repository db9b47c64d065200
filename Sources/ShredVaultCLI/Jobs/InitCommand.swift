import ArgumentParser
import Foundation
import ShredVault

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a vault and its retention policy; create the restore key if the file is absent.",
        discussion: """
            Creates the vault directory (mode 0700): config with the policy, master.pub (the archive key, the \
            public half of the master key pair), catalog.db, and the keystore keys/keystore.db (or --keystore).

            The restore key (the private half) never lives in the vault: --master-key-file FILE (or \
            SHREDVAULT_MASTER_KEY_FILE) names it. If FILE does not exist, a new master key pair is created and \
            the restore key written to FILE with mode 0600; keep it outside the vault and back it up offline, \
            since whoever holds it can decrypt every live bundle. If FILE exists, the vault is created for that \
            existing key.

            Policy: a bundle lives --archive-days days counting its archive day (at most 90, privacy policy \
            clause 5); users inactive for --inactive-days days are archived (clause 4); deletion requests are \
            due 5 business days after receipt, skipping weekends and each --holiday.

            Clock: a production vault remembers the latest time a job that changed it ran; such a job refuses a \
            simulated clock (--now, SHREDVAULT_NOW) and a real clock more than 5 minutes behind that time or more than \
            --max-clock-jump-days ahead of it (exit 12), until an operator confirms with --accept-clock (audited). \
            --drill makes a drill vault instead, for tests, demos and audits: every command takes --now, no clock \
            guard applies, and every report says "drill". A drill never becomes a production vault.

            Example:
              shredvault init --vault /srv/shredvault \\
                  --master-key-file /root/shredvault-restore.key \\
                  --holiday 2026-12-25 --holiday 2027-01-01
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: ArgumentHelp("Days a bundle lives, counting the archive day (1-90).", valueName: "N"))
    var archiveDays = 90

    @Option(help: ArgumentHelp("Days of inactivity after which a user is archived.", valueName: "N"))
    var inactiveDays = 365

    @Option(help: ArgumentHelp("Days a production vault's clock may jump ahead of its latest job before jobs stop and ask for --accept-clock (1-90).", valueName: "N"))
    var maxClockJumpDays = RetentionPolicy.defaultMaxClockJumpDays

    @Flag(help: "Make a drill vault: simulated clocks (--now) allowed for every command, no clock guard; for tests, demos and audits, never for production data.")
    var drill = false

    @Option(name: .customLong("bundle-store"),
            help: ArgumentHelp("Keep bundles and DEK sidecars as objects in an existing S3 bucket (endpoint, region and credentials from the AWS_* environment variables, never stored); default: the vault directory.", valueName: "s3://BUCKET[/PREFIX]"))
    var bundleStore: String?

    @Option(name: .customLong("holiday"), help: ArgumentHelp("A non-working day skipped when counting deletion deadlines (repeatable).", valueName: "YYYY-MM-DD"))
    var holidays: [String] = []

    @Option(help: ArgumentHelp("Keystore database path, absolute or relative to the vault (default: keys/keystore.db). Its directory is made mode 0700.", valueName: "PATH"))
    var keystore: String?

    @Option(help: ArgumentHelp("Keyring database path (backup-epoch keys and the erasure-ledger mirror), outside the vault (default: beside the restore key file).", valueName: "PATH"))
    var keyring: String?

    @Option(name: .customLong("root-file"),
            help: ArgumentHelp("Destruction root file (software mode), outside the vault (default: beside the keyring). Every key destruction rewrites it; keep it out of backups and snapshots.", valueName: "PATH"))
    var rootFile: String?

    @Option(name: .customLong("pkcs11-module"),
            help: ArgumentHelp("Keep the destruction root in a PKCS#11 token instead of a file: the token's module (shared library), e.g. /usr/lib/softhsm/libsofthsm2.so. Needs --pkcs11-token; the PIN comes from --pkcs11-pin-file or $SHREDVAULT_PKCS11_PIN, for this and every later job.", valueName: "PATH"))
    var pkcs11Module: String?

    @Option(name: .customLong("pkcs11-token"), help: ArgumentHelp("Label of the PKCS#11 token that holds the destruction root.", valueName: "LABEL"))
    var pkcs11Token: String?

    @Option(name: .customLong("pkcs11-pin-file"),
            help: ArgumentHelp("File (mode 0600) holding the token's user PIN, recorded in the config for every job (default: $SHREDVAULT_PKCS11_PIN).", valueName: "FILE"))
    var pkcs11PinFile: String?

    var rootConfig: RootConfig? {
        if let pkcs11Module, let pkcs11Token { return .pkcs11(module: pkcs11Module, token: pkcs11Token, pinFile: pkcs11PinFile) }
        return rootFile.map { .file($0) }
    }

    var policy: RetentionPolicy {
        RetentionPolicy(archiveDays: archiveDays, inactiveDays: inactiveDays, holidays: holidays, maxClockJumpDays: maxClockJumpDays)
    }

    func validate() throws {
        if let problem = policy.problem { throw ValidationError(problem.replacingOccurrences(of: "archive-days", with: "--archive-days")
            .replacingOccurrences(of: "inactive-days", with: "--inactive-days").replacingOccurrences(of: "holiday '", with: "--holiday '")
            .replacingOccurrences(of: "max-clock-jump-days", with: "--max-clock-jump-days")) }
        if let keystore, keystore.isEmpty { throw ValidationError("--keystore must name a path") }
        if let keyring, keyring.isEmpty { throw ValidationError("--keyring must name a path") }
        if let rootFile, rootFile.isEmpty { throw ValidationError("--root-file must name a path") }
        if (pkcs11Module == nil) != (pkcs11Token == nil) { throw ValidationError("--pkcs11-module and --pkcs11-token go together") }
        if pkcs11Module != nil && rootFile != nil { throw ValidationError("choose --root-file or --pkcs11-module, not both") }
        if pkcs11PinFile != nil && pkcs11Module == nil { throw ValidationError("--pkcs11-pin-file needs --pkcs11-module and --pkcs11-token") }
    }

    struct Result: Encodable {
        var vaultId: String
        var root: String
        var createdRestoreKey: Bool
        var restoreKeyPath: String
        var keyringPath: String
        var destructionRoot: String
        var jobKeyPath: String
        var drill: Bool
    }

    func run() throws {
        try reportingErrors {
            try global.checkSettings()
            // A production vault's clock guard starts at init: a simulated clock would start it in the wrong year.
            if let source = global.nowSource, !drill { throw Vault.simulatedClockRefusal(source: source) }
            guard let restoreKeyPath = global.restoreKeyPath else {
                printError("init needs the restore key file: pass --master-key-file FILE or set \(GlobalOptions.restoreKeyVariable) (a new restore key is created there if FILE does not exist)")
                throw ExitCode(ExitCodes.keyError)
            }
            let created = try Vault.create(root: global.vaultPath, restoreKeyPath: restoreKeyPath, policy: policy,
                                           keystorePath: keystore, keyringPath: keyring, rootConfig: rootConfig,
                                           drill: drill, bundleStore: bundleStore, now: global.now)
            if created.createdRestoreKey {
                Output.note("""
                    created restore key \(created.restoreKeyPath): keep it outside the vault, back it up offline; \
                    whoever holds it can decrypt every live bundle
                    """)
            }
            if global.json {
                try Output.json(Result(vaultId: created.vaultId, root: created.root, createdRestoreKey: created.createdRestoreKey,
                                       restoreKeyPath: created.restoreKeyPath, keyringPath: created.keyringPath,
                                       destructionRoot: created.destructionRoot, jobKeyPath: created.jobKeyPath, drill: drill))
            } else {
                print(drill ? "created DRILL vault \(created.vaultId) at \(created.root) (simulated clocks allowed; not for production data)"
                            : "created vault \(created.vaultId) at \(created.root)")
                print("policy: bundles live \(archiveDays) days counting the archive day; users inactive \(inactiveDays) days are archived; deletion requests due in 5 business days")
                print(created.createdRestoreKey
                      ? "restore key: \(created.restoreKeyPath) (new; the vault holds only its public half, master.pub)"
                      : "restore key: \(created.restoreKeyPath) (existing; the vault holds its public half, master.pub)")
                print("keyring: \(created.keyringPath)")
                print("destruction root: \(created.destructionRoot) (every key destruction retires its old generation; keep it out of backups and snapshots)")
                print("job credential: \(created.jobKeyPath) (set \(Vault.jobKeyVariable)=\(created.jobKeyPath) in the environment of the nightly job and of delete and sweep)")
            }
        }
    }
}
