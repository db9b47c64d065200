import Foundation
import XCTest
@testable import VaultArchive

final class TarReaderTests: XCTestCase {
    private static let fifoType: UInt32 = 0o010000

    /// A small archive written by TarWriter: entries end at 1536 and 2560, then the 1024-byte marker.
    private func smallTar() throws -> [UInt8] {
        var output = [UInt8]()
        let writer = try TarWriter { output.append(contentsOf: $0) }
        try writer.addFile(path: "a.txt", contents: Array(repeating: 0x61, count: 1000), mode: 0o644, mtime: 5)
        try writer.addFile(path: "b.txt", contents: [0x62], mode: 0o644, mtime: 6)
        try writer.finish()
        XCTAssertEqual(output.count, 512 + 1024 + 512 + 512 + 1024)
        return output
    }

    /// Builds a directory holding a file, a symlink, a hard link, a FIFO and a subdirectory, and tars it
    /// with GNU tar in the given format.
    private func gnuTar(format: String) throws -> [UInt8] {
        let directory = try makeTemporaryDirectory(self)
        let script = """
            set -e
            mkdir tree tree/sub
            printf 'hello\\n' > tree/file
            ln -s file tree/link
            ln tree/file tree/hard
            mkfifo tree/fifo
            tar --format=\(format) -cf out.tar -C tree .
            """
        let result = try runTool("/bin/sh", ["-c", "cd '\(directory.path)' && \(script)"])
        XCTAssertEqual(result.status, 0)
        return [UInt8](try Data(contentsOf: directory.appendingPathComponent("out.tar")))
    }

    func testGNUTarEntryKinds() throws {
        for format in ["gnu", "posix", "ustar"] {
            let entries = try readTar(try gnuTar(format: format), readSizes: [700])
            var byPath = [String: ReadEntry]()
            for entry in entries { byPath[entry.header.path] = entry }
            XCTAssertEqual(Set(byPath.keys), [".", "./sub", "./file", "./link", "./hard", "./fifo"], format)
            XCTAssertEqual(byPath["."]?.header.kind, .directory, format)
            XCTAssertEqual(byPath["./sub"]?.header.kind, .directory, format)
            XCTAssertEqual(byPath["./link"]?.header.kind, .symlink, format)
            XCTAssertEqual(byPath["./link"]?.header.linkTarget, "file", format)
            XCTAssertEqual(byPath["./fifo"]?.header.kind, .other(Self.fifoType), format)
            // GNU tar stores whichever of the two names it meets first as the file, the other as a link to it.
            let pair = [byPath["./file"], byPath["./hard"]].compactMap { $0 }
            let stored = pair.filter { $0.header.kind == .file }
            let linked = pair.filter { $0.header.kind == .hardlink }
            XCTAssertEqual(stored.count, 1, format)
            XCTAssertEqual(linked.count, 1, format)
            XCTAssertEqual(stored.first?.data, Array("hello\n".utf8), format)
            XCTAssertEqual(linked.first?.header.linkTarget, stored.first?.header.path, format)
            XCTAssertNil(stored.first?.header.linkTarget, format)
        }
    }

    func testPathsThatAreNotUTF8AreRejected() throws {
        for format in ["gnu", "posix"] {
            let directory = try makeTemporaryDirectory(self)
            let result = try runTool("/bin/sh", ["-c", "cd '\(directory.path)' && mkdir t && : > \"t/bad$(printf '\\377')\" && tar --format=\(format) -cf out.tar -C t ."])
            XCTAssertEqual(result.status, 0)
            let tar = [UInt8](try Data(contentsOf: directory.appendingPathComponent("out.tar")))
            XCTAssertThrowsError(try readTar(tar)) { error in
                guard case ArchiveError.unsupportedEntry = error else { return XCTFail("\(format): got \(error)") }
            }
        }
    }

