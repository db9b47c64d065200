import Foundation
import XCTest

/// Stable machine output (issue 14, item 6; docs/json-schema.md): every object a command prints with `--json` carries
/// `"schemaVersion": 1`, and every object that names a user id as `user` also names it as `userId`.
final class JSONSchemaTests: XCTestCase {
    /// Checks every JSON object on stdout (one per line; a top-level array's elements count as objects).
    private func assertStamped(_ r: CLI.Result, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 0, "\(what): exit \(r.status), stderr: \(r.stderr)", file: file, line: line)
        let lines = r.stdout.split(separator: "\n")
        XCTAssertFalse(lines.isEmpty, "\(what) printed no JSON", file: file, line: line)
        for text in lines {
            guard let value = try? JSONSerialization.jsonObject(with: Data(text.utf8)) else {
                XCTFail("\(what): not JSON: \(text)", file: file, line: line)
                continue
            }
            let objects = (value as? [Any]) ?? [value]
            for case let object as [String: Any] in objects {
                XCTAssertEqual(object["schemaVersion"] as? Int, 1, "\(what): no schemaVersion 1 in \(text)", file: file, line: line)
                checkUserIds(object, what, file: file, line: line)
            }
            if !(objects.allSatisfy { $0 is [String: Any] }) { XCTFail("\(what): not an object: \(text)", file: file, line: line) }
        }
    }

    private func checkUserIds(_ value: Any, _ what: String, file: StaticString, line: UInt) {
        if let array = value as? [Any] { return array.forEach { checkUserIds($0, what, file: file, line: line) } }
        guard let object = value as? [String: Any] else { return }
        if let user = object["user"] as? String {
            XCTAssertEqual(object["userId"] as? String, user, "\(what): user without the same userId in \(object)", file: file, line: line)
        }
        object.values.forEach { checkUserIds($0, what, file: file, line: line) }
    }

    private let trickyReason = #"case {"user":"x","userId":"y"} "user":"z" \"#

    func testEveryCommandsJSONCarriesTheSchemaVersion() throws {
        let s = try Scenario(self)
        try s.writeSource([SourceUser(id: "ua", lastActive: inactiveDate, files: sampleFiles(seed: 1)),
                           SourceUser(id: "ub", lastActive: inactiveDate, files: sampleFiles(seed: 2)),
                           SourceUser(id: "uc", lastActive: inactiveDate, files: sampleFiles(seed: 3))])
        let initialized = try s.sv(["init", "--drill"], day: 0, key: s.keyFile)
        assertStamped(initialized, "init")
        let commands: [(String, [String], Bool)] = [
            ("archive --dry-run", ["archive", "--source", s.source, "--dry-run"], false),
            ("archive", ["archive", "--source", s.source], false),
            ("list", ["list"], false),
            ("status", ["status"], false),
            ("report", ["report", "--to", s.dir + "/report"], false),
            ("check", ["check"], false),
            ("audit verify", ["audit", "verify"], false),
            // A reason that looks like a user key must pass through as text (the userId pass reads keys only).
            ("hold place", ["hold", "place", "ua", "--case", "C1", "--reason", trickyReason], true),
            ("hold place (two users)", ["hold", "place", "ua", "uc", "--case", "C2", "--reason", trickyReason], true),
            ("hold list", ["hold", "list"], false),
            ("restore", ["restore", "ua", "--case", "C1", "--to", s.dir + "/restored"], true),
            ("restore (two users)", ["restore", "ua", "uc", "--case", "C2", "--to", s.dir + "/restored2"], true),
            ("hold release", ["hold", "release", "ua", "--case", "C1"], true),
            ("delete --dry-run", ["delete", "ub", "--request-id", "R0", "--dry-run"], false),
            ("delete", ["delete", "ub", "--request-id", "R1"], false),
            ("receipt list", ["receipt", "list"], false),
            ("receipt show", ["receipt", "show", "R1"], false),
            ("receipt export", ["receipt", "export", "R1", "--out", s.dir + "/receipt.json"], false),
            ("sweep", ["sweep"], false),
            ("sweep --dry-run", ["sweep", "--dry-run"], false),
            ("backup", ["backup", "--to", s.dir + "/backup"], false),
            ("keystore backup", ["keystore", "backup", "--to", s.dir + "/ks.svks"], false),
            ("keystore restore", ["keystore", "restore", s.dir + "/ks.svks"], true),
            ("trust show", ["trust", "show"], false),
            ("trust rotate", ["trust", "rotate"], true),
            ("policy show", ["policy", "show"], false),
            ("policy set", ["policy", "set", "--add-holiday", "2026-12-25"], false),
            ("drill", ["drill", "--from", s.vault, "--to", s.dir + "/drill"], false),
        ]
        for (what, args, needsKey) in commands {
            assertStamped(try s.sv(args, day: 1, key: needsKey ? s.keyFile : nil), what)
        }

        let holds = try s.sv(["hold", "list"], day: 1).json?["holds"] as? [[String: Any]] ?? []
        XCTAssertEqual(holds.first { $0["caseId"] as? String == "C2" }?["reason"] as? String, trickyReason)

        // receipt verify needs no vault: a copy of the receipt and of the trust record.
        assertStamped(try runShredvault(["receipt", "verify", s.dir + "/receipt.json", "--trust", s.vault + "/trust", "--json"]), "receipt verify")

        // The bundle commands (no vault).
        let key = s.dir + "/data.key"
        XCTAssertEqual(try runShredvault(["bundle", "keygen", key]).status, 0)
        try FileManager.default.createDirectory(atPath: s.dir + "/loose", withIntermediateDirectories: false)
        try Data("x\n".utf8).write(to: URL(fileURLWithPath: s.dir + "/loose/a.txt"))
        let bundle = s.dir + "/loose.svb"
        assertStamped(try runShredvault(["bundle", "seal", "--from", s.dir + "/loose", "--user", "u1", "--expiry", "2027-01-01",
                                         "--key-file", key, "--out", bundle, "--json"]), "bundle seal")
        assertStamped(try runShredvault(["bundle", "inspect", bundle, "--json"]), "bundle inspect")
        assertStamped(try runShredvault(["bundle", "open", bundle, "--key-file", key, "--verify-only", "--json"]), "bundle open")
    }
}
