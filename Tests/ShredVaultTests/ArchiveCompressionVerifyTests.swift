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

    /// A bit flipped in the bundle file once the block holding it was written (a write corrupted on its way, the page
    /// cache): the verifier reads the file itself, so the chunk fails to authenticate.
    func testAByteFlippedInTheFileAfterWriteFailsTheUserAndKeepsTheSource() throws {
        let dir = try makeTemporaryDirectory(self)
        try makeVault(dir)
        try assertUserAFailedAndKept(dir, faults: .init(user: "ua", flipFileByteAt: 5_000), "file fault")
    }

    /// The verifier reads the file as written, from its first byte to its last: a flip in the header, in the salt or
    /// commitment, or in the very last byte fails the seal, and an unfaulted seal's hash and head are those of the file
    /// on disk.
    func testTheVerifierReadsTheWholeFileAsWrittenAndItsHashIsTheFiles() throws {
        let dir = try makeTemporaryDirectory(self)
        let src = try makeMixedSource(dir)
        func seal(_ name: String, flip: Int64?) throws -> SealedBundle {
            try BundleWriter.seal(source: src, header: testHeader(), dataKey: testKey, to: dir + "/" + name, compression: .automatic,
                                  syncDirectory: true, deferSync: false, verifyPipelined: true,
                                  fault: flip.map { .init(flipFileByteAt: $0) })
        }
        let good = try seal("good.svb", flip: nil)
        let onDisk = try Array(Data(contentsOf: URL(fileURLWithPath: dir + "/good.svb")))
        XCTAssertEqual(Int(good.fileSize), onDisk.count)
        XCTAssertEqual(good.fileSHA256, try SHA256.hash(onDisk))
        XCTAssertEqual(good.head, Array(onDisk.prefix(BundleReader.signedPrefixMaxLength)))
        XCTAssertNotNil(good.verified)
        let headerLength = Int64(testHeader().encoded().count)
        for at in [Int64(3), headerLength + 5, headerLength + 40, Int64(onDisk.count) / 2, Int64(onDisk.count) - 1] {
            XCTAssertThrowsError(try seal("bad-\(at).svb", flip: at), "flip at \(at) of \(onDisk.count)")
            XCTAssertFalse(Posix.exists(dir + "/bad-\(at).svb"), "a failed seal leaves no bundle")
        }
    }

    /// The verifier and restore hash the bundle file paired with the files inside it (one thread, `SHA256.lend`): the
    /// hashes are the same as hashed one at a time, pairs really happen on a CPU with the SHA extensions, and a file
    /// that is not the catalog's is still refused.
    func testFileHashesPairedWithContentHashesAreTheFileAndContentsHashes() throws {
        defer { SHA256.setPairing(true) }
        let dir = try makeTemporaryDirectory(self)
        let src = try makeMixedSource(dir)
        for pairing in [true, false] {
            SHA256.setPairing(pairing)
            let name = pairing ? "paired" : "alone"
            let before = SHA256.pairedBlocks
            let sealed = try BundleWriter.seal(source: src, header: testHeader(), dataKey: testKey, to: dir + "/\(name).svb",
                                               compression: .automatic, syncDirectory: true, deferSync: false, verifyPipelined: true)
            let onDisk = try Array(Data(contentsOf: URL(fileURLWithPath: dir + "/\(name).svb")))
            XCTAssertEqual(sealed.fileSHA256, try SHA256.hash(onDisk), name)
            let afterSeal = SHA256.pairedBlocks
            let (_, manifest) = try BundleReader.extract(path: dir + "/\(name).svb", dataKey: testKey, to: dir + "/\(name)-out",
                                                         pipeline: .never, expectedSHA256: sealed.fileSHA256)
            XCTAssertEqual(manifest, sealed.manifest, name)
            XCTAssertEqual(try TreeSnapshot(dir + "/\(name)-out"), try TreeSnapshot(src), name)
            if pairing && SHA256.pairsTogether {
                // The files hold about 1.4 MB: most of the bundle's blocks go in pairs, both when verified and restored.
                XCTAssertGreaterThan(afterSeal - before, UInt64(onDisk.count / 64 / 2), "the verifier paired")
                XCTAssertGreaterThan(SHA256.pairedBlocks - afterSeal, UInt64(onDisk.count / 64 / 2), "restore paired")
            } else {
                XCTAssertEqual(SHA256.pairedBlocks, before, name)
            }
            var wrong = sealed.fileSHA256
            wrong[0] ^= 1
            XCTAssertThrowsError(try BundleReader.extract(path: dir + "/\(name).svb", dataKey: testKey, to: dir + "/\(name)-x",
                                                          pipeline: .never, expectedSHA256: wrong), name) { error in
                XCTAssertTrue("\(error)".contains("differs from the catalog"), "\(error)")
            }
            XCTAssertFalse(Posix.exists(dir + "/\(name)-x"))
        }
    }

    /// `FollowingReader` never reads past what the writer reported, waits for more, ends only when told, and reports a
    /// file truncated under it.
    func testFollowingReaderReadsOnlyWhatWasWritten() throws {
        let dir = try makeTemporaryDirectory(self)
        let path = dir + "/f"
        let out = try FileDescriptor(open: path, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        try out.write(Array(repeating: 7, count: 100))
        let reader = try FollowingReader(reading: path, as: "f", keepingFirst: 4)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 1)
        defer { buffer.deallocate() }
        reader.advance(to: 10)
        XCTAssertEqual(try reader.read(into: buffer), 10, "only the 10 bytes reported, though 100 are in the file")
        // A read now waits for the writer.
        let got = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var n = -1
        Thread {
            let own = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 1)
            n = (try? reader.read(into: own)) ?? -2
            own.deallocate()
            got.signal()
        }.start()
        XCTAssertEqual(got.wait(timeout: .now() + 0.3), .timedOut, "the read waits for more bytes")
        reader.advance(to: 30)
        XCTAssertEqual(got.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(n, 20)
        reader.end()
        XCTAssertEqual(try reader.read(into: buffer), 0)
        XCTAssertEqual(reader.head, [7, 7, 7, 7])
        XCTAssertEqual(try reader.finalize(), try SHA256.hash(Array(repeating: 7, count: 30)))

        // Reported written, but the file was cut short under the reader: an error, never a short stream.
        let cut = try FollowingReader(reading: path, as: "f", keepingFirst: 0)
        XCTAssertEqual(ftruncate(out.fd, 50), 0)
        cut.advance(to: 100)
        cut.end()
        var total = 0
        let ten = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<10])
        XCTAssertThrowsError(try { while true { let k = try cut.read(into: ten); if k == 0 { break }; total += k } }())
        XCTAssertEqual(total, 50)

        // Cancelled: a waiting read throws.
        let cancelled = try FollowingReader(reading: path, as: "f", keepingFirst: 0)
        cancelled.cancel()
        XCTAssertThrowsError(try cancelled.read(into: buffer)) { XCTAssertTrue($0 is FollowingReader.Cancelled) }
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
