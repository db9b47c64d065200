import Foundation
import XCTest

/// Least privilege (DESIGN-BRIEF §3): the nightly archive job, sweep, delete, status, list and check run without
/// the restore key; the jobs that decrypt (restore, hold, check --read-data) refuse without it (exit 77).
final class LifecycleLeastPrivilegeTests: XCTestCase {
    func testJobsThatDoNotDecryptRunWithoutTheRestoreKey() throws {
        let s = try Scenario(self)
        try s.writeSource([
            SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 5)),
            SourceUser(id: "ub", lastActive: inactiveDate, files: sampleFiles(seed: 6)),
            SourceUser(id: "uc", lastActive: inactiveDate, files: sampleFiles(seed: 7)),
        ])
        try s.initVault()
        // The restore key leaves the archive host.
        let away = s.dir + "/elsewhere.key"
        try FileManager.default.moveItem(atPath: s.keyFile, toPath: away)

        // Neither --master-key-file nor SHREDVAULT_MASTER_KEY_FILE.
        let archive = try s.sv(["archive", "--source", s.source], day: 0)
        assertSuccess(archive, "archive without the restore key")
        XCTAssertEqual(((archive.json?["archived"] as? [[String: Any]]) ?? []).count, 3, archive.stdout)
        assertSuccess(try s.sv(["sweep"], day: 1), "sweep without the restore key")
        let del = try s.sv(["delete", "ua", "--request-id", "R1"], day: 1)
        assertSuccess(del, "delete without the restore key")
        XCTAssertEqual(del.json?["outcome"] as? String, "shredded", del.stdout)
        assertSuccess(try s.sv(["status"], day: 1), "status without the restore key")
        XCTAssertEqual(try s.listed(day: 1).count, 2)
        assertSuccess(try s.sv(["list", "--expiring-before", SimDay.iso(100)], day: 1), "list --expiring-before")
        assertSuccess(try s.sv(["check"], day: 1), "check without the restore key")
        assertSuccess(try s.sv(["audit", "verify"], day: 1), "audit verify without the restore key")
        assertSuccess(try s.sv(["hold", "list", "--all"], day: 1), "hold list without the restore key")

        // The decrypting jobs refuse, naming how to supply the key, and change nothing.
        try assertChangesNothing(s, "refusals without the restore key") {
            let restore = try s.sv(["restore", "ub", "--case", "C1", "--to", s.dir + "/out"], day: 1)
            assertOneLineError(restore, exit: 77, ["--master-key-file"], "restore without the restore key")
            let hold = try s.sv(["hold", "place", "ub", "--case", "C1", "--reason", "r"], day: 1)
            assertOneLineError(hold, exit: 77, ["--master-key-file"], "hold place without the restore key")
            let release = try s.sv(["hold", "release", "ub", "--case", "C1"], day: 1)
            assertOneLineError(release, exit: 77, ["--master-key-file"], "hold release without the restore key")
            let read = try s.sv(["check", "--read-data"], day: 1)
            assertOneLineError(read, exit: 77, ["--master-key-file"], "check --read-data without the restore key")
        }

        // SHREDVAULT_MASTER_KEY_FILE names the (now missing) file, as a cron environment might: the jobs that do
        // not decrypt never read it; the decrypting ones fail with exit 77.
        let env = ["SHREDVAULT_MASTER_KEY_FILE": s.keyFile]
        for job in [["archive", "--source", s.source], ["sweep"], ["status"], ["list"], ["check"]] {
            assertSuccess(try s.sv(job, day: 2, environment: env), "\(job[0]) with SHREDVAULT_MASTER_KEY_FILE pointing to a missing file")
        }
        assertSuccess(try s.sv(["delete", "ub", "--request-id", "R2"], day: 2, environment: env), "delete with a missing key file")
        try assertChangesNothing(s, "restore with a missing key file") {
            let restore = try s.sv(["restore", "uc", "--case", "C1", "--to", s.dir + "/out"], day: 2, environment: env)
            XCTAssertEqual(restore.status, 77, restore.stderr)
            XCTAssertTrue(restore.stderr.contains(s.keyFile) || restore.stderr.contains("--master-key-file"), restore.stderr)
        }

        // With the key back, the bundle the keyless archiver wrote is decryptable (the key was the only obstacle),
        // and SHREDVAULT_MASTER_KEY_FILE is honoured.
        try FileManager.default.moveItem(atPath: away, toPath: s.keyFile)
        assertSuccess(try s.sv(["hold", "place", "uc", "--case", "C1", "--reason", "r"], day: 3, environment: env), "hold place via env")
        assertSuccess(try s.sv(["restore", "uc", "--case", "C1", "--to", s.dir + "/out"], day: 3, environment: env), "restore via env")
        XCTAssertEqual(try Tree(s.dir + "/out"), try Tree(s.pristine + "/users/uc"))
        assertSuccess(try s.svk(["check", "--read-data"], day: 3), "check --read-data with the key")
    }
}
