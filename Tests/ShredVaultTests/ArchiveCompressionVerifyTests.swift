import Foundation
import XCTest
import VaultArchive
import VaultCrypto
@testable import ShredVault

/// Adaptive compression (vault-format.md §2.4) and the archive's verification (§4 G4): frames that change level are
/// standard frames (the zstd tool and the independent reader decode them), and a fault in the compressed stream or in
/// the written file fails the user and keeps its source.
final class ArchiveCompressionVerifyTests: XCTestCase {
    let day0 = Timestamp.parse("2026-11-29T00:15:00Z")!
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// Text, random bytes (like compressed audio) and text again: the random file goes at the fast level.
    func makeMixedSource(_ dir: String) throws -> String {
        let src = dir + "/src"
        try writeFile(src + "/a-events.jsonl", Array(String(repeating: "{\"event\":\"call.start\",\"ok\":true}\n", count: 9_000).utf8))
        try writeFile(src + "/calls/c1/recording.opus", pseudoRandomBytes(900_000, seed: 2))
        try writeFile(src + "/calls/c1/meta.json", Array("{\"call\":1}".utf8))
        try writeFile(src + "/z-transcript.txt", Array(String(repeating: "[agent] Thanks for calling, how can I help?\n", count: 5_000).utf8))
        return src
    }

    func testAdaptiveBundleIsOneStandardFrameForTheZstdToolAndTheIndependentReader() throws {
        let dir = try makeTemporaryDirectory(self)
        let src = try makeMixedSource(dir)
        let adaptive = try BundleWriter.seal(source: src, header: testHeader(), dataKey: testKey, to: dir + "/a.svb",
                                             compression: .automatic, syncDirectory: true, deferSync: false)
        let fixed = try BundleWriter.seal(source: src, header: testHeader(), dataKey: testKey, to: dir + "/f.svb",
                                          compression: .fixed(3), syncDirectory: true, deferSync: false)
        XCTAssertEqual(adaptive.compression.mode, "adaptive")
        XCTAssertEqual(adaptive.compression.fastFileBytes, 900_000)
        XCTAssertEqual(fixed.compression.fastFileBytes, 0)
        XCTAssertEqual(adaptive.compression.tarBytes, fixed.compression.tarBytes)
        XCTAssertLessThan(adaptive.compression.ratio, 0.9)
        // Our reader.
        let (_, manifest) = try BundleReader.extract(path: dir + "/a.svb", dataKey: testKey, to: dir + "/out")
        XCTAssertEqual(manifest, adaptive.manifest)
        XCTAssertEqual(try TreeSnapshot(dir + "/out"), try TreeSnapshot(src))
        // The independent reader (no ShredVault code; it checks the frame header and pipes it through `zstd -d`).
        let keyFile = dir + "/key.hex"
        try writeFile(keyFile, Array(testKey.hexEncodedString().utf8))
        let reader = Self.packageRoot + "/tools/independent-reader.py"
        let status = try runShell("python3 '\(reader)' '\(dir)/a.svb' '\(keyFile)' > '\(dir)/payload.tar' && mkdir '\(dir)/x' "
                                  + "&& tar -xf '\(dir)/payload.tar' -C '\(dir)/x' && diff -r '\(src)' '\(dir)/x/files'")
        XCTAssertEqual(status, 0)
    }

    /// libzstd applies a level change within a frame only with worker threads; the level really changes there.
    func testLevelChangesTakeEffectWithWorkersOnly() throws {
        let text = pseudoRandomBytes(2 << 20, seed: 9, text: true)
        func compress(workers: Int32, switchTo: Int32?) throws -> Int {
            var out = 0
            let c = try ZstdCompressor(level: 12, workers: workers, jobSize: 1 << 20) { out += $0.count }
            try text.withUnsafeBytes { all in
                try c.write(UnsafeRawBufferPointer(rebasing: all[0..<(1 << 20)]))
                if let switchTo { try c.changeLevel(switchTo) }
                try c.write(UnsafeRawBufferPointer(rebasing: all[(1 << 20)...]))
            }
            try c.finish()
            XCTAssertEqual(c.canChangeLevel, workers > 0)
            return out
        }
        XCTAssertGreaterThan(try compress(workers: 1, switchTo: -7), try compress(workers: 1, switchTo: nil) * 11 / 10)
        XCTAssertEqual(try compress(workers: 0, switchTo: -7), try compress(workers: 0, switchTo: nil))
    }

    // MARK: - G4: verification catches faults

    func makeVault(_ dir: String) throws {
        try writeFile(dir + "/src/accounts.csv", Array("user_id,last_active\nua,2025-01-01\nub,2025-01-01\n".utf8))
        try writeFile(dir + "/src/users/ua/calls/c1/recording.opus", pseudoRandomBytes(400_000, seed: 5))
        try writeFile(dir + "/src/users/ua/profile.json", Array("{\"a\":1}".utf8))
        try writeFile(dir + "/src/users/ub/events.jsonl", pseudoRandomBytes(50_000, seed: 6, text: true))
        _ = try Vault.create(root: dir + "/vault", restoreKeyPath: dir + "/restore.key", policy: RetentionPolicy(), drill: true, now: day0)
    }

    func assertUserAFailedAndKept(_ dir: String, faults: Vault.ArchiveFaults, _ message: String) throws {
        let report: ArchiveReport
        let before = try TreeSnapshot(dir + "/src/users/ua")
        do {
            let vault = try Vault(root: dir + "/vault")
            vault.archiveFaults = faults
            var options = ArchiveOptions(source: dir + "/src", jobs: 1)
            options.batchSize = 1
            report = try vault.archive(options, now: day0)
        }
        XCTAssertEqual(report.failed.map(\.user), ["ua"], message)
        XCTAssertTrue(report.failed.first?.reason.contains("did not read back as written") ?? false, report.failed.first?.reason ?? "")
        XCTAssertEqual(report.archived.map(\.user), ["ub"])
        XCTAssertTrue(try TreeSnapshot(dir + "/src/users/ua") == before, "source of ua changed")
        let vault = try Vault(root: dir + "/vault")
        let live = try vault.catalog.read { db in try String.fetchAll(db, sql: "SELECT user_id FROM bundles ORDER BY user_id") }
        XCTAssertEqual(live, ["ub"])
    }

    /// A bit flipped in the bundle file after it was written (disk, page cache): the re-read SHA-256 differs.
    func testAByteFlippedInTheFileAfterWriteFailsTheUserAndKeepsTheSource() throws {
        let dir = try makeTemporaryDirectory(self)
        try makeVault(dir)
        try assertUserAFailedAndKept(dir, faults: .init(user: "ua", flipFileByteAt: 5_000), "file fault")
    }

    /// A bit flipped in the compressed stream before encryption (a compressor or memory fault): the file holds what
    /// was produced, so only the pipelined verifier (decrypt, decompress, untar, hash) can catch it.
    func testAByteFlippedInTheCompressedStreamFailsTheUserAndKeepsTheSource() throws {
        let dir = try makeTemporaryDirectory(self)
        try makeVault(dir)
        try assertUserAFailedAndKept(dir, faults: .init(user: "ua", flipCompressedByteAt: 50_000), "compressor fault")
    }

    func runShell(_ script: String) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script]
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }
}
