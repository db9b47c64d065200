import Foundation
import XCTest
import VaultArchive
import VaultCrypto
@testable import ShredVault

/// Replays the committed fuzz seed corpus (`Tests/FuzzCorpus/<target>/`) through every harness of `FuzzTargets`
/// in the normal build, so CI runs every seed (and every crash regression seed) on each change. `tools/fuzz` runs
/// the same harnesses under libFuzzer.
///
/// `SHREDVAULT_WRITE_FUZZ_SEEDS=1 swift test --filter FuzzCorpusTests/testWriteSeeds` regenerates the seeds made by
/// the real code (sealed keys, sidecars, snapshots, payloads, configs); regression seeds (`crash-*`) and hand-written
/// seeds are kept.
final class FuzzCorpusTests: XCTestCase {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FuzzCorpus").path
    static let samples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("samples").path

    override class func tearDown() {
        FuzzTargets.cleanUp()
        super.tearDown()
    }

    static func seedFiles(_ target: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: corpus + "/" + target).filter { !$0.hasPrefix(".") }.sorted()
    }

    /// Every target has seeds; every seed runs; each target's corpus holds inputs the code accepts and inputs it
    /// refuses (so a harness whose fixture broke, refusing everything, fails here).
    func testEverySeedReplays() throws {
        let directories = try FileManager.default.contentsOfDirectory(atPath: Self.corpus).filter { !$0.hasPrefix(".") && $0 != "README.md" }
        XCTAssertEqual(Set(directories), Set(FuzzTargets.all.map(\.name)), "one corpus directory per fuzz target, no other")
        var lines: [String] = []
        var total = 0
        for target in FuzzTargets.all {
            let files = try Self.seedFiles(target.name)
            XCTAssertFalse(files.isEmpty, "\(target.name): no seeds")
            var replayed = 0, accepted = 0
            for file in files {
                let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: Self.corpus + "/" + target.name + "/" + file)))
                XCTAssertLessThanOrEqual(bytes.count, target.maxLength, "\(target.name)/\(file) is longer than the target's max length")
                if target.run(bytes) { accepted += 1 }
                replayed += 1
            }
            XCTAssertEqual(replayed, files.count, target.name)
            XCTAssertGreaterThan(accepted, 0, "\(target.name): no seed is accepted by the code under test")
            XCTAssertLessThan(accepted, replayed, "\(target.name): no seed is refused by the code under test")
            lines.append("\(target.name): \(replayed) seeds replayed (\(accepted) accepted, \(replayed - accepted) refused)")
            total += replayed
        }
        print("fuzz corpus replay: \(total) seeds over \(FuzzTargets.all.count) targets\n  " + lines.joined(separator: "\n  "))
    }

    // MARK: - Seed generation

    /// Makes the seeds the code generates and runs each through its harness; with SHREDVAULT_WRITE_FUZZ_SEEDS=1 it
    /// also writes them into Tests/FuzzCorpus (regeneration). Never skipped: in the normal suite it checks that every
    /// generated seed is within its target's length and that each target gets both accepted and refused seeds.
    func testGeneratedSeeds() throws {
        let writing = ProcessInfo.processInfo.environment["SHREDVAULT_WRITE_FUZZ_SEEDS"] == "1"
        let tmp = NSTemporaryDirectory() + "shredvault-seeds-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: false)
        defer { try? Posix.removeTree(tmp) }
        var seeds: [String: [String: [UInt8]]] = [:]
        func add(_ target: String, _ name: String, _ bytes: [UInt8]) {
            guard bytes.count <= FuzzTargets.named(target)!.maxLength else { return }
            if seeds[target]?.values.contains(bytes) == true { return }
            seeds[target, default: [:]][name] = bytes
        }

        // Bundles: the known-answer bundles and every bad-input vector (vault-format.md §7).
        var bundles: [(String, [UInt8], Bool)] = []
        let kat = Self.samples + "/vectors/known-answer"
        for name in ["tiny", "edge-cases", "empty"] {
            bundles.append((name, Array(try Data(contentsOf: URL(fileURLWithPath: kat + "/" + name + ".svb"))), true))
        }
        let bad = Self.samples + "/vectors/bad"
        let keyHex = Hex.encode((0..<32).map { UInt8($0) })
        for file in try FileManager.default.contentsOfDirectory(atPath: bad).sorted() where file.hasSuffix(".vector") {
            let data = Array(try Data(contentsOf: URL(fileURLWithPath: bad + "/" + file)))
            guard let split = data.firstRange(of: [0x0a, 0x0a]) else { continue }
            let text = String(decoding: data[..<split.lowerBound], as: UTF8.self)
            bundles.append((String(file.dropLast(7)), Array(data[split.upperBound...]), text.contains("key: " + keyHex)))
        }
        for (name, bytes, fixtureKey) in bundles {
            add("bundle-file", name, bytes)
            add("bundle-header", name, Array(bytes.prefix(BundleHeader.maxLength)))
            if bytes.count >= 100 { add("bundle-header", name + "-exact", Array(bytes.prefix(Int(bytes[14]) + 92))) }
            guard fixtureKey, let frame = try? decrypt(bytes) else { continue }
            add("payload", "zstd-" + name, [1] + frame)
            add("zstd", name, frame)
            guard let tar = try? decompress(frame) else { continue }
            add("payload", "tar-" + name, [0] + tar)
            add("tar", name, tar)
            if name == "tiny" {
                add("zstd", "tiny-truncated", Array(frame.dropLast()))
                add("zstd", "tiny-trailing-byte", frame + [0])
                var checksum = frame; checksum[checksum.count - 1] ^= 1
                add("zstd", "tiny-checksum-flipped", checksum)
                add("tar", "tiny-no-end-marker", Array(tar.prefix(tar.count - 2048)))
                add("tar", "tiny-trailing-non-zero", tar + [1])
                var header = tar; header[148] ^= 1  // ustar header checksum of the first entry
                add("tar", "tiny-header-checksum-flipped", header)
                add("payload", "tar-tiny-trailing-non-zero", [0] + tar + [1])
            }
        }
        var long = FuzzTargets.payloadHeader
        long.userId = UserID(String(repeating: "a", count: 128))!
        long.createdAt = -1
        long.userKeyId = Array(repeating: 0x11, count: 16)
        long.dayKeyId = Array(repeating: 0x22, count: 16)
        add("bundle-header", "long-user-id-negative-time", long.encoded())

        // Sealed DEKs and sidecars under the fixture keys (both roles), as the vault makes them.
        let dek = try SecretBytes.random(count: 32)
        let binding = FuzzTargets.binding
        for (role, outer) in [(KeyRole.day, FuzzTargets.dayKey), (.hold, FuzzTargets.holdKey)] {
            let sealed = try KeyHierarchy.sealDataKey(dek, binding: binding, userKey: FuzzTargets.userKey.publicKey, outerRole: role,
                                                      outerKey: outer.publicKey)
            let sidecar = DEKSidecar(outerRole: role, outerKeyId: try KeyHierarchy.keyId(outer.publicKey), sealedDEK: sealed)
            add("sidecar", role.rawValue, sidecar.encoded())
            add("sealed-key", "dek-outer-" + role.rawValue, sealed)
        }
        let stranger = try P256PrivateKey.generate()
        let foreign = try KeyHierarchy.sealDataKey(dek, binding: binding, userKey: stranger.publicKey, outerRole: .day,
                                                   outerKey: stranger.publicKey)
        add("sidecar", "foreign-keys", DEKSidecar(outerRole: .day, outerKeyId: try KeyHierarchy.keyId(stranger.publicKey), sealedDEK: foreign).encoded())
        add("sealed-key", "dek-inner", try KeySeal.seal(dek, to: FuzzTargets.userKey.publicKey, info: Array("dek-inner".utf8), aad: binding.bytes))
        for role in [KeyRole.user, .day] {
            add("sealed-key", "private-key-" + role.rawValue, try KeyHierarchy.sealPrivateKey(
                FuzzTargets.userKey, master: FuzzTargets.masterKey.publicKey, vaultId: FuzzTargets.vaultId, role: role,
                subject: "u0000001", keyId: try KeyHierarchy.keyId(FuzzTargets.userKey.publicKey)))
        }
        add("sealed-key", "snapshot-key", try KeySeal.seal(try SecretBytes.random(count: 32), to: FuzzTargets.epochKey.publicKey,
                                                           info: KeystoreSnapshotHeader.sealInfo, aad: []))
        add("sealed-key", "not-on-curve", [4] + Array(repeating: 0x5a, count: 64) + Array(repeating: 0, count: 48))

        // A real vault: config, backup.json, keystore SQLite file and a real snapshot, key files.
        let keyPath = tmp + "/restore.key"
        _ = try Vault.create(root: tmp + "/vault", restoreKeyPath: keyPath, policy: RetentionPolicy(holidays: ["2026-12-25", "2027-01-01"]),
                             now: Fixture.now)
        let vault = try Vault(root: tmp + "/vault")
        let configText = Array(try Data(contentsOf: URL(fileURLWithPath: tmp + "/vault/config")))
        add("config", "config", configText)
        for user in ["u0000001", "u0000002"] {
            _ = try vault.keystore.keyCreatingIfNeeded(role: .user, subject: user, master: vault.archiveKey, vaultId: vault.vaultId, now: Fixture.now)
        }
        _ = try vault.keystore.keyCreatingIfNeeded(role: .day, subject: "2027-02-26", master: vault.archiveKey, vaultId: vault.vaultId, now: Fixture.now)
        _ = try vault.keystore.keyCreatingIfNeeded(role: .hold, subject: "HR-2026-14", master: vault.archiveKey, vaultId: vault.vaultId, now: Fixture.now)
        _ = try vault.keystore.keyCreatingIfNeeded(role: .day, subject: "2026-01-01", master: vault.archiveKey, vaultId: vault.vaultId, now: Fixture.now)
        let (image, _) = try vault.keystore.snapshotImage(vaultId: vault.vaultId)
        let imageSeed = [1] + image.withUnsafeBytes { Array($0) }
        add("keystore-snapshot", "sealed-keystore", imageSeed)
        add("keystore-snapshot", "sealed-not-sqlite", [1] + Array("not a database".utf8))
        _ = try vault.backup(to: tmp + "/backup", now: Fixture.now)
        add("config", "backup-json", Array(try Data(contentsOf: URL(fileURLWithPath: tmp + "/backup/backup.json"))))
        let snapshot = try FileManager.default.contentsOfDirectory(atPath: tmp + "/backup").first { $0.hasSuffix(".svks") }!
        let snapshotBytes = Array(try Data(contentsOf: URL(fileURLWithPath: tmp + "/backup/" + snapshot)))
        add("keystore-snapshot", "file-other-epoch", [0] + snapshotBytes)
        add("keystore-snapshot", "file-header-only", [0] + Array(snapshotBytes.prefix(KeystoreSnapshotHeader.length)))
        add("keystore-snapshot", "file-bad-magic", [0] + Array("SVKSNAQ\n".utf8) + Array(snapshotBytes.dropFirst(8).prefix(200)))
        add("key-file", "restore-key", Array(try Data(contentsOf: URL(fileURLWithPath: keyPath))))
        add("key-file", "master-pub", Array(try Data(contentsOf: URL(fileURLWithPath: tmp + "/vault/master.pub"))))
        add("key-file", "dek", Array(try Data(contentsOf: URL(fileURLWithPath: kat + "/tiny.key"))))

        // The policy object as the config stores it, and the manifests of the known-answer bundles.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        add("policy", "default", Array(try encoder.encode(RetentionPolicy())))
        add("policy", "holidays", Array(try encoder.encode(RetentionPolicy(archiveDays: 30, inactiveDays: 1, deletionBusinessDays: 7, backupDays: 7,
                                                                            holidays: ["2026-12-25", "2026-12-26", "2027-01-01"], backupEpochDays: 7))))
        for name in ["tiny", "edge-cases", "empty"] {
            add("manifest", name, Array(try Data(contentsOf: URL(fileURLWithPath: kat + "/" + name + ".manifest.json"))))
        }
        add("accounts-csv", "samples", Array(try Data(contentsOf: URL(fileURLWithPath: Self.samples + "/source/accounts.csv"))))

        for target in ["bundle-header", "bundle-file", "sidecar", "sealed-key", "keystore-snapshot", "config", "key-file", "policy",
                       "manifest", "accounts-csv"] {
            XCTAssertFalse(seeds[target]?.isEmpty ?? true, "no generated seed for \(target)")
        }
        // The real vault's keystore image, sealed as a snapshot, must open through the harness (in memory), and a
        // sealed non-database must not.
        let snapshotHarness = try XCTUnwrap(FuzzTargets.named("keystore-snapshot"))
        // (The image, with its 4096-bucket table, is longer than the target's fuzzing length, so it is run directly.)
        XCTAssertTrue(snapshotHarness.run(imageSeed))
        XCTAssertFalse(snapshotHarness.run(try XCTUnwrap(seeds["keystore-snapshot"]?["sealed-not-sqlite"])))
        for (target, files) in seeds {
            let harness = try XCTUnwrap(FuzzTargets.named(target), target)
            for (_, bytes) in files { _ = harness.run(bytes) }
        }
        guard writing else { return }
        for (target, files) in seeds {
            let dir = Self.corpus + "/" + target
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for (name, bytes) in files { try Data(bytes).write(to: URL(fileURLWithPath: dir + "/" + name)) }
        }
        print("wrote " + seeds.map { "\($0.key): \($0.value.count)" }.sorted().joined(separator: ", "))
    }

    /// The Cobblestone plaintext (the zstd frame) of a bundle sealed with the vectors' data key.
    func decrypt(_ bundle: [UInt8]) throws -> [UInt8] {
        guard bundle.count > 16 else { throw CryptoError.truncated }
        let headerLength = try BundleHeader.headerLength(fromPrefix: Array(bundle.prefix(16)), path: "seed")
        let header = Array(bundle.prefix(headerLength))
        var offset = min(headerLength, bundle.count)
        let decryptor = try CobblestoneDecryptor(inputKey: FuzzTargets.dataKey, context: header) { buffer in
            let n = min(buffer.count, bundle.count - offset)
            bundle.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
            offset += n
            return n
        }
        return try drain { try decryptor.read(into: $0) }
    }

    func decompress(_ frame: [UInt8]) throws -> [UInt8] {
        var offset = 0
        let decompressor = try ZstdDecompressor { buffer in
            let n = min(buffer.count, frame.count - offset)
            frame.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: n) }
            offset += n
            return n
        }
        return try drain { try decompressor.read(into: $0) }
    }

    func drain(_ read: (UnsafeMutableRawBufferPointer) throws -> Int) throws -> [UInt8] {
        var out: [UInt8] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = try read(buffer)
            if n == 0 { return out }
            out += UnsafeRawBufferPointer(rebasing: buffer[0..<n])
        }
    }
}
