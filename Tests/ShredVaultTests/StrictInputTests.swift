import Foundation
import XCTest
import VaultCrypto
@testable import ShredVault
#if canImport(Glibc)
import Glibc
#endif

/// Inputs the vault reads besides bundles (issue #12 item 6): key texts, the config, the files it creates, and the
/// keystore rows and sealed keys it opens. Each refusal is a documented `VaultError`, never a crash or an internal
/// error; each test first shows the accepted form, so it fails if the reader refuses everything.
final class StrictInputTests: XCTestCase {
    private func keyFileError(_ contents: [UInt8], in dir: String, _ read: (String) throws -> Any) -> String? {
        let path = dir + "/key-\(UUID().uuidString)"
        FileManager.default.createFile(atPath: path, contents: Data(contents), attributes: [.posixPermissions: 0o600])
        do {
            _ = try read(path)
            return nil
        } catch VaultError.keyFile(let p, let reason) {
            XCTAssertEqual(p, path)
            return reason
        } catch {
            return "unexpected \(error)"
        }
    }

    /// vault-format.md §2.6, §3.2, §3.9: lower-case hex and at most one trailing "\n"; nothing else is a key file.
    func testKeyTextsAreCanonical() throws {
        let dir = try makeTemporaryDirectory(self)
        let scalar = try P256PrivateKey.generate()
        let hex = scalar.rawScalarHexForTests()
        let vaultId = String(repeating: "ab", count: 16), masterKeyId = String(repeating: "cd", count: 16)
        let readers: [(String, String, (String) throws -> Any)] = [
            ("data key", "", { try DataKeyFile.read($0) }),
            ("restore key", MasterKey.restorePrefix, { try MasterKey.readRestoreKey($0) }),
            ("job credential", JobCredential.prefix(vaultId: vaultId, masterKeyId: masterKeyId),
             { try JobCredential.read($0, vaultId: vaultId, masterKeyId: masterKeyId) }),
        ]
        let trailer = SecretKeyText.Problem.trailer.reason, upper = SecretKeyText.Problem.upperCase.reason
        for (what, prefix, read) in readers {
            let body = Array((prefix + hex).utf8)
            XCTAssertNil(keyFileError(body, in: dir, read), "\(what) without a newline")
            XCTAssertNil(keyFileError(body + [0x0a], in: dir, read), "\(what) with one newline")
            let cases: [([UInt8], String)] = [
                (body + [0x0d, 0x0a], trailer), (body + [0x0a, 0x0a], trailer), (body + [0x0d], trailer), (body + [0x20], trailer),
                (body + [0x0a, 0x20], trailer),
                (Array((prefix + hex.uppercased()).utf8) + [0x0a], upper),
                (Array((prefix + String(hex.dropLast()) + "G").utf8), SecretKeyText.Problem.notHex.reason),
            ]
            for (contents, reason) in cases {
                let got = keyFileError(contents, in: dir, read)
                XCTAssertEqual(got, reason, "\(what): \(Array(contents.suffix(3)))")
                XCTAssertFalse(got?.contains(String(hex.prefix(16))) ?? false, "\(what): the error shows no key material")
                XCTAssertFalse(got?.lowercased().contains(String(hex.prefix(16)).lowercased()) ?? false)
            }
            // Too short or too long is another shape (each reader names its expected form).
            for contents in [Array(body.dropLast()), body + Array("ab".utf8)] {
                XCTAssertNotNil(keyFileError(contents, in: dir, read), "\(what): \(contents.count) bytes")
            }
        }

        // master.pub: the same rule for the public archive key.
        let line = MasterKey.encodeArchiveKey(scalar.publicKey)
        XCTAssertTrue(line.hasSuffix("\n"))
        XCTAssertEqual(try MasterKey.decodeArchiveKey(line, path: "m"), scalar.publicKey)
        XCTAssertEqual(try MasterKey.decodeArchiveKey(String(line.dropLast()), path: "m"), scalar.publicKey)
        let bare = String(line.dropLast())
        for bad in [bare + "\r\n", bare + "\n\n", " " + line, bare + " \n", MasterKey.archivePrefix + bare.dropFirst(MasterKey.archivePrefix.count).uppercased() + "\n",
                    "\n" + line] {
            XCTAssertThrowsError(try MasterKey.decodeArchiveKey(bad, path: "m"), bad.debugDescription) { error in
                guard case VaultError.keyFile(path: "m", _) = error else { return XCTFail("\(error)") }
            }
        }
    }

