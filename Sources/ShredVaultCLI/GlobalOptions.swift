import ArgumentParser
import Foundation
import ShredVault

/// The options every vault command shares (`@OptionGroup var global: GlobalOptions`).
/// Each falls back to an environment variable, so a cron line or systemd unit can set them once.
struct GlobalOptions: ParsableArguments {
    static let vaultVariable = "SHREDVAULT_VAULT"
    static let restoreKeyVariable = "SHREDVAULT_MASTER_KEY_FILE"
    static let nowVariable = "SHREDVAULT_NOW"
    static let metricsFileVariable = "SHREDVAULT_METRICS_FILE"
    static let logFormatVariable = "SHREDVAULT_LOG_FORMAT"

    @Option(name: .customLong("vault"), help: ArgumentHelp("Vault directory (default: $SHREDVAULT_VAULT).", valueName: "DIR"))
    var vaultOption: String?

    @Option(name: .customLong("master-key-file"),
            help: ArgumentHelp("Restore key file, mode 0600, kept outside the vault (default: $SHREDVAULT_MASTER_KEY_FILE). Read only by init, hold place/release, restore and check --read-data.",
                               valueName: "FILE"))
    var masterKeyFileOption: String?

    @Option(name: .customLong("now"),
            help: ArgumentHelp("Simulated clock, ISO-8601 such as 2026-11-29T00:15:00Z (default: $SHREDVAULT_NOW, else the real clock). Every command of a drill vault takes it; a production vault takes it only for commands that change nothing (status, list, check, hold list, audit verify, trust show, --dry-run).",
                               valueName: "TIME"))
    var nowOption: String?

    @Flag(name: .customLong("accept-clock"),
          help: "Confirm a clock that a production vault's guard refuses (more than 5 minutes behind its latest job, or further ahead than its max-clock-jump-days); recorded in the audit log.")
    var acceptClock = false

    @Flag(help: "Print the result as one JSON object on stdout (list: one object per line).")
    var json = false

    @Option(help: ArgumentHelp("Wait up to this many seconds for another job to release the vault lock; 0 fails at once with exit code 75.",
                               valueName: "SECONDS"))
    var lockWait: Double = 0

    @Option(name: .customLong("metrics-file"),
            help: ArgumentHelp("Write the vault's metrics in Prometheus text format to FILE when the command ends (archive, sweep, delete, backup, hold, restore: after a success; check: also after violations; status: always), atomically (temporary file and rename in its directory), for node_exporter's textfile collector: name it *.prom (default: $SHREDVAULT_METRICS_FILE).",
                               valueName: "FILE"))
    var metricsFileOption: String?

    @Option(name: .customLong("log-format"),
            help: ArgumentHelp("Log lines on stderr as text (default; off a terminal each starts with a journald priority such as <6>) or json, one object per line (default: $SHREDVAULT_LOG_FORMAT).",
                               valueName: "text|json"))
    var logFormatOption: String?

    @Flag(name: [.short, .long], help: "Log one line when a job starts and one when it ends, with its duration and counts (level info); archive also prints one line per user.")
    var verbose = false

    @Flag(name: [.short, .long], help: "Print no warning; only results and the one error line of a failure.")
    var quiet = false

    /// The metrics file from `--metrics-file` or the environment, if either names one.
    var metricsFile: String? { nonEmpty(metricsFileOption) ?? nonEmpty(Self.environment(Self.metricsFileVariable)) }

    /// The log format (`validate()` and `checkSettings()` rejected any other text).
    var logFormat: JobLog.Format { logFormatText.flatMap(JobLog.Format.init(rawValue:)) ?? .text }

    private var logFormatText: String? { nonEmpty(logFormatOption) ?? nonEmpty(Self.environment(Self.logFormatVariable)) }

    /// The vault directory from `--vault` or the environment ("" if neither; `checkSettings()` reports that).
    var vaultPath: String { nonEmpty(vaultOption) ?? nonEmpty(Self.environment(Self.vaultVariable)) ?? "" }

    /// The restore key file from `--master-key-file` or the environment, if either names one.
    var restoreKeyPath: String? { nonEmpty(masterKeyFileOption) ?? nonEmpty(Self.environment(Self.restoreKeyVariable)) }

