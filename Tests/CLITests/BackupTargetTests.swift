import Foundation
import XCTest

/// `backup --to` writes only into a new or empty directory or a backup of this vault (issue #12 item 3): anything
/// else is refused with one line and exit 73, and neither the vault nor the directory changes. Reruns within the same
/// second, and a rerun of an interrupted first backup, work. Day 0 = 2026-11-29.
final class BackupTargetTests: XCTestCase {
    func archivedScenario() throws -> Scenario {
        let s = try Scenario(self)
        try s.writeSource([SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 81)),
                           SourceUser(id: "ub", lastActive: inactiveDate, files: sampleFiles(seed: 82))])
        try s.initVault()
        assertSuccess(try s.sv(["archive", "--source", s.source], day: 0), "archive")
        return s
    }

    /// Every regular file under `root` with its bytes (a directory that is not a vault of a Scenario).
    func contents(_ root: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for path in regularFiles(under: root) { out[path] = try Data(contentsOf: URL(fileURLWithPath: path)) }
        return out
    }

    func assertRefused(_ s: Scenario, to target: String, _ needles: [String], _ what: String,
                       file: StaticString = #filePath, line: UInt = #line) throws {
        let before = try contents(target)
        let existed = FileManager.default.fileExists(atPath: target)
        try assertChangesNothing(s, what, file: file, line: line) {
            let r = try s.sv(["backup", "--to", target], day: 1)
            assertOneLineError(r, exit: 73, ["refusing to back up into \(target)", "nothing was written"] + needles, what, file: file, line: line)
        }
        XCTAssertEqual(FileManager.default.fileExists(atPath: target), existed, "\(what): the target was created or removed", file: file, line: line)
        XCTAssertEqual(try contents(target), before, "\(what): the target changed", file: file, line: line)
    }

    func testBackupRefusesEverythingButABackupOfThisVault() throws {
        let s = try archivedScenario()
        let other = try Scenario(self)
        try other.writeSource([SourceUser(id: "uo", lastActive: inactiveDate, files: sampleFiles(seed: 83))])
        try other.initVault()
        assertSuccess(try other.sv(["archive", "--source", other.source], day: 0), "archive the other vault")

        // Another vault's live directory: its config, catalog and master.pub stay as they are, and it still checks.
        try assertChangesNothing(other, "backup into another vault") {
            try assertRefused(s, to: other.vault, ["the directory of the live vault"], "another vault's directory")
        }
        assertSuccess(try other.sv(["check"], day: 1), "the other vault still checks")
        // This vault's own directory, and a new directory inside it.
        try assertRefused(s, to: s.vault, ["this vault's own directory"], "the vault's own directory")
        try assertRefused(s, to: s.vault + "/backup", ["inside this vault's directory"], "a directory inside the vault")
        try assertRefused(s, to: s.vault + "/bundles", ["inside this vault's directory"], "the vault's bundle tree")
        // An unrelated non-empty directory, and a file.
        try FileManager.default.createDirectory(atPath: s.dir + "/photos", withIntermediateDirectories: false)
        try write("holiday\n", to: s.dir + "/photos/beach.jpg")
        try assertRefused(s, to: s.dir + "/photos", ["holds 'beach.jpg'"], "an unrelated directory")
        try write("a file\n", to: s.dir + "/plain-file")
        try assertRefused(s, to: s.dir + "/plain-file", ["not a directory"], "a file")
        // Another vault's backup, complete or without its manifest (interrupted).
        let otherBackup = s.dir + "/other-backup"
        assertSuccess(try other.sv(["backup", "--to", otherBackup], day: 1), "back up the other vault")
        let otherId = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: other.vault + "/config"))) as? [String: Any])["vaultId"] as? String
        try assertRefused(s, to: otherBackup, ["holds a backup of vault \(otherId ?? "?")"], "another vault's backup")
        try FileManager.default.removeItem(atPath: otherBackup + "/backup.json")
        try assertRefused(s, to: otherBackup, ["holds the config of vault \(otherId ?? "?")"], "another vault's interrupted backup")
        // A backup of this vault next to something else.
        let mixed = s.dir + "/mixed"
        assertSuccess(try s.sv(["backup", "--to", mixed], day: 1), "a backup of this vault")
        try write("notes\n", to: mixed + "/notes.txt")
        try assertRefused(s, to: mixed, ["holds 'notes.txt'"], "a backup of this vault with an unrelated file")
    }

    func testBackupsInTheSameSecondAndAnInterruptedFirstBackupSucceed() throws {
        let s = try archivedScenario()
        let dir = s.dir + "/backup"
        // An existing empty directory is a new backup's place.
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false)
        var names: [String] = []
        for run in 1...3 {
            let r = try s.sv(["backup", "--to", dir], day: 1)
            assertSuccess(r, "backup \(run) in the same second")
            names.append(r.json?["keystoreSnapshot"] as? String ?? "?")
        }
        let stamp = SimDay.now(1).replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
        XCTAssertEqual(names, ["keystore-\(stamp).svks", "keystore-\(stamp)-2.svks", "keystore-\(stamp)-3.svks"])
        // A snapshot the operator pruned: its name is not given to the next snapshot of the same second.
        try FileManager.default.removeItem(atPath: dir + "/" + names[0])
        let fourth = try s.sv(["backup", "--to", dir], day: 1)
        assertSuccess(fourth, "backup after pruning")
        XCTAssertEqual(fourth.json?["keystoreSnapshot"] as? String, "keystore-\(stamp)-4.svks")
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/backup.json"))) as? [String: Any]
        XCTAssertEqual(manifest?["keystoreSnapshot"] as? String, "keystore-\(stamp)-4.svks")
        let restore = try s.svk(["keystore", "restore", dir + "/keystore-\(stamp)-4.svks"], day: 1)
        assertSuccess(restore, "the newest snapshot restores")

        // A first backup interrupted before its manifest (the last file it writes) is finished by a rerun.
        let first = s.dir + "/first"
        assertSuccess(try s.sv(["backup", "--to", first], day: 2), "first backup")
        try FileManager.default.removeItem(atPath: first + "/backup.json")
        let rerun = try s.sv(["backup", "--to", first], day: 2)
        assertSuccess(rerun, "rerun of an interrupted first backup")
        XCTAssertEqual(rerun.json?["presentBundles"] as? Int, 2, rerun.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: first + "/backup.json"))
        // Beside this vault's manifest, a damaged copy of the config is simply written again.
        try write("{ damaged\n", to: first + "/config")
        assertSuccess(try s.sv(["backup", "--to", first], day: 2), "backup over a damaged config copy")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: first + "/config")), try Data(contentsOf: URL(fileURLWithPath: s.vault + "/config")))
        // Without a manifest, a config that is no vault's makes the directory unknown: refused.
        try FileManager.default.removeItem(atPath: first + "/backup.json")
        try write("{ damaged\n", to: first + "/config")
        try assertRefused(s, to: first, ["holds a config that is not one of this vault"], "a damaged config without a manifest")
    }
}