    func testZeroBytesAfterTheMarkerAreAccepted() throws {
        let tar = try smallTar()
        for (padding, readSizes) in [(1, [Int.max]), (9216, [Int.max]), (200_000, [100]), (70_000, [65_536])] {
            let entries = try readTar(tar + [UInt8](repeating: 0, count: padding), readSizes: readSizes)
            XCTAssertEqual(entries.map(\.header.path), ["a.txt", "b.txt"])
        }
    }

    func testNonZeroBytesAfterTheMarkerAreRejected() throws {
        let tar = try smallTar()
        // Right after the marker (read ahead by libarchive), in a later read, and far beyond the buffers.
        let cases: [(trailer: [UInt8], readSizes: [Int], offset: Int)] = [
            ([0x01], [Int.max], tar.count),
            ([0, 0, 0, 0x7F], [100], tar.count + 3),
            ([UInt8](repeating: 0, count: 150_000) + [0x01], [Int.max], tar.count + 150_000),
            ([UInt8](repeating: 0, count: 65_536 - tar.count) + [0x01], [Int.max], 65_536),
        ]
        for (trailer, readSizes, offset) in cases {
            assertThrows(try readTar(tar + trailer, readSizes: readSizes),
                         equals: ArchiveError.trailingData("a non-zero byte at offset \(offset) follows the end-of-archive marker"))
        }
    }

    func testEndOfArchiveAcrossTheReadBufferBoundary() throws {
        // Slide the end-of-archive marker across the reader's 64 KiB read boundary, block by block.
        var generator = ByteGenerator(seed: 21)
        let data = generator.bytes(70_000)
        for entriesEnd in stride(from: 65_536 - 2048, through: 65_536 + 1024, by: 512) {
            var output = [UInt8]()
            let writer = try TarWriter { output.append(contentsOf: $0) }
            try writer.addFile(path: "f", contents: Array(data.prefix(entriesEnd - 512)), mode: 0o644, mtime: 0)
            try writer.finish()
            XCTAssertEqual(output.count, entriesEnd + 1024)
            for padding in [0, 100, 512] {
                let padded = output + [UInt8](repeating: 0, count: padding)
                XCTAssertEqual(try readTar(padded).first?.data.count, entriesEnd - 512)
                assertThrows(try readTar(padded + [0xFF]),
                             equals: ArchiveError.trailingData("a non-zero byte at offset \(padded.count) follows the end-of-archive marker"))
            }
        }
    }

    func testTruncatedArchivesAreRejected() throws {
        let tar = try smallTar()
        let missingMarker = ArchiveError.truncated("the tar stream ends without its end-of-archive marker")
        // Cut at an entry boundary (libarchive alone would report a clean end), or inside the marker.
        for length in [1536, 2560, 3072, 3583] {
            assertThrows(try readTar(Array(tar.prefix(length))), equals: missingMarker)
        }
        // A damaged second marker block is not a marker either.
        var damaged = tar
        damaged[damaged.count - 1] = 1
        assertThrows(try readTar(damaged), equals: missingMarker)
        // Too short to hold a single header.
        assertThrows(try readTar([]), equals: ArchiveError.truncated("the tar stream is only 0 bytes long"))
        assertThrows(try readTar(Array(tar.prefix(100))), equals: ArchiveError.truncated("the tar stream is only 100 bytes long"))
        // Cut inside a header or inside data: libarchive's own error.
        for length in [700, 1000, 1600, 2100] {
            XCTAssertThrowsError(try readTar(Array(tar.prefix(length)), readSizes: [333])) { error in
                guard case ArchiveError.libarchive = error else { return XCTFail("\(length): got \(error)") }
            }
        }
    }

    func testCorruptHeaderIsRejected() throws {
        var tar = try smallTar()
        tar[1536 + 10] ^= 0x01  // second header: its checksum no longer matches
        XCTAssertThrowsError(try readTar(tar)) { error in
            guard case ArchiveError.libarchive(function: "archive_read_next_header", _) = error else { return XCTFail("got \(error)") }
        }
    }