    /// The job's clock: `--now`, else `SHREDVAULT_NOW`, else the real clock (`checkSettings()` checked the text).
    var now: Int64 { nowText.flatMap(Timestamp.parse) ?? Timestamp.now }

    private var nowText: String? { nonEmpty(nowOption) ?? nonEmpty(Self.environment(Self.nowVariable)) }

    /// What set a simulated clock (`--now` or `SHREDVAULT_NOW`), nil for the real clock.
    var nowSource: String? {
        nonEmpty(nowOption) != nil ? "--now" : nonEmpty(Self.environment(Self.nowVariable)) != nil ? Self.nowVariable : nil
    }

    func validate() throws {
        guard lockWait.isFinite, lockWait >= 0 else { throw ValidationError("--lock-wait must be a number of seconds, 0 or more") }
        guard !(verbose && quiet) else { throw ValidationError("--verbose and --quiet exclude each other") }
    }

    /// Checks the values that may come from the environment: a vault is named, the clock parses. These fail as
    /// one `shredvault: error:` line with exit 64 (not the usage screen), since the culprit may be a variable.
    func checkSettings(needsVault: Bool = true) throws {
        JobLog.bootstrap(self)
        if needsVault, vaultPath.isEmpty {
            throw VaultError.invalidArgument("no vault given: pass --vault DIR or set \(Self.vaultVariable)")
        }
        if let text = logFormatText, JobLog.Format(rawValue: text) == nil {
            let source = nonEmpty(logFormatOption) != nil ? "--log-format" : Self.logFormatVariable
            throw VaultError.invalidArgument("\(source) '\(text)' is not a log format: use text or json")
        }
        if let text = nowText, let source = nowSource {
            guard let t = Timestamp.parse(text) else {
                throw VaultError.invalidArgument("\(source) '\(text)' is not an ISO-8601 time such as 2026-11-29T00:15:00Z or 2026-11-29")
            }
            guard Timestamp.isRepresentable(t) else {
                throw VaultError.invalidArgument("\(source) '\(text)' is \(Timestamp.format(t)) UTC, outside 1970-01-01 to 9999-12-31, the days a vault can hold")
            }
        }
    }

    /// Opens the vault, taking its lock (waiting up to `--lock-wait` seconds): shared for read-only commands,
    /// exclusive for the others. A command that would change a production vault refuses a simulated clock here, before
    /// anything changes; `--dry-run` changes nothing and takes one (vault-format.md §6.4).
    func openVault(readOnly: Bool = false, dryRun: Bool = false, createMissingCatalog: Bool = false, createMissingKeystore: Bool = false,
                   createMissingKeyring: Bool = false, trustAdministration: Bool = false) throws -> Vault {
        try checkSettings()
        let vault = try Vault(root: vaultPath, lockWait: lockWait, readOnly: readOnly, createMissingCatalog: createMissingCatalog,
                              createMissingKeystore: createMissingKeystore, trustAdministration: trustAdministration,
                              createMissingKeyring: createMissingKeyring)
        OpenVaults.shared.add(vault)
        if vault.config.isDrill { Output.drill = true }
        if !readOnly && !dryRun, let source = nowSource, !vault.config.isDrill { throw Vault.simulatedClockRefusal(source: source) }
        vault.acceptClock = acceptClock
        return vault
    }

    private static func environment(_ name: String) -> String? { ProcessInfo.processInfo.environment[name] }
}

private func nonEmpty(_ text: String?) -> String? {
    guard let text, !text.isEmpty else { return nil }
    return text
}

/// The vaults a command opened, closed by `reportingErrors` when the command ends so that a failed checkpoint or
/// close is reported (exit 74) instead of being lost in a destructor.
final class OpenVaults: @unchecked Sendable {
    static let shared = OpenVaults()
    private var vaults: [Vault] = []
    private let lock = NSLock()

    func add(_ vault: Vault) {
        lock.lock()
        vaults.append(vault)
        lock.unlock()
    }

    /// Closes every vault opened so far; the first failure is thrown after all were tried.
    func closeAll() throws {
        lock.lock()
        let open = vaults
        vaults = []
        lock.unlock()
        var first: Error?
        for v in open {
            do { try v.close() } catch { first = first ?? error }
        }
        if let first { throw first }
    }
}