    private func validConfig() throws -> [String: Any] {
        let config = VaultConfig(format: VaultConfig.formatName, vaultId: String(repeating: "0f", count: 16), createdAt: 1_795_910_400,
                                 keystorePath: "keys/keystore.db", keyringPath: "/secrets/keyring.db", policy: RetentionPolicy(),
                                 root: .file("/secrets/root"), jobKeyPath: "/secrets/job.key")
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: JSONEncoder().encode(config)) as? [String: Any])
    }

    private func parse(_ object: Any) throws -> VaultConfig {
        let text = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        return try VaultConfig.parse(text, path: "/v/config")
    }

    /// Every field of the config is checked on load, and a refusal names the file and the field.
    func testEveryConfigFieldIsValidated() throws {
        let good = try validConfig()
        XCTAssertEqual(try parse(good).vaultIdBytes, [UInt8](repeating: 0x0f, count: 16))
        var relativeKeystore = good
        relativeKeystore["keystorePath"] = "./keys/ks.db"
        XCTAssertNoThrow(try parse(relativeKeystore), "a keystore inside the vault may be relative")
        var pkcs11 = good
        pkcs11["root"] = ["kind": "pkcs11", "module": "/usr/lib/softhsm/libsofthsm2.so", "token": "ShredVault"]
        XCTAssertNoThrow(try parse(pkcs11))

        func set(_ key: String, _ value: Any?) -> [String: Any] { var c = good; c[key] = value; return c }
        func setPolicy(_ key: String, _ value: Any) -> [String: Any] {
            var c = good
            var p = c["policy"] as! [String: Any]
            p[key] = value
            c["policy"] = p
            return c
        }
        let cases: [([String: Any], String)] = [
            (set("format", "shredvault-vault/v2"), "format"),
            (set("vaultId", "ab"), "vaultId"),
            (set("vaultId", String(repeating: "zz", count: 16)), "vaultId"),
            (set("vaultId", String(repeating: "AB", count: 16)), "vaultId"),
            (set("vaultId", String(repeating: "ab", count: 17)), "vaultId"),
            (set("vaultId", nil), "vaultId"),
            (set("vaultId", 12), "vaultId"),
            (set("createdAt", -1), "createdAt"),
            (set("createdAt", 253_402_300_800), "createdAt"),
            (set("createdAt", "2026-11-29"), "createdAt"),
            (set("keystorePath", ""), "keystorePath"),
            (set("keystorePath", "../elsewhere/ks.db"), "keystorePath"),
            (set("keystorePath", "keys/\u{0}x"), "keystorePath"),
            (set("keyringPath", "secrets/keyring.db"), "keyringPath"),
            (set("jobKeyPath", "job.key"), "jobKeyPath"),
            (set("root", ["kind": "tpm"]), "root.kind"),
            (set("root", ["kind": "file"]), "root.path"),
            (set("root", ["kind": "file", "path": "root"]), "root.path"),
            (set("root", ["kind": "pkcs11", "token": "t"]), "root.module"),
            (set("root", ["kind": "pkcs11", "module": "/m.so", "token": ""]), "root.token"),
            (set("root", ["kind": "pkcs11", "module": "/m.so", "token": String(repeating: "t", count: 33)]), "root.token"),
            (set("root", ["kind": "pkcs11", "module": "/m.so", "token": "t", "pinFile": "pin"]), "root.pinFile"),
            (setPolicy("archiveDays", 91), "policy.archiveDays"),
            (setPolicy("inactiveDays", 0), "policy.inactiveDays"),
            (setPolicy("backupDays", 0), "policy.backupDays"),
            (setPolicy("holidays", ["2026-12-25", "25/12/2026"]), "policy.holidays[1]"),
            (setPolicy("holidays", ["2026-12-25", 7]), "policy.holidays[1]"),
            (setPolicy("archiveDays", "ninety"), "policy.archiveDays"),
        ]
        for (config, field) in cases {
            XCTAssertThrowsError(try parse(config), field) { error in
                guard case VaultError.invalidConfig(path: "/v/config", field: let got, let reason) = error else { return XCTFail("\(field): \(error)") }
                XCTAssertEqual(got, field, reason)
                XCTAssertFalse((error as! VaultError).description.contains("\n"), "one line: \(error)")
            }
        }
        XCTAssertThrowsError(try VaultConfig.parse("not json", path: "/v/config")) { error in
            XCTAssertEqual(error as? VaultError, .invalidConfig(path: "/v/config", field: "", reason: "is not a JSON object of a ShredVault config"))
        }
    }

    /// The temporary file of an atomic write is created with O_EXCL|O_NOFOLLOW: a symbolic link planted at its name is
    /// removed, never written through; the lock file is never opened through a link either.
    func testTemporaryFilesAndTheLockNeverFollowALink() throws {
        let dir = try makeTemporaryDirectory(self)
        let victim = dir + "/victim"
        try Data("keep\n".utf8).write(to: URL(fileURLWithPath: victim))
        let path = dir + "/config"
        // This thread's temporary name (`NAME.tmp-<pid>-<tid>`, vault-format.md §6.1).
        let temporary = path + ".tmp-" + String(getpid()) + "-" + String(UInt64(pthread_self()) & 0xffff_ffff)
        XCTAssertEqual(symlink(victim, temporary), 0)
        try Posix.writeFileAtomically(path, Array("new\n".utf8), mode: 0o644)
        XCTAssertEqual(try readBytes(victim), Array("keep\n".utf8), "the link's target is untouched")
        XCTAssertEqual(try readBytes(path), Array("new\n".utf8))
        XCTAssertEqual(try Posix.status(path)?.kind, .regular)
        XCTAssertEqual(try Posix.status(path)?.mode, 0o644)
        XCTAssertFalse(Posix.exists(temporary), "no temporary left")
        // A stale regular file at the name (a dead process with this pid and thread id) is replaced too.
        try Data("stale".utf8).write(to: URL(fileURLWithPath: temporary))
        try Posix.writeFileAtomically(path, Array("newer\n".utf8))
        XCTAssertEqual(try readBytes(path), Array("newer\n".utf8))

        let lockTarget = dir + "/elsewhere-lock"
        XCTAssertEqual(symlink(lockTarget, dir + "/lock"), 0)
        XCTAssertThrowsError(try FileLock(path: dir + "/lock", wait: 0)) { error in
            XCTAssertEqual(error as? VaultError, .io(operation: "open", path: dir + "/lock", errno: ELOOP))
        }
        XCTAssertFalse(Posix.exists(lockTarget), "nothing created through the link")
        XCTAssertNoThrow(try FileLock(path: dir + "/real-lock", wait: 0))
    }

    /// Keystore rows and sealed data keys that do not open with the right keys are forged or corrupt (exit 65), not a
    /// wrong restore key (77) or an internal error (1).
    func testForgedKeystoreRowsAndSealedKeysAreNotGenuine() throws {
        let dir = try makeTemporaryDirectory(self)
        let ks = try Keystore(path: dir + "/keystore.db")
        let master = try P256PrivateKey.generate()
        let vaultId = [UInt8](repeating: 5, count: 16)
        let keys = try ks.keysCreatingIfNeeded(role: .user, subjects: ["ua", "ub"], master: master.publicKey, vaultId: vaultId, now: 0)
        let a = try XCTUnwrap(try ks.key(id: keys["ua"]!.keyId)), b = try XCTUnwrap(try ks.key(id: keys["ub"]!.keyId))
        XCTAssertEqual(try ks.privateKey(a, restoreKey: master, vaultId: vaultId).publicKey, a.publicKey)

        func assertNotGenuine(_ row: StoredKey, _ reason: String, line: UInt = #line) {
            XCTAssertThrowsError(try ks.privateKey(row, restoreKey: master, vaultId: vaultId), line: line) { error in
                guard case VaultError.notGenuine(let subject, let got) = error else { return XCTFail("\(error)", line: line) }
                XCTAssertTrue(subject.contains(Hex.encode(row.keyId)), subject, line: line)
                XCTAssertTrue(got.contains(reason), got, line: line)
            }
        }
        var flipped = a
        flipped.sealedPrivate[flipped.sealedPrivate.count - 1] ^= 1
        assertNotGenuine(flipped, "does not open")
        var moved = a
        moved.sealedPrivate = b.sealedPrivate  // ub's seal in ua's row: bound to another subject and key id
        assertNotGenuine(moved, "does not open")
        // A seal anyone can make with master.pub, for the row's own role, subject and id, of another private key.
        var swapped = a
        swapped.sealedPrivate = try KeyHierarchy.sealPrivateKey(try P256PrivateKey.generate(), master: master.publicKey, vaultId: vaultId,
                                                                role: .user, subject: "ua", keyId: a.keyId)
        assertNotGenuine(swapped, "not the private half")

        // A sealed DEK of one bundle does not open as another's.
        let userKey = try P256PrivateKey.generate(), dayKey = try P256PrivateKey.generate()
        let one = KeyHierarchy.Binding(header: testHeader(bundleId: [UInt8](repeating: 1, count: 16)))
        let two = KeyHierarchy.Binding(header: testHeader(bundleId: [UInt8](repeating: 2, count: 16)))
        let sealed = try KeyHierarchy.sealDataKey(testKey, binding: one, userKey: userKey.publicKey, outerRole: .day, outerKey: dayKey.publicKey)
        XCTAssertNoThrow(try KeyHierarchy.openDataKey(sealed, binding: one, outerRole: .day, outerKey: dayKey, userKey: userKey))
        XCTAssertThrowsError(try KeyHierarchy.openDataKey(sealed, binding: two, outerRole: .day, outerKey: dayKey, userKey: userKey)) { error in
            guard case VaultError.notGenuine(let subject, _) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(subject.contains(Hex.encode([UInt8](repeating: 2, count: 16))), subject)
        }
        XCTAssertThrowsError(try KeyHierarchy.openDataKey(sealed, binding: one, outerRole: .day, outerKey: dayKey,
                                                          userKey: try P256PrivateKey.generate())) { error in
            guard case VaultError.notGenuine(_, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("inner layer"), reason)
        }
    }
}

extension P256PrivateKey {
    /// The scalar as lower-case hex (tests only).
    func rawScalarHexForTests() -> String {
        (try? rawScalar().withUnsafeBytes { Hex.encode(Array($0)) }) ?? ""
    }
}
