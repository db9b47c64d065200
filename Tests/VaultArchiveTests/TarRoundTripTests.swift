import Foundation
import XCTest
@testable import VaultArchive

final class TarRoundTripTests: XCTestCase {
    /// A file or directory to write, and what reading it back must return.
    private struct Sample {
        var header: TarEntryHeader
        var data: [UInt8]
    }

    private static let unicodePath = "données/日本語 ünïcode.txt"
    /// 306 bytes over 58 nested directories: needs a pax `path` record (ustar holds at most 100 + 155).
    private static let deepPath = String(repeating: "deep/", count: 58) + "leaf-of-tree.bin"

    private func samples() -> [Sample] {
        var generator = ByteGenerator(seed: 11)
        func file(_ path: String, _ data: [UInt8], mode: UInt32 = 0o640, mtime: Int64 = 1_700_000_000) -> Sample {
            Sample(header: TarEntryHeader(path: path, kind: .file, size: Int64(data.count), mode: mode, mtime: mtime), data: data)
        }
        func directory(_ path: String, mode: UInt32 = 0o755, mtime: Int64 = 1_600_000_000) -> Sample {
            Sample(header: TarEntryHeader(path: path, kind: .directory, size: 0, mode: mode, mtime: mtime), data: [])
        }
        XCTAssertEqual(Self.deepPath.utf8.count, 306)
        return [
            directory("docs"),
            directory("docs/private", mode: 0o700),
            file("docs/empty.txt", []),
            file("docs/block.bin", generator.bytes(16384), mode: 0o600, mtime: 0),
            file("docs/large.bin", generator.bytes(1 << 20), mode: 0o4755, mtime: 4_102_444_800),
            directory("données"),
            file(Self.unicodePath, Array("bonjour\n".utf8)),
            file(String(repeating: "n", count: 100), [1, 2, 3]),
            file(String(repeating: "m", count: 101), [4, 5]),
            file(Self.deepPath, generator.bytes(1000)),
        ]
    }

    private func writeTar(_ samples: [Sample]) throws -> [UInt8] {
        var output = [UInt8]()
        let writer = try TarWriter { output.append(contentsOf: $0) }
        for sample in samples {
            switch sample.header.kind {
            case .directory:
                try writer.addDirectory(path: sample.header.path, mode: sample.header.mode, mtime: sample.header.mtime)
            default:
                // Write in uneven pieces through the streaming calls.
                try writer.beginFile(path: sample.header.path, size: sample.header.size, mode: sample.header.mode, mtime: sample.header.mtime)
                try sample.data.withUnsafeBytes { data in
                    var offset = 0
                    while offset < data.count {
                        let end = min(data.count, offset + 10_007)
                        try writer.writeData(UnsafeRawBufferPointer(rebasing: data[offset..<end]))
                        offset = end
                    }
                }
                try writer.endFile()
            }
        }
        try writer.finish()
        return output
    }

    func testEntriesRoundTripWithIdenticalHeadersAndData() throws {
        let samples = samples()
        let tar = try writeTar(samples)
        for readSizes in [[Int.max], [511, 1, 70_000], [4096]] {
            let entries = try readTar(tar, readSizes: readSizes)
            XCTAssertEqual(entries.count, samples.count)
            for (entry, sample) in zip(entries, samples) {
                XCTAssertEqual(entry.header, sample.header)
                XCTAssertEqual(entry.data, sample.data, sample.header.path)
            }
        }
    }

    func testOutputIsDeterministicAndEndsAtTheEndOfArchiveMarker() throws {
        let first = try writeTar(samples())
        let second = try writeTar(samples())
        XCTAssertEqual(first, second)
        XCTAssertEqual(first.count % 512, 0)
        XCTAssertEqual(Array(first.suffix(1024)), [UInt8](repeating: 0, count: 1024))
        XCTAssertNotEqual(Array(first.suffix(1536).prefix(512)), [UInt8](repeating: 0, count: 512))
    }

    func testEmptyArchiveIsJustTheMarker() throws {
        var output = [UInt8]()
        let writer = try TarWriter { output.append(contentsOf: $0) }
        try writer.finish()
        XCTAssertEqual(output, [UInt8](repeating: 0, count: 1024))
        XCTAssertEqual(try readTar(output), [])
    }

    func testGNUTarListsAndExtractsTheArchive() throws {
        let samples = samples()
        let directory = try makeTemporaryDirectory(self)
        let file = directory.appendingPathComponent("out.tar")
        try Data(try writeTar(samples)).write(to: file)
        let environment = ["LC_ALL": "C.UTF-8", "PATH": "/usr/bin:/bin"]

        let listing = try runTool("/usr/bin/tar", ["--quoting-style=literal", "-tf", file.path], environment: environment)
        XCTAssertEqual(listing.status, 0)
        let names = String(decoding: listing.output, as: UTF8.self).split(separator: "\n").map(String.init)
        XCTAssertEqual(names, samples.map { $0.header.kind == .directory ? $0.header.path + "/" : $0.header.path })

        // Verbose listing: numeric owner 0/0 and the modes we wrote.
        let verbose = try runTool("/usr/bin/tar", ["--numeric-owner", "-tvf", file.path], environment: environment)
        let lines = String(decoding: verbose.output, as: UTF8.self).split(separator: "\n")
        XCTAssertEqual(lines.count, samples.count)
        XCTAssertTrue(lines.allSatisfy { $0.contains(" 0/0 ") }, lines.joined(separator: "\n"))
        XCTAssertTrue(lines[4].hasPrefix("-rwsr-xr-x"), String(lines[4]))

        let extracted = directory.appendingPathComponent("x")
        try FileManager.default.createDirectory(at: extracted, withIntermediateDirectories: true)
        XCTAssertEqual(try runTool("/usr/bin/tar", ["-xf", file.path, "-C", extracted.path], environment: environment).status, 0)
        for sample in samples where sample.header.kind == .file {
            let data = try Data(contentsOf: extracted.appendingPathComponent(sample.header.path))
            XCTAssertEqual([UInt8](data), sample.data, sample.header.path)
        }
    }

