import Foundation
import XCTest

/// `tools/install` (issue 14, item 1), bounded for CI: it installs the debug binary (`--binary`) into a temporary
/// prefix and checks what lands there — the man page and the completions generate, the systemd units pass
/// `systemd-analyze verify` (Debian `systemd`, which tools/setup installs; its absence fails the test), and
/// `--uninstall` removes them and keeps the environment file. The release build with the static Swift runtime is
/// too slow for every CI run: README "Install" says how it was checked by hand.
final class InstallTests: XCTestCase {
    func testInstallIntoATemporaryPrefixAndUninstall() throws {
        let dir = try temporaryDirectory(self)
        let prefix = dir + "/usr", etc = dir + "/etc"
        let install = CLI.packageRoot + "/tools/install"
        let r = try CLI.execute(install, ["--prefix", prefix, "--sysconfdir", etc, "--binary", CLI.binary])
        XCTAssertEqual(r.status, 0, "tools/install failed: \(r.stderr)\n\(r.stdout)")
        let files = ["bin/shredvault", "share/man/man1/shredvault.1.gz", "share/bash-completion/completions/shredvault",
                     "share/zsh/site-functions/_shredvault", "share/fish/vendor_completions.d/shredvault.fish",
                     "lib/systemd/system/shredvault-archive.service", "lib/systemd/system/shredvault-archive.timer"]
        for f in files { XCTAssertTrue(FileManager.default.fileExists(atPath: prefix + "/" + f), "installed \(f)") }
        XCTAssertEqual(fileMode(prefix + "/bin/shredvault"), 0o755)
        XCTAssertEqual(fileMode(etc + "/shredvault/shredvault.env"), 0o640)

        // The installed binary names its version and the vault format version.
        let version = try CLI.execute(prefix + "/bin/shredvault", ["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertTrue(version.stdout.contains("vault format shredvault-vault/v1"), version.stdout)

        // The man page: roff that man renders, with every command (policy set among them).
        let page = try CLI.execute("/bin/sh", ["-c", "gzip -dc '\(prefix)/share/man/man1/shredvault.1.gz'"]).stdout
        XCTAssertTrue(page.contains(".TH SHREDVAULT 1"), String(page.prefix(300)))
        for command in ["shredvault archive", "shredvault policy set", "shredvault hold place", "shredvault receipt verify"] {
            XCTAssertTrue(page.contains(".SS " + command.replacingOccurrences(of: "-", with: "\\-")), "the man page documents \(command)")
        }
        // Completions name the subcommands, in each shell's syntax.
        let bash = try String(contentsOfFile: prefix + "/share/bash-completion/completions/shredvault", encoding: .utf8)
        XCTAssertTrue(bash.contains("complete") && bash.contains("policy"), String(bash.prefix(300)))
        let zsh = try String(contentsOfFile: prefix + "/share/zsh/site-functions/_shredvault", encoding: .utf8)
        XCTAssertTrue(zsh.hasPrefix("#compdef shredvault"), String(zsh.prefix(100)))
        let fish = try String(contentsOfFile: prefix + "/share/fish/vendor_completions.d/shredvault.fish", encoding: .utf8)
        XCTAssertTrue(fish.contains("complete -c 'shredvault'") && fish.contains("policy"), String(fish.prefix(300)))

        // The units point at this install and verify (the man: link resolves against the installed page).
        let unitDir = prefix + "/lib/systemd/system"
        let service = try String(contentsOfFile: unitDir + "/shredvault-archive.service", encoding: .utf8)
        XCTAssertTrue(service.contains("ExecStart=\(prefix)/bin/shredvault archive"), service)
        XCTAssertTrue(service.contains("EnvironmentFile=\(etc)/shredvault/shredvault.env"), service)
        for hardening in ["ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes", "ReadWritePaths=", "UMask=0077"] {
            XCTAssertTrue(service.contains(hardening), "the service sets \(hardening)")
        }
        XCTAssertFalse(service.contains("MASTER_KEY"), "the nightly job is never given the restore key")
        let timer = try String(contentsOfFile: unitDir + "/shredvault-archive.timer", encoding: .utf8)
        XCTAssertTrue(timer.contains("OnCalendar=*-*-* 00:15:00 UTC") && timer.contains("Persistent=true"), timer)
        let analyze = "/usr/bin/systemd-analyze"
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: analyze), "systemd-analyze is missing: tools/setup installs Debian's systemd")
        let verify = try CLI.execute(analyze, ["verify", unitDir + "/shredvault-archive.service", unitDir + "/shredvault-archive.timer"],
                                     environment: ["MANPATH": prefix + "/share/man"])
        XCTAssertEqual(verify.status, 0, "systemd-analyze verify: \(verify.stderr)\(verify.stdout)")
        XCTAssertEqual(verify.stderr, "", "systemd-analyze verify warned")

        // A second install keeps an edited environment file.
        try Data("SHREDVAULT_VAULT=/srv/edited\n".utf8).write(to: URL(fileURLWithPath: etc + "/shredvault/shredvault.env"))
        XCTAssertEqual(try CLI.execute(install, ["--prefix", prefix, "--sysconfdir", etc, "--binary", CLI.binary]).status, 0)
        XCTAssertEqual(try String(contentsOfFile: etc + "/shredvault/shredvault.env", encoding: .utf8), "SHREDVAULT_VAULT=/srv/edited\n")

        let un = try CLI.execute(install, ["--prefix", prefix, "--sysconfdir", etc, "--uninstall"])
        XCTAssertEqual(un.status, 0, un.stderr)
        for f in files { XCTAssertFalse(FileManager.default.fileExists(atPath: prefix + "/" + f), "uninstall removed \(f)") }
        XCTAssertTrue(FileManager.default.fileExists(atPath: etc + "/shredvault/shredvault.env"), "uninstall keeps the environment file")
    }

    func testInstallRefusesUnknownArguments() throws {
        let r = try CLI.execute(CLI.packageRoot + "/tools/install", ["--prefx", "/tmp/x"])
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertTrue(r.stderr.contains("unknown argument --prefx"), r.stderr)
    }
}