    private func tar(fileSize: Int, zerosAfter: Int) throws -> [UInt8] {
        var generator = ByteGenerator(seed: 22)
        var output = [UInt8]()
        let writer = try TarWriter { output.append(contentsOf: $0) }
        try writer.addFile(path: "f", contents: generator.bytes(fileSize), mode: 0o644, mtime: 0)
        try writer.finish()
        return output + [UInt8](repeating: 0, count: zerosAfter)
    }

    func testSourceErrorSurfacesUnchanged() throws {
        // The first marker block ends exactly at the 64 KiB read boundary, so libarchive's look-ahead for
        // the second block is the read that fails; libarchive itself ignores that failure.
        let boundary = try tar(fileSize: 65_536 - 1024, zerosAfter: 0)
        XCTAssertEqual(boundary.count, 65_536 + 512)
        let long = try tar(fileSize: 200_000, zerosAfter: 200_000)
        let cases: [(bytes: [UInt8], failAt: Int, readSizes: [Int])] = [
            (boundary, 0, [Int.max]),             // while opening
            (boundary, 30_000, [1000]),           // while opening, after some reads
            (boundary, 65_536, [Int.max]),        // in the end-of-archive look-ahead
            (long, 100_000, [4096]),              // inside the entry's data
            (long, long.count - 150_000, [Int.max]),  // while finish() drains
            (long, long.count, [Int.max]),        // instead of reporting the end of the stream
        ]
        for (bytes, failAt, readSizes) in cases {
            let source = ArraySource(bytes, readSizes: readSizes)
            source.failAt = failAt
            XCTAssertThrowsError(try {
                let reader = try TarReader(source: source.read)
                var buffer = [UInt8](repeating: 0, count: 4096)
                while try reader.nextEntry() != nil {
                    while try buffer.withUnsafeMutableBytes({ try reader.readData(into: $0) }) > 0 {}
                }
                try reader.finish()
            }()) { error in
                XCTAssertEqual(error as? InjectedFailure, InjectedFailure(tag: "source"), "fail at \(failAt)")
            }
        }
    }

    func testErrorsAreSticky() throws {
        let source = ArraySource(try tar(fileSize: 100_000, zerosAfter: 0), readSizes: [512])
        source.failAt = 70_000
        let reader = try TarReader(source: source.read)
        var buffer = [UInt8](repeating: 0, count: 1000)
        XCTAssertNotNil(try reader.nextEntry())
        assertThrows(try { while try buffer.withUnsafeMutableBytes({ try reader.readData(into: $0) }) > 0 {} }(),
                     equals: InjectedFailure(tag: "source"))
        assertThrows(try reader.nextEntry(), equals: InjectedFailure(tag: "source"))
    }

    /// Reads every entry's header and how it is stored.
    private func encodings(_ bytes: [UInt8], readSizes: [Int] = [Int.max]) throws -> [(TarEntryHeader, TarEntryEncoding)] {
        let reader = try TarReader(source: ArraySource(bytes, readSizes: readSizes).read)
        XCTAssertNil(reader.entryEncoding, "no encoding before the first entry")
        var out: [(TarEntryHeader, TarEntryEncoding)] = []
        while let header = try reader.nextEntry() {
            out.append((header, try XCTUnwrap(reader.entryEncoding, header.path)))
        }
        XCTAssertNil(reader.entryEncoding, "no encoding at the end of the archive")
        try reader.finish()
        return out
    }

    /// Sets the typeflag of the header block at `offset` and recomputes its checksum.
    private func retype(_ tar: inout [UInt8], headerAt offset: Int, to typeflag: UInt8) {
        tar[offset + 156] = typeflag
        for i in 148..<156 { tar[offset + i] = 0x20 }
        let sum = tar[offset..<(offset + 512)].reduce(0) { $0 + Int($1) }
        let digits = Array(String(sum, radix: 8).utf8)
        let field = [UInt8](repeating: UInt8(ascii: "0"), count: 6 - digits.count) + digits + [0, 0x20]
        tar.replaceSubrange((offset + 148)..<(offset + 156), with: field)
    }