    func testWritingMoreThanTheDeclaredSizeIsRejected() throws {
        let writer = try TarWriter { _ in }
        try writer.beginFile(path: "a", size: 3, mode: 0o644, mtime: 0)
        try [UInt8]([1, 2]).withUnsafeBytes { try writer.writeData($0) }
        XCTAssertThrowsError(try [UInt8]([3, 4]).withUnsafeBytes { try writer.writeData($0) }) { error in
            XCTAssertEqual(error as? ArchiveError, .sizeMismatch("a: declared size 3, got 4"))
        }
        // Sticky: the writer refuses everything afterwards.
        XCTAssertThrowsError(try writer.finish()) { error in
            XCTAssertEqual(error as? ArchiveError, .sizeMismatch("a: declared size 3, got 4"))
        }
    }

    func testWritingLessThanTheDeclaredSizeIsRejected() throws {
        let writer = try TarWriter { _ in }
        try writer.beginFile(path: "a", size: 3, mode: 0o644, mtime: 0)
        try [UInt8]([1]).withUnsafeBytes { try writer.writeData($0) }
        assertThrows(try writer.endFile(), equals: ArchiveError.sizeMismatch("a: declared size 3, got 1"))

        // Starting the next entry checks the open file the same way.
        let second = try TarWriter { _ in }
        try second.beginFile(path: "b", size: 1, mode: 0o644, mtime: 0)
        assertThrows(try second.addDirectory(path: "c", mode: 0o755, mtime: 0),
                     equals: ArchiveError.sizeMismatch("b: declared size 1, got 0"))
    }

    func testDataWithoutAnOpenFileIsRejected() throws {
        let writer = try TarWriter { _ in }
        try writer.addDirectory(path: "d", mode: 0o755, mtime: 0)
        assertThrows(try [UInt8]([1]).withUnsafeBytes { try writer.writeData($0) },
                     equals: ArchiveError.sizeMismatch("data written while no file is open"))
    }

    func testUnrepresentablePathsAreRejected() throws {
        assertThrows(try TarWriter { _ in }.addFile(path: "", contents: [], mode: 0o644, mtime: 0),
                     equals: ArchiveError.unsupportedEntry("an entry path is empty"))
        XCTAssertThrowsError(try TarWriter { _ in }.addDirectory(path: "a\0b", mode: 0o755, mtime: 0)) { error in
            guard case ArchiveError.unsupportedEntry = error else { return XCTFail("got \(error)") }
        }
        XCTAssertThrowsError(try TarWriter { _ in }.beginFile(path: "neg", size: -1, mode: 0o644, mtime: 0)) { error in
            guard case ArchiveError.unsupportedEntry = error else { return XCTFail("got \(error)") }
        }
    }

    func testSinkErrorSurfacesUnchanged() throws {
        var generator = ByteGenerator(seed: 12)
        let big = generator.bytes(300_000)
        // Fails on the first block (inside writeData) and on the final flush (inside finish).
        let writer = try TarWriter { _ in throw InjectedFailure(tag: "sink") }
        assertThrows(try writer.addFile(path: "big", contents: big, mode: 0o644, mtime: 0), equals: InjectedFailure(tag: "sink"))
        assertThrows(try writer.finish(), equals: InjectedFailure(tag: "sink"))

        // Fails only once everything before the end-of-archive marker was accepted (inside finish).
        nonisolated(unsafe) var finishing = false
        let small = try TarWriter { _ in if finishing { throw InjectedFailure(tag: "late") } }
        try small.addFile(path: "small", contents: [1, 2, 3], mode: 0o644, mtime: 0)
        finishing = true
        assertThrows(try small.finish(), equals: InjectedFailure(tag: "late"))
    }

    func testAbandonedWriterWritesNothingMore() throws {
        var output = [UInt8]()
        var beforeRelease = [UInt8]()
        do {
            let writer = try TarWriter { output.append(contentsOf: $0) }
            try writer.addFile(path: "a", contents: [1, 2, 3], mode: 0o644, mtime: 0)
            beforeRelease = output
        }
        // Released without finish(): deinit wrote nothing (no padding, no end-of-archive marker). The writer is
        // unblocked, so the header and the data were handed on as they came.
        XCTAssertEqual(output, beforeRelease)
        XCTAssertEqual(output.count, 1024, "one header block and the padded data, no end-of-archive marker")
    }

    /// Unblocked output is the same stream a blocked writer produced: headers, data padded to 512 bytes, two zero
    /// blocks, nothing after them; and data reaches the sink without being gathered into blocks first.
    func testUnblockedOutputIsTheExactTarStream() throws {
        var generator = ByteGenerator(seed: 5)
        let data = generator.bytes(200_000)
        var output = [UInt8]()
        var calls: [Int] = []
        let writer = try TarWriter { output.append(contentsOf: $0); calls.append($0.count) }
        try writer.addFile(path: "x.bin", contents: data, mode: 0o644, mtime: 0)
        try writer.finish()
        let padded = (data.count + 511) / 512 * 512
        XCTAssertEqual(output.count, 512 + padded + 1024)
        XCTAssertEqual(Array(output[512..<(512 + data.count)]), data)
        XCTAssertTrue(output[(512 + data.count)...].allSatisfy { $0 == 0 })
        XCTAssertTrue(calls.contains(data.count), "the file's bytes went to the sink in one piece: \(calls)")
    }
}
