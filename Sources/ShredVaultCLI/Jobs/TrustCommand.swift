import ArgumentParser
import Foundation
import ShredVault

struct TrustCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust",
        abstract: "The vault's signed trust record and its job credential (guarantee G8).",
        discussion: """
            The trust record (VAULT/trust) names the master key the vault seals to and the job credentials that may \
            sign for it, signed by the restore key. Every job checks master.pub against it before using any key; a job \
            that changes the vault also loads its job credential (a 0600 file outside the vault, from \
            $SHREDVAULT_JOB_KEY or the config's jobKeyPath), which names the master key it was issued under. Set \
            SHREDVAULT_JOB_KEY in the jobs' environment (cron, systemd) so the pin does not depend on the vault \
            directory. `init` makes both; these commands need the restore key.
            """,
        subcommands: [TrustInit.self, TrustRotate.self, TrustShow.self])
}

struct TrustInit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Sign a trust record and issue a job credential for a vault made before trust records (restore key).")

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("job-key"), help: ArgumentHelp("Where to create the job credential (default: beside the keyring).", valueName: "FILE"))
    var jobKey: String?

    func run() throws { try runIssue(global: global, jobKey: jobKey, rotate: false) }
}

struct TrustRotate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate",
        abstract: "Issue a new job credential and revoke the active ones, re-signing the trust record (restore key).")

    @OptionGroup var global: GlobalOptions

    @Option(name: .customLong("job-key"), help: ArgumentHelp("Where to create the new credential (default: beside the keyring).", valueName: "FILE"))
    var jobKey: String?

    func run() throws { try runIssue(global: global, jobKey: jobKey, rotate: true) }
}

private func runIssue(global: GlobalOptions, jobKey: String?, rotate: Bool) throws {
    try reportingErrors {
        let vault = try global.openVault(trustAdministration: true)
        let key = try vault.restoreKey(path: global.restoreKeyPath)
        let report = try vault.issueJobCredential(restoreKey: key, jobKeyPath: jobKey, rotate: rotate, now: global.now)
        if global.json { return try Output.json(report) }
        print("trust record \(report.serial) signed for master key \(report.masterKeyId); job credential \(report.jobKeyId) at \(report.jobKeyPath)"
              + (report.revoked.isEmpty ? "" : "; revoked \(report.revoked.joined(separator: ", "))")
              + (report.endorsedBundles > 0 ? "; endorsed \(report.endorsedBundles) live bundles with the restore key" : ""))
        Output.note("set \(Vault.jobKeyVariable)=\(report.jobKeyPath) in the environment of the jobs that change the vault")
    }
}

struct TrustShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print the trust record after checking its signature against master.pub.")

    @OptionGroup var global: GlobalOptions

    func run() throws {
        try reportingErrors {
            let vault = try global.openVault(readOnly: true)
            guard let trust = vault.trust else { throw VaultError.notFound(path: global.vaultPath + "/trust", what: "trust record (run `shredvault trust init`)") }
            if global.json { return try Output.json(trust) }
            print("trust record \(trust.serial), signed \(Timestamp.format(trust.signedAt)), master key \(trust.masterKeyId)"
                  + (trust.auditSignedFrom.map { "; audit records signed from record \($0) on" } ?? ""))
            for s in trust.signers {
                print("  \(s.role) \(s.keyId) added \(Timestamp.format(s.addedAt))" + (s.revokedAt.map { ", revoked \(Timestamp.format($0))" } ?? ""))
            }
        }
    }
}