    func testEntryEncodingReportsTheStoredHeaderBlocks() throws {
        let nfc = "\u{e9}.txt", nfd = "e\u{301}.txt", mark = "\u{301}mark.txt"
        let long = String(repeating: "l", count: 150)
        var output = [UInt8]()
        let writer = try TarWriter { output.append(contentsOf: $0) }
        try writer.addDirectory(path: "d", mode: 0o755, mtime: 1)
        try writer.addFile(path: "d/a", contents: [1], mode: 0o644, mtime: 2)
        try writer.addFile(path: long, contents: [2], mode: 0o644, mtime: 3)
        for name in [nfc, nfd, mark] { try writer.addFile(path: name, contents: Array(name.utf8), mode: 0o644, mtime: 4) }
        try writer.finish()
        for readSizes in [[Int.max], [100], [65_536 - 700]] {
            let read = try encodings(output, readSizes: readSizes)
            let zero = UInt8(ascii: "0"), x = UInt8(ascii: "x")
            XCTAssertEqual(read.map(\.1.typeflags), [[UInt8(ascii: "5")], [zero], [x, zero], [x, zero], [x, zero], [x, zero]])
            XCTAssertEqual(read.map(\.1.paxKeywords), [[], [], ["path"], ["path"], ["path"], ["path"]])
            XCTAssertTrue(read.allSatisfy { $0.1.isPOSIXUstar && !$0.1.isSparse })
            // Paths byte for byte: libarchive alone hands out the NFC spelling of a pax path.
            XCTAssertEqual(read.map { Array($0.0.path.utf8) }, ["d", "d/a", long, nfc, nfd, mark].map { Array($0.utf8) }, "\(readSizes)")
        }
        // Another tar's formats: GNU headers are not POSIX ustar.
        XCTAssertFalse(try encodings(try gnuTar(format: "gnu")).contains { $0.1.isPOSIXUstar })
        XCTAssertTrue(try encodings(try gnuTar(format: "posix")).allSatisfy { $0.1.isPOSIXUstar })
    }

    func testTypeflagsLibarchiveReadsAsRegularFilesAreReported() throws {
        // libarchive reads an old-style NUL, a contiguous-file '7' and an unknown 'Q' typeflag as a regular file.
        for typeflag in [UInt8(0), UInt8(ascii: "7"), UInt8(ascii: "Q")] {
            var tar = try smallTar()
            retype(&tar, headerAt: 1536, to: typeflag)
            let read = try encodings(tar)
            XCTAssertEqual(read.map(\.0.kind), [.file, .file])
            XCTAssertEqual(read.map(\.1.typeflag), [UInt8(ascii: "0"), typeflag])
        }
        XCTAssertEqual(TarEntryEncoding.describe(0), "0x00")
        XCTAssertEqual(TarEntryEncoding.describe(UInt8(ascii: "7")), "'7'")
    }

    func testPaxRecordsAreParsed() throws {
        let records = try TarHeaderBlocks.paxRecords(Array("12 path=a\u{301}\n11 size=99\n".utf8) + [0, 0])
        XCTAssertEqual(records.map { Array($0.key) }, [Array("path".utf8), Array("size".utf8)])
        XCTAssertEqual(records.map(\.value), [Array("a\u{301}".utf8), Array("99".utf8)])
        for bad in ["12 path=a\n", "x path=a\n", "5 p\n", "9 =value\n"] {
            XCTAssertThrowsError(try TarHeaderBlocks.paxRecords(Array(bad.utf8)), bad)
        }
        XCTAssertEqual(TarHeaderBlocks.number(ArraySlice(Array("0000017\0".utf8))), 15)
        XCTAssertEqual(TarHeaderBlocks.number(ArraySlice([0x80, 0, 0, 1, 0])), 256)
        XCTAssertNil(TarHeaderBlocks.number(ArraySlice(Array("12a".utf8))))
    }

