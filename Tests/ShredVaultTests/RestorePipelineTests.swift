import Foundation
import XCTest
import VaultArchive
import VaultCrypto
@testable import ShredVault

/// The threaded restore pipeline (`BundleReader.Pipeline`, issue 15): it extracts exactly what the single-threaded
/// reader extracts, fails on damage in any stage with exactly the same one-line error, leaves nothing at the target
/// and no temporary directory, and returns promptly with every thread it started gone.
final class RestorePipelineTests: XCTestCase {
    /// Several MiB over directories, incompressible and compressible files and an empty one: hundreds of chunks, more
    /// than the read-ahead holds.
    private func bigSource(_ dir: String) throws -> String {
        let src = dir + "/src"
        try writeFile(src + "/a/random.bin", pseudoRandomBytes(5 << 20, seed: 1), mode: 0o600, mtime: 1_600_000_000)
        try writeFile(src + "/a/text.txt", pseudoRandomBytes(1 << 20, seed: 2, text: true))
        try writeFile(src + "/b/c/empty", [])
        try writeFile(src + "/b/c/more.bin", pseudoRandomBytes((1 << 20) + 123, seed: 3))
        return src
    }

    /// Threads of this process running a pipeline stage (named `sv-…`, /proc/self/task/*/comm). Counting all threads
    /// would not do: Dispatch and XCTest start and retire threads of their own at any time.
    private func stageThreads() throws -> [String] {
        try Posix.listDirectory("/proc/self/task").compactMap { tid in
            let comm = (try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8)) ?? ""
            return comm.hasPrefix("sv-") ? comm.trimmingCharacters(in: .whitespacesAndNewlines) : nil
        }
    }

    /// Waits (briefly) until no stage thread is left: a joined stage's thread has finished its work and exits right
    /// after.
    private func assertNoThreadLeft(_ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let deadline = Date().addingTimeInterval(5)
        var left = try stageThreads()
        while !left.isEmpty && Date() < deadline {
            usleep(10_000)
            left = try stageThreads()
        }
        XCTAssertEqual(left, [], "\(what): threads left running", file: file, line: line)
    }

    /// Extracts `bytes` with and without threads; both must fail with the same error, promptly, leaving no target, no
    /// temporary directory and no thread. Returns the error.
    @discardableResult
    private func assertSameFailure(_ bytes: [UInt8], _ dir: String, _ what: String,
                                   file: StaticString = #filePath, line: UInt = #line) throws -> VaultError? {
        let path = dir + "/bad.svb"
        try? FileManager.default.removeItem(atPath: path)
        try writeBytes(bytes, to: path)
        var errors: [VaultError?] = []
        for pipeline in [BundleReader.Pipeline.never, .always] {
            let started = Date()
            XCTAssertThrowsError(try BundleReader.extract(path: path, dataKey: testKey, to: dir + "/out", pipeline: pipeline),
                                 "\(what) (\(pipeline))", file: file, line: line) { e in
                XCTAssertNotNil(e as? VaultError, "\(what) (\(pipeline)): \(e)", file: file, line: line)
                errors.append(e as? VaultError)
            }
            XCTAssertLessThan(Date().timeIntervalSince(started), 60, "\(what) (\(pipeline)): returned promptly", file: file, line: line)
            XCTAssertFalse(Posix.exists(dir + "/out"), "\(what) (\(pipeline)): target created", file: file, line: line)
            XCTAssertEqual(try Posix.listDirectory(dir).filter { $0.contains("partial") }, [],
                           "\(what) (\(pipeline)): temporary left", file: file, line: line)
            try assertNoThreadLeft("\(what) (\(pipeline))", file: file, line: line)
        }
        XCTAssertEqual(errors.count, 2, what, file: file, line: line)
        if errors.count == 2 {
            XCTAssertEqual(errors[0], errors[1], "\(what): the pipeline fails differently", file: file, line: line)
            XCTAssertEqual(errors[0].map { "\($0)" }, errors[1].map { "\($0)" }, what, file: file, line: line)
        }
        return errors.first ?? nil
    }

    func testPipelineExtractsExactlyWhatTheSingleThreadedReaderDoes() throws {
        let dir = try makeTemporaryDirectory(self)
        let src = try bigSource(dir)
        let sealed = try BundleWriter.seal(source: src, header: testHeader(), dataKey: testKey, to: dir + "/b.svb")
        XCTAssertGreaterThan(try BundleReader.fileSize(path: dir + "/b.svb"), BundleReader.automaticMinimumSize)
        var started = ReadAhead.threadsStarted
        let (_, threaded) = try BundleReader.extract(path: dir + "/b.svb", dataKey: testKey, to: dir + "/threaded", pipeline: .always)
        XCTAssertEqual(ReadAhead.threadsStarted - started, 2, "decrypt and decompress ran on threads of their own")
        try assertNoThreadLeft("threaded extract")
        started = ReadAhead.threadsStarted
        let (_, single) = try BundleReader.extract(path: dir + "/b.svb", dataKey: testKey, to: dir + "/single", pipeline: .never)
        XCTAssertEqual(ReadAhead.threadsStarted - started, 0, "no thread with .never")
        started = ReadAhead.threadsStarted
        let (_, automatic) = try BundleReader.extract(path: dir + "/b.svb", dataKey: testKey, to: dir + "/automatic")
        XCTAssertEqual(ReadAhead.threadsStarted - started, 2, "a bundle of 4 MiB or more is read on threads by default")
        XCTAssertEqual(threaded, sealed.manifest)
        XCTAssertEqual(single, sealed.manifest)
        XCTAssertEqual(automatic, sealed.manifest)
        let expected = try TreeSnapshot(src)
        XCTAssertEqual(try TreeSnapshot(dir + "/threaded"), expected)
        XCTAssertEqual(try TreeSnapshot(dir + "/single"), try TreeSnapshot(dir + "/threaded"))
        XCTAssertEqual(try TreeSnapshot(dir + "/automatic"), try TreeSnapshot(dir + "/threaded"))
        XCTAssertEqual(try BundleReader.verify(path: dir + "/b.svb", dataKey: testKey, pipeline: .always).manifest, sealed.manifest)
    }

    func testPreallocationReservesBlocksAndLeavesTheSizeToTheWrites() throws {
        let dir = try makeTemporaryDirectory(self)
        let file = try FileDescriptor(open: dir + "/f", flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        XCTAssertFalse(file.preallocate(0), "nothing to reserve")
        let reserved = file.preallocate(1 << 20)
        var st = try file.status()
        XCTAssertEqual(st.st_size, 0, "the size is what was written, not what was reserved")
        if reserved { XCTAssertGreaterThanOrEqual(Int(st.st_blocks) * 512, 1 << 20, "the blocks are reserved") }
        try file.write(pseudoRandomBytes(1000, seed: 9))
        st = try file.status()
        XCTAssertEqual(st.st_size, 1000)
        try file.close()
        // A restored file holds exactly its bytes however it was reserved: extract a bundle and compare the tree
        // (sizes included) with its source.
        let src = try bigSource(dir)
        _ = try BundleWriter.seal(source: src, header: testHeader(), dataKey: testKey, to: dir + "/b.svb")
        _ = try BundleReader.extract(path: dir + "/b.svb", dataKey: testKey, to: dir + "/out", pipeline: .never)
        XCTAssertEqual(try TreeSnapshot(dir + "/out"), try TreeSnapshot(src))
    }

    /// Damage to the ciphertext (stage 1: read and authenticate) far into a big bundle.
    func testDamagedCiphertextFailsTheSameWay() throws {
        let dir = try makeTemporaryDirectory(self)
        _ = try BundleWriter.seal(source: try bigSource(dir), header: testHeader(), dataKey: testKey, to: dir + "/good.svb")
        let good = try readBytes(dir + "/good.svb")
        let start = testHeader().length + Cobblestone256.headerSize
        let unit = Cobblestone256.chunkSize + Cobblestone256.tagSize
        let middle = start + (good.count - start) / unit / 2 * unit
        var flipped = good
        flipped[middle + 1000] ^= 0x40
        let forged = try assertSameFailure(flipped, dir, "a byte flipped in a middle chunk")
        XCTAssertEqual(forged, .corruptBundle(path: dir + "/bad.svb", reason: CryptoError.authenticationFailed.description))
        let cut = try assertSameFailure(Array(good[..<middle]), dir, "cut at a chunk boundary in the middle")
        XCTAssertEqual(cut, .corruptBundle(path: dir + "/bad.svb", reason: CryptoError.truncated.description))
        try assertSameFailure(Array(good[..<(middle + 777)]), dir, "cut inside a middle chunk")
        var swapped = good
        swapped.replaceSubrange(middle..<(middle + unit), with: good[(middle + unit)..<(middle + 2 * unit)])
        swapped.replaceSubrange((middle + unit)..<(middle + 2 * unit), with: good[middle..<(middle + unit)])
        try assertSameFailure(swapped, dir, "two middle chunks swapped")
        try assertSameFailure(good + [0], dir, "one byte appended")
    }

    /// Damage to the zstd frame (stage 2: decompress) behind megabytes of good data.
    func testBadZstdFailsTheSameWay() throws {
        let dir = try makeTemporaryDirectory(self)
        let header = testHeader()
        let big = pseudoRandomBytes(6 << 20, seed: 9)
        var b = UstarBuilder()
        b.add(name: "files/big.bin", contents: big)
        try b.addManifest(header, [try fileEntry("big.bin", big)])
        let frame = try ZstdCompressorShim.compress(b.finished())
        // A corrupt block in the middle of the frame, the checksum changed, the frame cut, data after it.
        var corrupt = frame
        corrupt[frame.count / 2] ^= 0xff
        corrupt[frame.count / 2 + 1] ^= 0xff
        var checksum = frame
        checksum[frame.count - 1] ^= 0x01
        for (what, plaintext) in [("a corrupt block in the middle of the frame", corrupt), ("a wrong content checksum", checksum),
                                  ("the frame cut short", Array(frame[..<(frame.count - 5000)])), ("bytes after the frame", frame + [1, 2, 3])] {
            let e = try assertSameFailure(try sealPlaintext(plaintext, header: header), dir, what)
            if case .corruptBundle = e {} else { XCTFail("\(what): \(String(describing: e)) is not a payload failure") }
        }
    }

    /// Damage to the tar (stage 3: parse, hash, write): early, with megabytes still in the pipeline (the threads are
    /// cancelled while they run ahead), and late.
    func testBadTarFailsTheSameWay() throws {
        let dir = try makeTemporaryDirectory(self)
        let header = testHeader()
        let big = pseudoRandomBytes(6 << 20, seed: 10)
        // More than the pipeline buffers (2 × 4 MiB): its threads are blocked on full rings when the walker fails.
        let huge = pseudoRandomBytes(16 << 20, seed: 11)
        var early = UstarBuilder()
        early.add(name: "files/link", type: UInt8(ascii: "2"), linkName: "/etc/passwd")
        early.add(name: "files/huge.bin", contents: huge)
        try early.addManifest(header, [try fileEntry("huge.bin", huge)])
        let e = try assertSameFailure(try craftBundle(header: header, tar: early.finished()), dir, "a link first, then 16 MiB")
        XCTAssertEqual(e, .invalidContents(path: dir + "/bad.svb", reason: "entry 'link' is a symbolic link; bundles never contain links"))

        var late = UstarBuilder()
        late.add(name: "files/big.bin", contents: big)
        late.add(name: "files/../escape", contents: [1])
        try late.addManifest(header, [try fileEntry("big.bin", big)])
        try assertSameFailure(try craftBundle(header: header, tar: late.finished()), dir, "a '..' path after 6 MiB")

        var hashes = UstarBuilder()
        hashes.add(name: "files/big.bin", contents: big)
        var other = big
        other[3 << 20] ^= 1
        try hashes.addManifest(header, [try fileEntry("big.bin", other)])
        try assertSameFailure(try craftBundle(header: header, tar: hashes.finished()), dir, "a SHA-256 differing from the manifest")

        var trailing = UstarBuilder()
        trailing.add(name: "files/big.bin", contents: big)
        try trailing.addManifest(header, [try fileEntry("big.bin", big)])
        let e2 = try assertSameFailure(try craftBundle(header: header, tar: trailing.finished() + [UInt8](repeating: 0, count: 4096) + [7]),
                                       dir, "a non-zero byte after the end of the archive")
        if case .corruptBundle = e2 {} else { XCTFail("trailing tar bytes: \(String(describing: e2)) is not a payload failure") }
    }

    /// Encrypts arbitrary plaintext (not necessarily a zstd frame) as a bundle.
    private func sealPlaintext(_ plaintext: [UInt8], header: BundleHeader) throws -> [UInt8] {
        var payload = [UInt8]()
        let e = try CobblestoneEncryptor(inputKey: testKey, context: header.encoded()) { payload += $0 }
        try e.write(plaintext)
        try e.finish()
        return header.encoded() + payload
    }

    // MARK: - ReadAhead

    private struct Boom: Error, Equatable { let n: Int }

    /// The consumer gets every byte produced before the source's error, then the error, then the error again.
    func testReadAheadDeliversBytesThenTheErrorInOrder() throws {
        var produced = 0
        let stage = ReadAhead(name: "sv-test", slotSize: 1000, slotCount: 2) { buffer in
            if produced >= 10_500 { throw Boom(n: produced) }
            let n = min(buffer.count, 700, 10_500 - produced)
            for i in 0..<n { buffer[i] = UInt8(truncatingIfNeeded: produced + i) }
            produced += n
            return n
        }
        stage.start()
        defer { stage.cancel(); stage.join() }
        var got = [UInt8]()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 333, alignment: 1)
        defer { buffer.deallocate() }
        XCTAssertThrowsError(try { while true { let n = try stage.read(into: buffer); XCTAssertGreaterThan(n, 0); got += buffer[..<n] } }()) {
            XCTAssertEqual($0 as? Boom, Boom(n: 10_500))
        }
        XCTAssertEqual(got, (0..<10_500).map { UInt8(truncatingIfNeeded: $0) })
        XCTAssertThrowsError(try stage.read(into: buffer)) { XCTAssertEqual($0 as? Boom, Boom(n: 10_500)) }
    }

    /// Cancelling wakes a producer blocked on a full ring and a consumer blocked on an empty one; join returns.
    func testReadAheadCancelWakesBothSides() throws {
        let blocked = DispatchSemaphore(value: 0)
        // Upstream never ends: it fills its ring and blocks. Downstream reads from a stage whose source blocks until
        // released, so a consumer of it waits on an empty ring.
        let upstream = ReadAhead(name: "sv-test-up", slotSize: 64, slotCount: 2) { $0.count }
        let stalled = ReadAhead(name: "sv-test-stalled", slotSize: 64, slotCount: 2) { _ in blocked.wait(); return 0 }
        upstream.start()
        stalled.start()
        let consumerDone = DispatchSemaphore(value: 0)
        final class Outcome: @unchecked Sendable { var error: (any Error)? }
        let outcome = Outcome()
        let thread = Thread {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 1)
            defer { buffer.deallocate() }
            do { _ = try stalled.read(into: buffer) } catch { outcome.error = error }
            consumerDone.signal()
        }
        thread.start()
        usleep(50_000)
        upstream.cancel()
        stalled.cancel()
        XCTAssertEqual(consumerDone.wait(timeout: .now() + 5), .success, "the blocked consumer was woken")
        XCTAssertTrue(outcome.error is ReadAhead.Cancelled, "\(String(describing: outcome.error))")
        upstream.join()
        blocked.signal()
        stalled.join()
        try assertNoThreadLeft("cancelled stages")
    }
}
