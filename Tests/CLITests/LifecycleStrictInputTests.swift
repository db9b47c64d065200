import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Strict inputs through the CLI (issue #12 items 5-7): names restored byte for byte, every config field and key text
/// validated with one line naming the file and field, private files from `init`, no link followed, business days over
/// many holidays, and bad data that used to be an "unexpected error" (exit 1) mapped to its documented code. Each
/// refusal changes nothing.
final class LifecycleStrictInputTests: XCTestCase {
    var s: Scenario!

    /// A vault on day 0 with ua archived and under hold C1, and ub archived.
    override func setUpWithError() throws {
        s = try Scenario(self)
        try s.writeSource([
            SourceUser(id: "ua", lastActive: inactiveDate, files: ["profile.json": Data("{}\n".utf8)]),
            SourceUser(id: "ub", lastActive: inactiveDate, files: sampleFiles(seed: 91)),
        ])
        // Canonically equivalent spellings are different files; a name may start with a combining mark.
        for (i, name) in Self.names.enumerated() {
            for root in [s.source, s.pristine] {
                try writeNewFile(root + "/users/ua/" + name, Array("file \(i)\n".utf8))
            }
        }
        try s.initVault()
        assertSuccess(try s.sv(["archive", "--source", s.source], day: 0), "archive")
        assertSuccess(try s.svk(["hold", "place", "ua", "--case", "C1", "--reason", "case"], day: 0), "hold place")
    }

    static let names = ["\u{e9}.txt", "e\u{301}.txt", "\u{301}starts-with-a-combining-mark.txt", "K.txt", "\u{212A}.txt"]

    var configPath: String { s.vault + "/config" }

    func testNamesAreArchivedAndRestoredByteForByte() throws {
        let source = try Tree(s.pristine + "/users/ua")
        XCTAssertEqual(source.names.count, Self.names.count + 1, "the file system keeps every spelling apart: \(source.names)")
        assertSuccess(try s.svk(["restore", "ua", "--case", "C1", "--to", s.dir + "/out"], day: 1), "restore")
        let restored = try Tree(s.dir + "/out")
        XCTAssertEqual(restored.names, source.names, "restored names are the archived bytes")
        XCTAssertEqual(restored, source)
        for (i, name) in Self.names.enumerated() {
            XCTAssertEqual(try readWholeFile(s.dir + "/out/" + name), Data("file \(i)\n".utf8),
                           "\(name.unicodeScalars.map { String($0.value, radix: 16) })")
        }
        assertSuccess(try s.svk(["check", "--read-data"], day: 1), "check --read-data")
    }

    /// Rewrites the config's JSON with `change`, runs `body`, and puts the exact original bytes back.
    func withConfig(_ change: (inout [String: Any]) -> Void, _ body: () throws -> Void) throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: configPath))
        var object = try XCTUnwrap(try JSONSerialization.jsonObject(with: original) as? [String: Any])
        change(&object)
        try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]).write(to: URL(fileURLWithPath: configPath))
        defer { try? original.write(to: URL(fileURLWithPath: configPath)) }
        try body()
    }

    /// Each invalid field stops every job before it changes anything, with one line naming the config and the field:
    /// a 2-digit vaultId used to crash `archive` (exit 132), a non-hex one to archive bundles with an all-zero vault id.
    func testInvalidConfigFieldsAreNamedAndChangeNothing() throws {
        try makeSource(at: s.dir + "/src2", users: [SourceUser(id: "uz", lastActive: inactiveDate, files: sampleFiles(seed: 92))])
        let vaultId = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as? [String: Any])["vaultId"] as? String
        func nested(_ key: String, _ field: String, _ value: Any) -> (inout [String: Any]) -> Void {
            { c in var n = c[key] as! [String: Any]; n[field] = value; c[key] = n }
        }
        let cases: [(String, (inout [String: Any]) -> Void)] = [
            ("vaultId", { $0["vaultId"] = "ab" }),
            ("vaultId", { $0["vaultId"] = String(repeating: "zz", count: 16) }),
            ("vaultId", { $0["vaultId"] = vaultId?.uppercased() }),
            ("vaultId", { $0["vaultId"] = nil }),
            ("createdAt", { $0["createdAt"] = -5 }),
            ("keystorePath", { $0["keystorePath"] = "../keys/keystore.db" }),
            ("keyringPath", { $0["keyringPath"] = "secrets/keyring.db" }),
            ("jobKeyPath", { $0["jobKeyPath"] = "job.key" }),
            ("root.path", nested("root", "path", "root-file")),
            ("root.kind", nested("root", "kind", "tpm")),
            ("policy.archiveDays", nested("policy", "archiveDays", 91)),
            ("policy.holidays[1]", nested("policy", "holidays", ["2026-12-25", "2026-13-01"])),
        ]
        for (field, change) in cases {
            try assertChangesNothing(s, source: s.dir + "/src2", field) {
                try withConfig(change) {
                    for job in [["archive", "--source", s.dir + "/src2"], ["status"], ["sweep"]] {
                        let r = try s.sv(job, day: 1)
                        assertOneLineError(r, exit: 65, [configPath, "field " + field], "\(job[0]) with an invalid \(field)")
                    }
                }
            }
        }
        try assertChangesNothing(s, source: s.dir + "/src2", "config that is not JSON") {
            let original = try Data(contentsOf: URL(fileURLWithPath: configPath))
            try Data("{\"format\": \"shredvault-vault/v1\",".utf8).write(to: URL(fileURLWithPath: configPath))
            assertOneLineError(try s.sv(["archive", "--source", s.dir + "/src2"], day: 1), exit: 65, [configPath, "JSON"], "truncated config")
            try original.write(to: URL(fileURLWithPath: configPath))
        }
        // The config itself was fine all along: the same job now works.
        assertSuccess(try s.sv(["archive", "--source", s.dir + "/src2"], day: 1), "archive with the original config")
    }

    /// Key files hold lower-case hex and at most one trailing "\n" (vault-format.md §2.6, §3.2, §3.9); any other
    /// form is a key problem (exit 77) naming the file, never a credential "for another vault" (65).
    func testKeyTextsMustBeCanonical() throws {
        let key = try String(contentsOfFile: s.keyFile, encoding: .utf8)
        XCTAssertTrue(key.hasSuffix("\n"))
        let bare = String(key.dropLast())
        let config = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: configPath))) as? [String: Any])
        let jobKeyPath = try XCTUnwrap(config["jobKeyPath"] as? String)
        let jobKey = String(try String(contentsOfFile: jobKeyPath, encoding: .utf8).dropLast())
        let upper = { (text: String) -> String in
            let colon = text.lastIndex(of: ":")!
            return String(text[...colon]) + text[text.index(after: colon)...].uppercased()
        }
        let variants = [("crlf", "\r\n", "only one trailing newline"), ("two-newlines", "\n\n", "only one trailing newline"),
                        ("space", " \n", "only one trailing newline"), ("upper", "\n", "upper-case")]
        for (name, ending, needle) in variants {
            let restoreKey = s.dir + "/secrets/restore-\(name).key"
            try write((name == "upper" ? upper(bare) : bare) + ending, to: restoreKey)
            let credential = s.dir + "/secrets/job-\(name).key"
            try write((name == "upper" ? upper(jobKey) : jobKey) + ending, to: credential)
            try assertChangesNothing(s, "key texts: \(name)") {
                let restore = try s.sv(["restore", "ua", "--case", "C1", "--to", s.dir + "/out"], day: 1, key: restoreKey)
                assertOneLineError(restore, exit: 77, [restoreKey, needle], "restore key, \(name)")
                let archive = try s.sv(["archive", "--source", s.source], day: 1, environment: ["SHREDVAULT_JOB_KEY": credential])
                assertOneLineError(archive, exit: 77, [credential, needle], "job credential, \(name)")
            }
        }
        // master.pub: the public archive key follows the same rule.
        let masterPub = s.vault + "/master.pub"
        let original = try Data(contentsOf: URL(fileURLWithPath: masterPub))
        let line = String(decoding: original, as: UTF8.self)
        for (name, text) in [("crlf", String(line.dropLast()) + "\r\n"), ("upper", upper(String(line.dropLast())) + "\n"),
                             ("leading space", " " + line)] {
            try assertChangesNothing(s, "master.pub, \(name)") {
                try Data(text.utf8).write(to: URL(fileURLWithPath: masterPub))
                assertOneLineError(try s.sv(["status"], day: 1), exit: 77, [masterPub], "master.pub, \(name)")
                try original.write(to: URL(fileURLWithPath: masterPub))
            }
        }
        // A data key for `shredvault bundle open`.
        let kat = CLI.packageRoot + "/samples/vectors/known-answer"
        let dataKey = String(try String(contentsOfFile: kat + "/tiny.key", encoding: .utf8).prefix(64))
        for (name, text, needle) in [("crlf", dataKey + "\r\n", "only one trailing newline"), ("upper", dataKey.uppercased() + "\n", "upper-case")] {
            let file = s.dir + "/data-\(name).key"
            try write(text, to: file)
            let r = try runShredvault(["bundle", "open", kat + "/tiny.svb", "--key-file", file, "--to", s.dir + "/tiny-\(name)"])
            assertOneLineError(r, exit: 77, [file, needle], "data key, \(name)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: s.dir + "/tiny-\(name)"))
        }
        let canonical = s.dir + "/data.key"
        try write(dataKey + "\n", to: canonical)
        assertSuccess(try runShredvault(["bundle", "open", kat + "/tiny.svb", "--key-file", canonical, "--to", s.dir + "/tiny"]), "canonical data key")
        assertSuccess(try s.svk(["restore", "ua", "--case", "C1", "--to", s.dir + "/out"], day: 1), "the canonical restore key")
    }

    func testInitMakesPrivateFilesAndRefusesAnUnsafeDirectory() throws {
        // The vault of setUp, after init, archive and a hold.
        var modes: [String: Int] = [:]
        let fm = FileManager.default
        for rel in try XCTUnwrap(fm.subpathsOfDirectory(atPath: s.vault)) {
            modes[rel] = fileMode(s.vault + "/" + rel)
        }
        XCTAssertEqual(fileMode(s.vault), 0o700)
        for (rel, mode) in modes {
            var isDirectory: ObjCBool = false
            _ = fm.fileExists(atPath: s.vault + "/" + rel, isDirectory: &isDirectory)
            // Public by design (vault-format.md §6): the archive key, the config and the signed trust record.
            let expected = isDirectory.boolValue ? 0o700 : ["config", "master.pub", "trust"].contains(rel) ? 0o644 : 0o600
            XCTAssertEqual(mode, expected, "\(rel): mode \(String(mode, radix: 8))")
        }
        XCTAssertTrue(modes.keys.contains("catalog.db") && modes.keys.contains { $0.hasSuffix(".svb") } && modes.keys.contains { $0.hasSuffix(".dek") },
                      "\(modes.keys.sorted())")
        for file in listing(s.dir + "/secrets") { XCTAssertEqual(fileMode(s.dir + "/secrets/" + file), 0o600, file) }

        // An existing empty directory writable by group or others is refused; nothing is created anywhere.
        let secretsBefore = listing(s.dir + "/secrets")
        for mode in [0o777, 0o770, 0o702] {
            let dir = s.dir + "/open-\(String(mode, radix: 8))"
            try fm.createDirectory(atPath: dir, withIntermediateDirectories: false)
            XCTAssertEqual(chmod(dir, mode_t(mode)), 0)
            let r = try runShredvault(["init", "--vault", dir, "--master-key-file", s.dir + "/secrets/k2", "--drill", "--now", SimDay.now(0)])
            assertOneLineError(r, exit: 64, [dir, "writable by group or others"], "init in a \(String(mode, radix: 8)) directory")
            XCTAssertEqual(listing(dir), [])
            XCTAssertEqual(fileMode(dir), mode)
            XCTAssertEqual(listing(s.dir + "/secrets"), secretsBefore, "no restore key, keyring, root or credential made")
        }
        // One that others may only read becomes private.
        let readable = s.dir + "/readable"
        try fm.createDirectory(atPath: readable, withIntermediateDirectories: false)
        XCTAssertEqual(chmod(readable, 0o755), 0)
        assertSuccess(try runShredvault(["init", "--vault", readable, "--master-key-file", s.dir + "/secrets/k3", "--drill", "--now", SimDay.now(0)]),
                      "init in a 0755 directory")
        XCTAssertEqual(fileMode(readable), 0o700)
        XCTAssertEqual(fileMode(readable + "/catalog.db"), 0o600)
    }

    /// `bundle seal --vault-id` takes 32 lower-case hex digits: fullwidth digits passed a Character check and sealed
    /// an all-zero vault id.
    func testBundleSealVaultIdIsLowerCaseHex() throws {
        let key = s.dir + "/dek.hex"
        assertSuccess(try runShredvault(["bundle", "keygen", key]), "keygen")
        let id = "00112233445566778899aabbccddeeff"
        let fullwidth = String(id.unicodeScalars.map { Character(UnicodeScalar($0.value < 0x3a ? $0.value + 0xFEE0 : $0.value)!) })
        for bad in [fullwidth, id.uppercased(), String(id.dropLast()), id + "0"] {
            let out = s.dir + "/bad.svb"
            let r = try runShredvault(["bundle", "seal", "--from", s.pristine + "/users/ub", "--user", "ub", "--expiry", "2027-02-26",
                                       "--key-file", key, "--out", out, "--vault-id", bad])
            XCTAssertEqual(r.status, 64, "--vault-id \(bad): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("--vault-id"), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
        let out = s.dir + "/good.svb"
        assertSuccess(try runShredvault(["bundle", "seal", "--from", s.pristine + "/users/ub", "--user", "ub", "--expiry", "2027-02-26",
                                         "--key-file", key, "--out", out, "--vault-id", id]), "seal with a vault id")
        let inspect = try runShredvault(["bundle", "inspect", out, "--json"])
        XCTAssertEqual(inspect.json?["vaultId"] as? String, id, inspect.stdout)
    }

    func testTheLockIsNeverOpenedThroughALink() throws {
        let lock = s.vault + "/lock"
        let target = s.dir + "/elsewhere"
        try FileManager.default.removeItem(atPath: lock)
        XCTAssertEqual(symlink(target, lock), 0)
        for job in [["status"], ["sweep"], ["archive", "--source", s.source]] {
            let r = try s.sv(job, day: 1)
            assertOneLineError(r, exit: 74, [lock], "\(job[0]) with a link at the lock's name")
            XCTAssertFalse(FileManager.default.fileExists(atPath: target), "\(job[0]) created the link's target")
        }
        try FileManager.default.removeItem(atPath: lock)
        assertSuccess(try s.sv(["status"], day: 1), "status with the lock file back")
    }

    /// 30 000 holidays in a row: `delete` records the right deadline at once (scanning every holiday for every day
    /// took 37 s with 20 000).
    func testDeletionDeadlineOverManyHolidays() throws {
        let day1 = SimDay.day0 + 1
        try withConfig({ c in
            var policy = c["policy"] as! [String: Any]
            policy["holidays"] = (1...30_000).map { SimDay.iso($0) }
            c["policy"] = policy
        }) {
            let start = Date()
            let r = try s.sv(["delete", "ub", "--request-id", "R1", "--received", SimDay.now(0)], day: 0)
            let elapsed = Date().timeIntervalSince(start)
            assertSuccess(r, "delete with 30 000 holidays")
            XCTAssertLessThan(elapsed, 20, "delete took \(elapsed) s")
            // Day 30 000 after day 0, then five weekdays.
            var expected = day1 + 29_999
            var remaining = 5
            while remaining > 0 {
                expected += 1
                if ((expected % 7) + 7 + 3) % 7 < 5 { remaining -= 1 }
            }
            let (y, m, d) = SimDay.civil(expected)
            XCTAssertEqual(r.json?["deadline"] as? String, String(format: "%04d-%02d-%02d", y, m, d), r.stdout)
        }
    }

    /// Bad data that used to end in "unexpected error" (exit 1) or a misleading "wrong restore key" (77): exit 65.
    func testCorruptVaultDataIsBadDataNotAnInternalError() throws {
        // An unfinished-job record that is not JSON: every mutating job stops before changing anything.
        try sqliteExecute(s.catalog, "INSERT INTO intents (kind, created_at, payload) VALUES ('reseal', 1, 'garbage')")
        try assertChangesNothing(s, "a malformed intent record") {
            assertOneLineError(try s.sv(["sweep"], day: 1), exit: 65, [s.catalog, "unfinished job"], "sweep with a malformed intent")
            assertOneLineError(try s.sv(["delete", "ub", "--request-id", "R1"], day: 1), exit: 65, [s.catalog], "delete with a malformed intent")
        }
        try sqliteExecute(s.catalog, "DELETE FROM intents")
        // The day-1 sweep (every mutating job runs it first and records it), so the refusals below have nothing to do.
        assertSuccess(try s.sv(["sweep"], day: 1), "the day-1 sweep")

        /// One column of one keystore row, as hex.
        func keystoreBlob(_ column: String, _ condition: String) throws -> (keyId: String, value: String) {
            let row = try XCTUnwrap(try sqliteRows(s.keystore, "SELECT key_id, \(column) FROM keys WHERE \(condition)").first)
            let fields = row.split(separator: "\t").map(String.init)
            return (fields[0], fields[1])
        }
        func setKeystoreBlob(_ column: String, _ keyId: String, _ hex: String) throws {
            try sqliteExecute(s.keystore, "UPDATE keys SET \(column) = x'\(hex)' WHERE key_id = x'\(keyId)'")
        }
        func flipped(_ hex: String, at index: Int) -> String {
            var chars = Array(hex)
            chars[index] = chars[index] == "0" ? "1" : "0"
            return String(chars)
        }

        // A sealed private key whose (ratchet) wrap was modified: bad data, not a wrong restore key (77).
        let user = try keystoreBlob("sealed_private", "role = 'user' AND subject = 'ua'")
        try setKeystoreBlob("sealed_private", user.keyId, flipped(user.value, at: 60))
        try assertChangesNothing(s, "a modified sealed private key") {
            let r = try s.svk(["restore", "ua", "--case", "C1", "--to", s.dir + "/out"], day: 1)
            assertOneLineError(r, exit: 65, [s.keystore], "restore with a modified sealed private key")
        }
        try setKeystoreBlob("sealed_private", user.keyId, user.value)
        assertSuccess(try s.svk(["restore", "ua", "--case", "C1", "--to", s.dir + "/out"], day: 1), "restore after repair")

        // A keystore row whose public key is not a P-256 point: bad data, not an internal error (1).
        let day = try keystoreBlob("public_key", "role = 'day'")
        try setKeystoreBlob("public_key", day.keyId, flipped(day.value, at: 20))
        let hold = try s.svk(["hold", "place", "ub", "--case", "C2", "--reason", "r"], day: 1)
        assertOneLineError(hold, exit: 65, [s.keystore, "P-256"], "hold place with a forged keystore row")
        try setKeystoreBlob("public_key", day.keyId, day.value)

        // backup.json and a backup's config are read like the vault's own files.
        let backup = s.dir + "/backup"
        assertSuccess(try s.sv(["backup", "--to", backup], day: 1), "backup")
        let manifest = try Data(contentsOf: URL(fileURLWithPath: backup + "/backup.json"))
        try Data("{\"format\": 1}".utf8).write(to: URL(fileURLWithPath: backup + "/backup.json"))
        try assertChangesNothing(s, "a malformed backup.json") {
            assertOneLineError(try s.sv(["backup", "--to", backup], day: 1), exit: 65, [backup + "/backup.json", "format"], "backup over a malformed backup.json")
        }
        try manifest.write(to: URL(fileURLWithPath: backup + "/backup.json"))
        var copy = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: backup + "/config"))) as? [String: Any])
        copy["vaultId"] = "00"
        try JSONSerialization.data(withJSONObject: copy).write(to: URL(fileURLWithPath: backup + "/config"))
        let recovered = s.dir + "/recovered"
        let r = try runShredvault(["recover", "--from", backup, "--vault", recovered, "--master-key-file", s.keyFile, "--now", SimDay.now(1)])
        assertOneLineError(r, exit: 65, [backup + "/config", "field vaultId"], "recover from a backup whose config is invalid")
        XCTAssertFalse(FileManager.default.fileExists(atPath: recovered), "nothing recovered")
    }
}

/// Runs one SQL statement on the database at `path` and commits it (Debian's python3, as `sqliteRows` does).
private func sqliteExecute(_ path: String, _ sql: String) throws {
    let script = "import sqlite3, sys\ncon = sqlite3.connect(sys.argv[1])\ncon.execute(sys.argv[2])\ncon.commit()\ncon.close()\n"
    let r = try CLI.execute("/usr/bin/env", ["python3", "-c", script, path, sql])
    guard r.status == 0 else { throw NSError(domain: "sqlite", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: r.stderr]) }
}

/// Creates a file with open(2)/write(2): Foundation's atomic writes derive a temporary path with NSString path
/// functions, which misplace a name that starts with a combining mark.
private func writeNewFile(_ path: String, _ bytes: [UInt8]) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw NSError(domain: NSPOSIXErrorDomain, code: Int(errno), userInfo: [NSFilePathErrorKey: path]) }
    defer { close(fd) }
    guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
        throw NSError(domain: NSPOSIXErrorDomain, code: Int(errno), userInfo: [NSFilePathErrorKey: path])
    }
}