    func testDataBlocksHoldTheSameBytesAsReadData() throws {
        var generator = ByteGenerator(seed: 23)
        var output = [UInt8]()
        let writer = try TarWriter { output.append(contentsOf: $0) }
        // Sizes around the 512-byte block and the reader's 64 KiB buffers, so blocks end at every kind of boundary.
        let sizes = [0, 1, 511, 512, 513, 65_535, 65_536, 65_537, 131_072 - 512, 200_000, 3]
        for (i, size) in sizes.enumerated() {
            try writer.addFile(path: "f\(i)", contents: generator.bytes(size), mode: 0o644, mtime: Int64(i))
        }
        try writer.finish()
        var tars = [output, try smallTar(), try tar(fileSize: 200_000, zerosAfter: 70_000)]
        for format in ["gnu", "posix", "ustar"] { tars.append(try gnuTar(format: format)) }
        for (t, bytes) in tars.enumerated() {
            let expected = try readTar(bytes)
            for readSizes in [[Int.max], [700], [1], [65_536, 17]] {
                XCTAssertEqual(try readTarBlocks(bytes, readSizes: readSizes), expected, "tar \(t), read sizes \(readSizes)")
            }
        }
        XCTAssertEqual(try readTarBlocks(output).map(\.data.count), sizes)
    }

    func testDataBlocksReportTruncationAndSourceErrors() throws {
        let tar = try smallTar()
        for length in [700, 1000, 1400] {  // inside a.txt's data
            XCTAssertThrowsError(try readTarBlocks(Array(tar.prefix(length)), readSizes: [333])) { error in
                guard case ArchiveError.libarchive = error else { return XCTFail("\(length): got \(error)") }
            }
        }
        let long = try self.tar(fileSize: 200_000, zerosAfter: 0)
        for failAt in [70_000, 131_072, 150_000] {  // inside the entry's data, at and off a read boundary
            let source = ArraySource(long, readSizes: [4096])
            source.failAt = failAt
            let reader = try TarReader(source: source.read)
            XCTAssertNotNil(try reader.nextEntry())
            var received = 0
            assertThrows(try { while true { let n = try reader.readDataBlock().count; if n == 0 { break }; received += n } }(),
                         equals: InjectedFailure(tag: "source"))
            XCTAssertLessThan(received, 200_000, "fail at \(failAt)")
            // Sticky, for both ways of reading.
            assertThrows(try reader.readDataBlock(), equals: InjectedFailure(tag: "source"))
            var buffer = [UInt8](repeating: 0, count: 100)
            assertThrows(try buffer.withUnsafeMutableBytes { try reader.readData(into: $0) }, equals: InjectedFailure(tag: "source"))
            assertThrows(try reader.nextEntry(), equals: InjectedFailure(tag: "source"))
        }
    }

    func testUnreadDataIsSkipped() throws {
        let reader = try TarReader(source: ArraySource(try smallTar(), readSizes: [300]).read)
        XCTAssertEqual(try reader.nextEntry()?.path, "a.txt")
        XCTAssertEqual(try reader.nextEntry()?.path, "b.txt")
        XCTAssertNil(try reader.nextEntry())
        XCTAssertNil(try reader.nextEntry())
        try reader.finish()
        try reader.finish()
        // The same with part of an entry taken as a block: the rest of it is skipped.
        let partly = try TarReader(source: ArraySource(try tar(fileSize: 200_000, zerosAfter: 0), readSizes: [300]).read)
        XCTAssertEqual(try partly.nextEntry()?.path, "f")
        XCTAssertFalse(try partly.readDataBlock().isEmpty)
        XCTAssertNil(try partly.nextEntry())
        try partly.finish()
    }
}
