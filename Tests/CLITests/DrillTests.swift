import Foundation
import XCTest

/// Drill vaults (vault-format.md §6.4), through the binary: `init --drill`, `shredvault drill` and `recover --drill`
/// make vaults whose clock is free and which say "drill" everywhere; a drill copy has its own keyring and destruction
/// root and never writes the production vault's; a drill never becomes a production vault.
final class DrillTests: XCTestCase {
    /// The drill contract's core: `shredvault drill --from VAULT --to DIR` only reads the production vault. Whatever the
    /// drill does — a sweep 100 days ahead, a deletion, a hold's release, a keystore backup, every one a key destruction
    /// that retires the drill's root generations — the production vault directory, its keystore, keyring, destruction
    /// root, restore key and job credential stay byte for byte as they were, and it keeps working.
    func testADrillCopyNeverTouchesTheProductionVault() throws {
        let s = try Scenario(self)
        try s.productionWithUsers(["pa", "pb", "pc"])
        assertSuccess(try s.real(["hold", "place", "pa", "--case", "P1", "--reason", "production case"], key: s.keyFile), "hold pa")
        let production = [s.vault, s.dir + "/secrets"]
        let before = try bytesOf(production)
        XCTAssertNotNil(before[s.rootPath], "the comparison covers the destruction root")
        XCTAssertNotNil(before[s.keyringPath], "the comparison covers the keyring")

        let dir = s.dir + "/drill"
        let made = try runShredvault(["drill", "--from", s.vault, "--to", dir, "--json"])
        assertSuccess(made, "drill")
        XCTAssertEqual(made.json?["drill"] as? Bool, true, made.stdout)
        XCTAssertEqual(made.json?["liveBundles"] as? Int, 3, made.stdout)
        let drillVault = try XCTUnwrap(made.json?["vault"] as? String)
        let drillKeyring = try XCTUnwrap(made.json?["keyringPath"] as? String)
        let drillRoot = try XCTUnwrap(made.json?["rootPath"] as? String)
        XCTAssertTrue(drillKeyring.hasPrefix(dir + "/") && drillRoot.hasPrefix(dir + "/") && drillVault == dir + "/vault", made.stdout)
        XCTAssertEqual(try bytesOf(production), before, "making the drill wrote nothing of the production vault")

        // The drill runs on a simulated clock, says so, and destroys keys in its own keyring and root only.
        func drill(_ args: [String], day: Int, key: Bool = false) throws -> CLI.Result {
            try runShredvault(args + ["--vault", drillVault, "--now", isoDay(day), "--json"] + (key ? ["--master-key-file", s.keyFile] : []))
        }
        let status = try drill(["status"], day: 0)
        assertSuccess(status, "drill status")
        XCTAssertEqual(status.json?["drill"] as? Bool, true, status.stdout)
        XCTAssertEqual(status.json?["liveBundles"] as? Int, 3, status.stdout)
        assertSuccess(try drill(["restore", "pa", "--case", "P1", "--to", s.dir + "/drill-pa"], day: 1, key: true), "restore in the drill")
        XCTAssertEqual(try Tree(s.dir + "/drill-pa"), try Tree(s.pristine + "/users/pa"), "the drill restores byte-identical")
        let sweep = try drill(["sweep"], day: 100)
        assertSuccess(sweep, "sweep 100 days ahead in the drill")
        XCTAssertEqual((sweep.json?["destroyedDayKeys"] as? [String])?.count, 1, sweep.stdout)
        XCTAssertEqual(sweep.json?["expiredBundles"] as? Int, 2, "pb and pc expire in the drill: \(sweep.stdout)")
        XCTAssertEqual(sweep.json?["drill"] as? Bool, true, sweep.stdout)
        assertSuccess(try drill(["hold", "release", "pa", "--case", "P1"], day: 101, key: true), "hold release in the drill")
        assertSuccess(try drill(["keystore", "backup", "--to", s.dir + "/drill.svks"], day: 101), "keystore backup in the drill")
        assertSuccess(try drill(["sweep"], day: 140), "the drill's last sweep")
        XCTAssertEqual(try drill(["status"], day: 140).json?["liveBundles"] as? Int, 0, "the drill expired everything")
        assertSuccess(try drill(["check"], day: 140), "check in the drill")

        XCTAssertEqual(try bytesOf(production), before, "the drill's destructions wrote nothing of the production vault")
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: drillRoot)), before[s.rootPath], "the drill's root moved on, alone")
        XCTAssertNotEqual(try Data(contentsOf: URL(fileURLWithPath: drillKeyring)), before[s.keyringPath], "the drill's keyring is its own")
        // Production is intact and works: its hold still holds, its other users are live, its jobs run.
        let prodStatus = try s.real(["status"])
        XCTAssertEqual(prodStatus.json?["liveBundles"] as? Int, 3, prodStatus.stdout)
        XCTAssertEqual(prodStatus.json?["drill"] as? Bool, false, prodStatus.stdout)
        assertSuccess(try s.real(["sweep"]), "production sweep")
        assertSuccess(try s.real(["restore", "pa", "--case", "P1", "--to", s.dir + "/prod-pa"], key: s.keyFile), "production restore")
        XCTAssertEqual(try Tree(s.dir + "/prod-pa"), try Tree(s.pristine + "/users/pa"))
        let check = try s.real(["check", "--read-data"], key: s.keyFile)
        assertSuccess(check, "production check --read-data")
        XCTAssertEqual(check.json?["checkedBundles"] as? Int, 3, check.stdout)
    }

    /// `drill` refuses a target that holds something and a source that is no vault, creating nothing.
    func testDrillRefusesAnOccupiedTarget() throws {
        let s = try Scenario(self)
        try s.productionWithUsers(["pa"])
        try FileManager.default.createDirectory(atPath: s.dir + "/busy", withIntermediateDirectories: false)
        try write("mine\n", to: s.dir + "/busy/file")
        try assertChangesNothing(s, "drill into an occupied directory") {
            assertOneLineError(try runShredvault(["drill", "--from", s.vault, "--to", s.dir + "/busy"]), exit: 73, [s.dir + "/busy"], "occupied target")
            assertOneLineError(try runShredvault(["drill", "--from", s.dir + "/nothing", "--to", s.dir + "/d2"]), exit: 66, ["nothing"], "no vault")
            assertOneLineError(try runShredvault(["drill", "--from", s.vault, "--to", s.vault + "/inside"]), exit: 64, ["outside the vault"], "inside")
        }
        XCTAssertEqual(listing(s.dir + "/busy"), ["file"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir + "/d2"))
    }

    /// `init --drill`: the clock is free — a job 1000 days ahead, then one back on day 5, both run — and every report
    /// says "drill": status (text and JSON) and every JSON object any command prints.
    func testADrillVaultsClockIsFreeAndEveryReportSaysDrill() throws {
        let s = try Scenario(self)
        try s.writeSource([SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 81)),
                           SourceUser(id: "ub", lastActive: inactiveDate, files: sampleFiles(seed: 82)),
                           SourceUser(id: "uc", lastActive: inactiveDate, files: sampleFiles(seed: 83))])
        let initialized = try s.sv(["init", "--drill"], day: 0, key: s.keyFile)
        assertSuccess(initialized, "init --drill")
        XCTAssertEqual(initialized.json?["drill"] as? Bool, true, initialized.stdout)
        XCTAssertEqual(s.config["drill"] as? Bool, true, "the config says drill")
        var reports: [(String, CLI.Result)] = []
        func run(_ what: String, _ r: CLI.Result) { assertSuccess(r, what); reports.append((what, r)) }
        run("archive", try s.sv(["archive", "--source", s.source, "--user", "ua", "--user", "ub"], day: 0))
        run("status", try s.sv(["status"], day: 1))
        run("list", try s.sv(["list"], day: 1))
        run("hold place --all", try s.svk(["hold", "place", "--all", "--case", "D1", "--reason", "drill"], day: 1))
        run("hold list", try s.sv(["hold", "list"], day: 1))
        run("backup", try s.sv(["backup", "--to", s.dir + "/backup"], day: 2))
        run("sweep 1000 days ahead", try s.sv(["sweep"], day: 1000))
        run("archive back on day 5", try s.sv(["archive", "--source", s.source, "--user", "uc"], day: 5))
        run("delete", try s.sv(["delete", "uc", "--request-id", "DSR-D"], day: 6))
        run("check", try s.sv(["check"], day: 6))
        run("audit verify", try s.sv(["audit", "verify"], day: 6))
        for (what, r) in reports {
            let objects: [[String: Any]] = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))).flatMap { $0 as? [[String: Any]] }
                ?? jsonLines(r.stdout)
            XCTAssertFalse(objects.isEmpty, "\(what) printed JSON: \(r.stdout)")
            for o in objects { XCTAssertEqual(o["drill"] as? Bool, true, "\(what) says drill: \(r.stdout)") }
        }
        let text = try s.sv(["status"], day: 5, json: false)
        assertSuccess(text, "status (text)")
        XCTAssertTrue(text.stdout.contains("DRILL vault"), text.stdout)
        XCTAssertFalse(text.stdout.contains("latest job"), "a drill has no clock guard: \(text.stdout)")
        let checkText = try s.sv(["check"], day: 5, json: false)
        XCTAssertTrue(checkText.stdout.contains("(drill vault)"), checkText.stdout)
    }

    /// A drill never becomes a production vault, and a production vault cannot become a drill by editing its config:
    /// the keyring's binding records which it is, and every job refuses a config that disagrees. Nor does a production
    /// vault accept a drill's keyring.
    func testDrillAndProductionCannotBeSwapped() throws {
        // A drill vault whose config no longer says drill.
        let d = try Scenario(self)
        try d.initVault()
        try editConfig(d) { $0.removeValue(forKey: "drill") }
        try assertChangesNothing(d, "jobs on a drill vault edited to production") {
            assertOneLineError(try d.real(["status"]), exit: 13, ["keyring of a drill copy", "not of this production vault"], "status")
            assertOneLineError(try d.real(["sweep"]), exit: 13, ["keyring of a drill copy"], "sweep")
        }
        // A production vault whose config was edited to say drill (to lift the clock guard): refused, with --now too.
        let s = try Scenario(self)
        try s.productionWithUsers(["pa"])
        try editConfig(s) { $0["drill"] = true }
        try assertChangesNothing(s, "jobs on a production vault edited to drill") {
            assertOneLineError(try s.real(["sweep"], extra: ["--now", "2030-01-01"]), exit: 13, ["keyring of the production vault"], "sweep --now")
            assertOneLineError(try s.real(["status"]), exit: 13, ["keyring of the production vault"], "status")
        }
        try editConfig(s) { $0.removeValue(forKey: "drill") }
        assertSuccess(try s.real(["sweep"]), "the config restored, the vault works")
        // A drill's keyring in place of the production keyring.
        let made = try runShredvault(["drill", "--from", s.vault, "--to", s.dir + "/drill", "--json"])
        assertSuccess(made, "drill")
        let own = try Data(contentsOf: URL(fileURLWithPath: s.keyringPath))
        try Data(contentsOf: URL(fileURLWithPath: try XCTUnwrap(made.json?["keyringPath"] as? String))).write(to: URL(fileURLWithPath: s.keyringPath))
        try assertChangesNothing(s, "jobs with a drill's keyring") {
            assertOneLineError(try s.real(["sweep"]), exit: 13, ["keyring of a drill copy"], "sweep")
            assertOneLineError(try s.real(["check"]), exit: 13, ["keyring of a drill copy"], "check")
        }
        try own.write(to: URL(fileURLWithPath: s.keyringPath))
        assertSuccess(try s.real(["sweep"]), "its own keyring back, the vault works")
    }

    /// `recover --drill` makes a drill from a production backup with copies of the keyring and root; it refuses to
    /// run without copies, and a production recover refuses --now. Neither refusal creates anything; the production
    /// vault is never written.
    func testRecoverAsADrill() throws {
        let s = try Scenario(self)
        try s.productionWithUsers(["pa", "pb"])
        assertSuccess(try s.real(["backup", "--to", s.dir + "/backup"]), "backup")
        let production = [s.vault, s.dir + "/secrets"]
        let before = try bytesOf(production)
        let target = s.dir + "/recovered"
        assertOneLineError(try s.real(["recover", "--from", s.dir + "/backup", "--drill"], key: s.keyFile, vault: target), exit: 64,
                           ["--drill needs copies"], "recover --drill without copies")
        assertOneLineError(try s.real(["recover", "--from", s.dir + "/backup"], key: s.keyFile, vault: target, extra: ["--now", "2027-01-01"]),
                           exit: 12, ["--now", "simulated clock"], "production recover with --now")
        XCTAssertFalse(FileManager.default.fileExists(atPath: target), "the refused recovers made nothing")
        try FileManager.default.createDirectory(atPath: s.dir + "/copies", withIntermediateDirectories: false)
        try FileManager.default.copyItem(atPath: s.keyringPath, toPath: s.dir + "/copies/keyring.db")
        try FileManager.default.copyItem(atPath: s.rootPath, toPath: s.dir + "/copies/root")
        let recover = try s.real(["recover", "--from", s.dir + "/backup", "--drill", "--keyring", s.dir + "/copies/keyring.db",
                                  "--root-file", s.dir + "/copies/root"], key: s.keyFile, vault: target, extra: ["--now", isoDay(10)])
        assertSuccess(recover, "recover --drill")
        XCTAssertEqual(recover.json?["drill"] as? Bool, true, recover.stdout)
        let status = try runShredvault(["status", "--vault", target, "--now", isoDay(10), "--json"])
        XCTAssertEqual(status.json?["drill"] as? Bool, true, status.stdout)
        XCTAssertEqual(status.json?["liveBundles"] as? Int, 2, status.stdout)
        let sweep = try runShredvault(["sweep", "--vault", target, "--now", isoDay(100), "--json"])
        assertSuccess(sweep, "sweep 100 days ahead in the recovered drill")
        XCTAssertEqual(sweep.json?["expiredBundles"] as? Int, 2, sweep.stdout)
        XCTAssertEqual(try bytesOf(production), before, "the production vault was never written")
        assertSuccess(try s.real(["sweep"]), "production still works")
    }

    func editConfig(_ s: Scenario, _ change: (inout [String: Any]) -> Void) throws {
        var config = s.config
        change(&config)
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            .write(to: URL(fileURLWithPath: s.vault + "/config"))
    }

    /// `YYYY-MM-DD` of the real date plus `days`.
    func isoDay(_ days: Int) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd'T'12:00:00'Z'"
        return f.string(from: Date(timeIntervalSinceNow: TimeInterval(days) * 86_400))
    }
}
