import Foundation
import XCTest

/// The destruction root in a PKCS#11 token, driven through the binary as an operator would: `init
/// --pkcs11-module/--pkcs11-token/--pkcs11-pin-file`, then the nightly job, a deletion, a hold and a restore, all
/// with the PIN file the config records; a job without any PIN source fails with one line and exit 77.
/// SoftHSM2 is required (CI installs it); without it this test fails saying so.
final class HSMRootCLITests: XCTestCase {
    let module = ProcessInfo.processInfo.environment["SHREDVAULT_TEST_PKCS11_MODULE"] ?? "/usr/lib/softhsm/libsofthsm2.so"

    func run(_ tool: String, _ args: [String], env: [String: String]) throws -> CLI.Result {
        try CLI.execute(tool, args, environment: env, scrubbed: true)
    }

    func testVaultWithItsRootInASoftHSMToken() throws {
        guard FileManager.default.fileExists(atPath: module) else {
            return XCTFail("SoftHSM2 is not installed (no \(module)): apt-get install softhsm2 opensc")
        }
        let s = try Scenario(self)
        let conf = s.dir + "/softhsm2.conf"
        try FileManager.default.createDirectory(atPath: s.dir + "/tokens", withIntermediateDirectories: false)
        try write("directories.tokendir = \(s.dir)/tokens\nobjectstore.backend = file\nlog.level = ERROR\n", to: conf)
        let env = ["SOFTHSM2_CONF": conf]
        let made = try run("/usr/bin/softhsm2-util", ["--init-token", "--free", "--label", "vault-root", "--pin", "cli-pin-4321", "--so-pin", "cli-so-8765"], env: env)
        XCTAssertEqual(made.status, 0, made.stderr)
        try write("cli-pin-4321\n", to: s.dir + "/secrets/pin", mode: 0o600)

        let initialized = try s.sv(["init", "--drill", "--pkcs11-module", module, "--pkcs11-token", "vault-root", "--pkcs11-pin-file", s.dir + "/secrets/pin"],
                                   day: 0, key: s.keyFile, environment: env)
        assertSuccess(initialized, "init with a PKCS#11 root")
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: s.vault + "/config"))) as? [String: Any]
        let root = config?["root"] as? [String: Any]
        XCTAssertEqual(root?["kind"] as? String, "pkcs11")
        XCTAssertEqual(root?["token"] as? String, "vault-root")
        XCTAssertFalse(String(decoding: try Data(contentsOf: URL(fileURLWithPath: s.vault + "/config")), as: UTF8.self).contains("cli-pin-4321"),
                       "the PIN is never written to the config")

        try s.writeSource([SourceUser(id: "u1", lastActive: "2025-01-01", files: sampleFiles(seed: 1)),
                           SourceUser(id: "u2", lastActive: "2025-01-01", files: sampleFiles(seed: 2))])
        assertSuccess(try s.sv(["archive", "--source", s.source], day: 0, environment: env), "archive")
        assertSuccess(try s.sv(["delete", "u2", "--request-id", "DSR-H1"], day: 1, environment: env), "delete")
        assertSuccess(try s.sv(["hold", "place", "u1", "--case", "H-1", "--reason", "claim"], day: 2, key: s.keyFile, environment: env), "hold place")
        assertSuccess(try s.sv(["restore", "u1", "--case", "H-1", "--to", s.dir + "/out"], day: 2, key: s.keyFile, environment: env), "restore")
        XCTAssertEqual(try Tree(s.dir + "/out"), try Tree(s.pristine + "/users/u1"))
        let deleted = try s.sv(["restore", "u2", "--case", "H-1", "--to", s.dir + "/never"], day: 2, key: s.keyFile, environment: env)
        XCTAssertNotEqual(deleted.status, 0)
        assertSuccess(try s.sv(["check", "--read-data"], day: 2, key: s.keyFile, environment: env), "check --read-data")
        // Its root keys cannot leave the token, so the vault cannot be copied for a drill: refused, nothing made.
        let drill = try runShredvault(["drill", "--from", s.vault, "--to", s.dir + "/drill"], environment: env)
        assertOneLineError(drill, exit: 64, ["PKCS#11", "recover --drill"], "drill of a vault with a PKCS#11 root")
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir + "/drill"), "the refused drill made nothing")

        // Without the PIN file (moved away) and without the variable: one line, exit 77, nothing changed.
        try FileManager.default.moveItem(atPath: s.dir + "/secrets/pin", toPath: s.dir + "/pin-elsewhere")
        let refused = try s.sv(["sweep"], day: 3, json: false, environment: env)
        assertOneLineError(refused, exit: 77, ["pkcs11", "PIN"], "sweep without a PIN")
        // With the PIN in the environment it runs.
        assertSuccess(try s.sv(["sweep"], day: 3, environment: env.merging(["SHREDVAULT_PKCS11_PIN": "cli-pin-4321"]) { $1 }), "sweep with $SHREDVAULT_PKCS11_PIN")
    }
}
