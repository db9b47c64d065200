import Foundation
import XCTest
@testable import VaultArchive

final class ZstdStreamTests: XCTestCase {
    private static let magic: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]

    func testRoundTripsAcrossSizesAndOddReadSizes() throws {
        var generator = ByteGenerator(seed: 1)
        let inputs: [(String, [UInt8])] = [
            ("empty", []),
            ("one byte", [0x5A]),
            ("1 MiB random", generator.bytes(1 << 20)),
            ("5 MiB compressible", compressibleBytes(5 << 20)),
        ]
        for (name, input) in inputs {
            let frame = try zstdCompress(input, writeSize: 77_777)
            XCTAssertEqual(Array(frame.prefix(4)), Self.magic, name)
            for (bufferSize, readSizes) in [(1, [Int.max]), (7, [3, 1, 5000]), (4093, [1, 65_537]), (1 << 20, [13])] {
                if bufferSize == 1 && input.count > 100_000 { continue }  // byte-at-a-time only for tiny inputs
                let output = try zstdDecompress(frame, bufferSize: bufferSize, readSizes: readSizes)
                XCTAssertEqual(output, input, "\(name), buffer \(bufferSize), reads \(readSizes)")
            }
        }
    }

    func testWorkerThreadsWriteOneStandardFrame() throws {
        let input = compressibleBytes(5 << 20)
        var parallel = [UInt8]()
        let compressor = try ZstdCompressor(level: 3, workers: 2, jobSize: 512 << 10) { parallel.append(contentsOf: $0) }
        try input.withUnsafeBytes { all in
            for start in stride(from: 0, to: all.count, by: 100_000) {
                try compressor.write(UnsafeRawBufferPointer(rebasing: all[start..<min(all.count, start + 100_000)]))
            }
        }
        try compressor.finish()
        XCTAssertEqual(Array(parallel.prefix(4)), Self.magic)
        // The strict decompressor refuses anything after the first frame: this is one frame.
        XCTAssertEqual(try zstdDecompress(parallel, readSizes: [65_537]), input)
        // Jobs compressed independently give other bytes than one thread: the worker path was taken.
        XCTAssertNotEqual(parallel, try zstdCompress(input))
    }

    func testCompressibleDataShrinksAndLevelMatters() throws {
        // Words drawn at random from a small vocabulary: higher levels find more matches.
        var generator = ByteGenerator(seed: 5)
        let vocabulary = (0..<300).map { Array(String(repeating: "w\($0)", count: $0 % 5 + 1).utf8) + [0x20] }
        var input = [UInt8]()
        while input.count < 1 << 20 {
            input += vocabulary[Int(generator.nextWord() % 300)]
        }
        let fast = try zstdCompress(input, level: 1)
        let strong = try zstdCompress(input, level: 19)
        XCTAssertLessThan(fast.count, input.count / 4)
        XCTAssertLessThan(strong.count, fast.count * 9 / 10)
        XCTAssertEqual(try zstdDecompress(fast), input)
        XCTAssertEqual(try zstdDecompress(strong), input)
    }

    func testFrameIsAcceptedByTheZstdTool() throws {
        let directory = try makeTemporaryDirectory(self)
        var generator = ByteGenerator(seed: 2)
        let input = generator.bytes(300_000) + compressibleBytes(700_000)
        let file = directory.appendingPathComponent("data.zst")
        try Data(try zstdCompress(input)).write(to: file)
        let test = try runTool("/usr/bin/zstd", ["-q", "-t", file.path])
        XCTAssertEqual(test.status, 0)
        let decoded = try runTool("/usr/bin/zstd", ["-q", "-d", "-c", file.path])
        XCTAssertEqual(decoded.status, 0)
        XCTAssertEqual([UInt8](decoded.output), input)
    }

    func testFrameWrittenByTheZstdToolDecompresses() throws {
        let directory = try makeTemporaryDirectory(self)
        let input = compressibleBytes(500_000)
        let file = directory.appendingPathComponent("data")
        try Data(input).write(to: file)
        XCTAssertEqual(try runTool("/usr/bin/zstd", ["-q", "--check", file.path]).status, 0)
        let frame = [UInt8](try Data(contentsOf: directory.appendingPathComponent("data.zst")))
        XCTAssertEqual(try zstdDecompress(frame, bufferSize: 1000, readSizes: [333]), input)
    }

    func testFrameCarriesAChecksum() throws {
        // Frame header descriptor bit 2 is Content_Checksum_flag (RFC 8878, 3.1.1.1.1).
        let frame = try zstdCompress([1, 2, 3])
        XCTAssertEqual(frame[4] & 0x04, 0x04)
    }

    func testOnlyStandardFramesWithAContentChecksumAreRead() throws {
        let directory = try makeTemporaryDirectory(self)
        let input = compressibleBytes(50_000)
        let frame = try zstdCompress(input)
        // The control: the frame header may arrive a byte at a time.
        XCTAssertEqual(try zstdDecompress(frame, readSizes: [1, 1, 1, 1, 1, 1000]), input)
        var noChecksum = frame
        noChecksum[4] &= ~0x04  // Content_Checksum_flag
        noChecksum.removeLast(4)
        var legacy: [UInt8] = [0x25, 0xB5, 0x2F, 0xFD, 6, 0x40, UInt8(input.count >> 8 & 0xff), UInt8(input.count & 0xff)]
        legacy[5] |= UInt8(input.count >> 16)
        legacy += input + [0xC0, 0, 0]  // zstd v0.5: one raw block, end block
        // libzstd (here through the zstd tool) decodes both, so the decompressor must look at the header itself.
        for (name, bytes) in [("no-checksum", noChecksum), ("legacy-v05", legacy)] {
            let file = directory.appendingPathComponent(name + ".zst")
            try Data(bytes).write(to: file)
            let decoded = try runTool("/usr/bin/zstd", ["-q", "-d", "-c", file.path])
            XCTAssertEqual(decoded.status, 0, name)
            XCTAssertEqual([UInt8](decoded.output), input, name)
        }
        var reserved = frame
        reserved[4] |= 0x08
        var dictionary = frame
        dictionary[4] |= 0x01
        let cases: [([UInt8], String)] = [
            (noChecksum, "its frame header declares no content checksum"),
            (legacy, "it starts with the magic number of a legacy (pre-RFC 8878) zstd format, 0xfd2fb525"),
            ([0x5A, 0x2A, 0x4D, 0x18, 0, 0, 0, 0] + frame, "it starts with a skippable frame (magic 0x184d2a5a)"),
            (reserved, "its frame header sets the reserved bit"),
            (dictionary, "its frame header names a dictionary"),
            (Array("hello, world".utf8), "it does not start with the zstd magic number 0xfd2fb528"),
        ]
        for (bytes, detail) in cases {
            for readSizes in [[Int.max], [2, 2, 1000]] {
                assertThrows(try zstdDecompress(bytes, readSizes: readSizes), equals: ArchiveError.unsupportedFrame(detail))
            }
        }
        XCTAssertEqual(ArchiveError.unsupportedFrame("its frame header names a dictionary").description,
                       "The compressed data is not a standard zstd frame with a content checksum: its frame header names a dictionary.")
    }

    func testTruncatedFrameIsRejected() throws {
        let frame = try zstdCompress(compressibleBytes(200_000))
        for length in [0, 1, 4, 5, frame.count / 2, frame.count - 4, frame.count - 1] {
            assertThrows(try zstdDecompress(Array(frame.prefix(length)), readSizes: [1000]),
                         equals: ArchiveError.truncated("the zstd stream ended before the end of its frame"))
        }
    }

    func testBytesAfterTheFrameAreRejected() throws {
        let input = compressibleBytes(100_000)
        let frame = try zstdCompress(input)
        let secondFrame = try zstdCompress([9, 9, 9])
        // A zero byte, a byte arriving in a later read, a whole second frame, an empty second frame.
        for (trailer, readSizes) in [([UInt8(0)], [Int.max]), ([0x41], [frame.count]), (secondFrame, [1 << 20]),
                                     (try zstdCompress([]), [17])] {
            XCTAssertThrowsError(try zstdDecompress(frame + trailer, readSizes: readSizes)) { error in
                guard case ArchiveError.trailingData = error else { return XCTFail("got \(error)") }
            }
        }
    }

    func testTrailingDataErrorIsSticky() throws {
        let frame = try zstdCompress([1, 2, 3]) + [0]
        let source = ArraySource(frame)
        let decompressor = try ZstdDecompressor(source: source.read)
        var buffer = [UInt8](repeating: 0, count: 16)
        XCTAssertEqual(try buffer.withUnsafeMutableBytes { try decompressor.read(into: $0) }, 3)
        for _ in 0..<2 {
            XCTAssertThrowsError(try buffer.withUnsafeMutableBytes { try decompressor.read(into: $0) }) { error in
                XCTAssertEqual(error as? ArchiveError, .trailingData("found 1 more byte after the zstd frame"))
            }
        }
    }

    func testCorruptionIsDetected() throws {
        var generator = ByteGenerator(seed: 3)
        // Random data is stored in raw blocks: only the content checksum can notice a flipped byte.
        let random = generator.bytes(100_000)
        var frame = try zstdCompress(random)
        frame[frame.count / 2] ^= 0x01
        assertThrows(try zstdDecompress(frame), equals: ArchiveError.zstd(function: "ZSTD_decompressStream", message: "Restored data doesn't match checksum"))

        // Compressible data: the flip lands in entropy-coded data or sequences.
        let compressible = compressibleBytes(100_000)
        var compressed = try zstdCompress(compressible)
        compressed[compressed.count / 2] ^= 0x10
        XCTAssertThrowsError(try zstdDecompress(compressed)) { error in
            guard case ArchiveError.zstd(function: "ZSTD_decompressStream", _) = error else { return XCTFail("got \(error)") }
        }
    }

    func testSourceErrorSurfacesUnchanged() throws {
        let frame = try zstdCompress(compressibleBytes(300_000))
        for failAt in [0, 10, frame.count - 1, frame.count] {
            let source = ArraySource(frame, readSizes: [4096])
            source.failAt = failAt
            let decompressor = try ZstdDecompressor(source: source.read)
            var buffer = [UInt8](repeating: 0, count: 65536)
            XCTAssertThrowsError(try { while try buffer.withUnsafeMutableBytes({ try decompressor.read(into: $0) }) > 0 {} }()) { error in
                XCTAssertEqual(error as? InjectedFailure, InjectedFailure(tag: "source"), "fail at \(failAt)")
            }
            // Sticky: the same error again.
            XCTAssertThrowsError(try buffer.withUnsafeMutableBytes { try decompressor.read(into: $0) }) { error in
                XCTAssertEqual(error as? InjectedFailure, InjectedFailure(tag: "source"))
            }
        }
    }

    func testSinkErrorSurfacesUnchangedAndIsSticky() throws {
        var calls = 0
        let compressor = try ZstdCompressor { _ in
            calls += 1
            throw InjectedFailure(tag: "sink")
        }
        var generator = ByteGenerator(seed: 4)
        let input = generator.bytes(1 << 20)
        XCTAssertThrowsError(try input.withUnsafeBytes { try compressor.write($0) }) { error in
            XCTAssertEqual(error as? InjectedFailure, InjectedFailure(tag: "sink"))
        }
        XCTAssertThrowsError(try compressor.finish()) { error in
            XCTAssertEqual(error as? InjectedFailure, InjectedFailure(tag: "sink"))
        }
        XCTAssertEqual(calls, 1)
    }

    /// Contexts are pooled and reused (issue 15). A compressor abandoned mid-frame, one whose sink failed, and a
    /// decompressor that failed on a corrupt frame leave nothing behind: every later stream, of either shape, is
    /// exactly one standard frame that round-trips, whichever pooled context it gets.
    func testReusedContextsStartEveryStreamClean() throws {
        let input = compressibleBytes(3 << 20)
        for workers: Int32 in [0, 1] {
            // Abandoned after half the input, never finished.
            do {
                let abandoned = try ZstdCompressor(level: 3, workers: workers, jobSize: 512 << 10) { _ in }
                try input.withUnsafeBytes { try abandoned.write(UnsafeRawBufferPointer(rebasing: $0[0..<(input.count / 2)])) }
            }
            // Its sink failed mid-frame.
            do {
                let failing = try ZstdCompressor(level: 3, workers: workers, jobSize: 512 << 10) { _ in throw InjectedFailure(tag: "sink") }
                XCTAssertThrowsError(try input.withUnsafeBytes { try failing.write($0); try failing.finish() })
            }
            // A level changed mid-frame, then the stream finished: the next stream starts at its own level again.
            for round in 0..<3 {
                var frame = [UInt8]()
                let compressor = try ZstdCompressor(level: round == 1 ? 1 : 3, workers: workers, jobSize: 512 << 10) { frame.append(contentsOf: $0) }
                try input.withUnsafeBytes { all in
                    try compressor.write(UnsafeRawBufferPointer(rebasing: all[0..<(all.count / 2)]))
                    if compressor.canChangeLevel { try compressor.changeLevel(-5) }
                    try compressor.write(UnsafeRawBufferPointer(rebasing: all[(all.count / 2)...]))
                }
                try compressor.finish()
                XCTAssertEqual(try zstdDecompress(frame, readSizes: [65_537]), input, "workers \(workers), round \(round)")
            }
        }
        // A decompressor that failed on a corrupted frame, then clean frames through the pooled contexts.
        var corrupt = try zstdCompress(input)
        corrupt[corrupt.count / 2] ^= 0x40
        XCTAssertThrowsError(try zstdDecompress(corrupt, readSizes: [65_537]))
        let frame = try zstdCompress(input)
        for _ in 0..<3 { XCTAssertEqual(try zstdDecompress(frame, readSizes: [4093]), input) }
    }

    /// `changeLevel(_:fewMatches:)`: the tuned match finder changes the bytes of the jobs after it within the frame (so
    /// libzstd applied it), the frame still decodes, and a pooled context does not carry it into the next stream.
    func testFewMatchesTuningTakesEffectWithinTheFrameAndIsNotPooled() throws {
        // 16-bit PCM-like samples: a slow sine plus noise, few repeats (like the call corpus's WAV files).
        var rng: UInt64 = 0x2545_F491_4F6C_DD1D
        var input = [UInt8]()
        input.reserveCapacity(4 << 20)
        for i in 0..<(2 << 20) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17
            // Speech-like bursts with quiet gaps (near-silence repeats, the rest barely does).
            let loud = (i / 16_000) % 3 != 2
            let sample = Int16(truncatingIfNeeded: loud ? Int(8000 * sin(Double(i) / 40)) + Int(rng % 64) - 32 : Int(rng % 3) - 1)
            input.append(UInt8(truncatingIfNeeded: sample))
            input.append(UInt8(truncatingIfNeeded: sample >> 8))
        }
        func frame(fewMatches: Bool?) throws -> [UInt8] {
            var out = [UInt8]()
            let compressor = try ZstdCompressor(level: 3, workers: 1, jobSize: 512 << 10) { out.append(contentsOf: $0) }
            XCTAssertTrue(compressor.canChangeLevel)
            try input.withUnsafeBytes { all in
                // The first MiB at level 3, then the change: it applies to the jobs after it.
                try compressor.write(UnsafeRawBufferPointer(rebasing: all[..<(1 << 20)]))
                if let fewMatches { try compressor.changeLevel(1, fewMatches: fewMatches) }
                try compressor.write(UnsafeRawBufferPointer(rebasing: all[(1 << 20)...]))
            }
            try compressor.finish()
            XCTAssertEqual(try zstdDecompress(out, readSizes: [65_537]), input)
            return out
        }
        let plainBefore = try frame(fewMatches: nil)
        let levelOne = try frame(fewMatches: false)
        let tuned = try frame(fewMatches: true)
        let plainAfter = try frame(fewMatches: nil)
        print("few-matches frames: level 3 \(plainBefore.count), then level 1 \(levelOne.count), tuned \(tuned.count), level 3 again \(plainAfter.count)")
        XCTAssertNotEqual(levelOne.count, plainBefore.count, "the level changed within the frame")
        XCTAssertTrue(tuned != levelOne, "the tuned match finder changed the jobs after it")
        XCTAssertLessThan(Double(tuned.count), Double(levelOne.count) * 1.01, "and costs under 1 % of size here")
        XCTAssertTrue(plainAfter == plainBefore, "the reused context starts with the level's own match finder")
    }

    func testFinishIsIdempotent() throws {
        var output = [UInt8]()
        let compressor = try ZstdCompressor { output.append(contentsOf: $0) }
        try compressor.finish()
        let size = output.count
        try compressor.finish()
        XCTAssertEqual(output.count, size)
        XCTAssertEqual(try zstdDecompress(output), [])
    }

    func testErrorDescriptionsAreSentences() {
        XCTAssertEqual(ArchiveError.zstd(function: "ZSTD_decompressStream", message: "Corrupted block detected").description,
                       "zstd ZSTD_decompressStream failed: Corrupted block detected.")
        XCTAssertEqual(ArchiveError.truncated("the tar stream ends early.").description,
                       "The data is truncated: the tar stream ends early.")
    }
}
