import ArgumentParser
import Foundation
import ShredVault

/// The options every vault command shares (`@OptionGroup var global: GlobalOptions`).
/// Each falls back to an environment variable, so a cron line or systemd unit can set them once.
struct GlobalOptions: ParsableArguments {
    static let vaultVariable = "SHREDVAULT_VAULT"
    static let restoreKeyVariable = "SHREDVAULT_MASTER_KEY_FILE"
    static let nowVariable = "SHREDVAULT_NOW"

    @Option(name: .customLong("vault"), help: ArgumentHelp("Vault directory (default: $SHREDVAULT_VAULT).", valueName: "DIR"))
    var vaultOption: String?

    @Option(name: .customLong("master-key-file"),
            help: ArgumentHelp("Restore key file, mode 0600, kept outside the vault (default: $SHREDVAULT_MASTER_KEY_FILE). Read only by init, hold place/release, restore and check --read-data.",
                               valueName: "FILE"))
    var masterKeyFileOption: String?

    @Option(name: .customLong("now"),
            help: ArgumentHelp("Simulated clock for drills, tests and audits, ISO-8601 such as 2026-11-29T00:15:00Z (default: $SHREDVAULT_NOW, else the real clock).",
                               valueName: "TIME"))
    var nowOption: String?

    @Flag(help: "Print the result as one JSON object on stdout (list: one object per line).")
    var json = false

    @Option(help: ArgumentHelp("Wait up to this many seconds for another job to release the vault lock; 0 fails at once with exit code 75.",
                               valueName: "SECONDS"))
    var lockWait: Double = 0

    /// The vault directory from `--vault` or the environment ("" if neither; `checkSettings()` reports that).
    var vaultPath: String { nonEmpty(vaultOption) ?? nonEmpty(Self.environment(Self.vaultVariable)) ?? "" }

    /// The restore key file from `--master-key-file` or the environment, if either names one.
    var restoreKeyPath: String? { nonEmpty(masterKeyFileOption) ?? nonEmpty(Self.environment(Self.restoreKeyVariable)) }

    /// The job's clock: `--now`, else `SHREDVAULT_NOW`, else the real clock (`checkSettings()` checked the text).
    var now: Int64 { nowText.flatMap(Timestamp.parse) ?? Timestamp.now }

    private var nowText: String? { nonEmpty(nowOption) ?? nonEmpty(Self.environment(Self.nowVariable)) }

    func validate() throws {
        guard lockWait.isFinite, lockWait >= 0 else { throw ValidationError("--lock-wait must be a number of seconds, 0 or more") }
    }

    /// Checks the values that may come from the environment: a vault is named, the clock parses. These fail as
    /// one `shredvault: error:` line with exit 64 (not the usage screen), since the culprit may be a variable.
    func checkSettings() throws {
        if vaultPath.isEmpty {
            throw VaultError.invalidArgument("no vault given: pass --vault DIR or set \(Self.vaultVariable)")
        }
        if let text = nowText, Timestamp.parse(text) == nil {
            let source = nonEmpty(nowOption) != nil ? "--now" : Self.nowVariable
            throw VaultError.invalidArgument("\(source) '\(text)' is not an ISO-8601 time such as 2026-11-29T00:15:00Z or 2026-11-29")
        }
    }

    /// Opens the vault, taking its lock (waiting up to `--lock-wait` seconds): shared for read-only commands,
    /// exclusive for the others.
    func openVault(readOnly: Bool = false) throws -> Vault {
        try checkSettings()
        let vault = try Vault(root: vaultPath, lockWait: lockWait, readOnly: readOnly)
        OpenVaults.shared.add(vault)
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
