import Foundation
import XCTest
@testable import VaultArchive

/// An error thrown by test sinks and sources; tests check it comes back unchanged.
struct InjectedFailure: Error, Equatable {
    let tag: String
}

/// Deterministic pseudo-random bytes (xorshift64*), fast enough for hundreds of MiB in debug builds.
struct ByteGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed | 1 }

    mutating func nextWord() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 2_685_821_657_736_338_717
    }

    /// Fills `buffer` with random bytes.
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        var offset = 0
        while offset + 8 <= buffer.count {
            buffer.storeBytes(of: nextWord(), toByteOffset: offset, as: UInt64.self)
            offset += 8
        }
        if offset < buffer.count {
            var word = nextWord()
            while offset < buffer.count {
                buffer[offset] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                offset += 1
            }
        }
    }

    mutating func bytes(_ count: Int) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        result.withUnsafeMutableBytes { fill($0) }
        return result
    }
}

/// Text-like bytes that compress well.
func compressibleBytes(_ count: Int) -> [UInt8] {
    let words = Array("the vault keeps every record until its retention ends; ".utf8)
    var result = [UInt8]()
    result.reserveCapacity(count)
    var line = 0
    while result.count < count {
        result.append(contentsOf: words)
        result.append(contentsOf: Array(String(line).utf8))
        result.append(0x0A)
        line += 1
    }
    return Array(result.prefix(count))
}

/// A source over an in-memory array that returns reads of the given sizes in turn (cycling), then 0.
final class ArraySource {
    let bytes: [UInt8]
    private let readSizes: [Int]
    private var position = 0
    private var call = 0
    /// Thrown instead of returning data once `position` reaches this offset.
    var failAt: Int?

    init(_ bytes: [UInt8], readSizes: [Int] = [Int.max]) {
        self.bytes = bytes
        self.readSizes = readSizes
    }

    var isExhausted: Bool { position == bytes.count }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        if let failAt, position >= failAt { throw InjectedFailure(tag: "source") }
        let limit = failAt.map { $0 - position } ?? Int.max
        let count = min(buffer.count, bytes.count - position, readSizes[call % readSizes.count], limit)
        call += 1
        bytes.withUnsafeBytes { source in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[position..<(position + count)]))
        }
        position += count
        return count
    }
}

func zstdCompress(_ bytes: [UInt8], level: Int32 = 3, writeSize: Int = 100_000) throws -> [UInt8] {
    var output = [UInt8]()
    let compressor = try ZstdCompressor(level: level) { output.append(contentsOf: $0) }
    try bytes.withUnsafeBytes { all in
        var offset = 0
        while offset < all.count {
            let end = min(all.count, offset + writeSize)
            try compressor.write(UnsafeRawBufferPointer(rebasing: all[offset..<end]))
            offset = end
        }
    }
    try compressor.finish()
    return output
}

/// Decompresses with the given caller buffer size and source read sizes, reading until 0.
func zstdDecompress(_ frame: [UInt8], bufferSize: Int = 65536, readSizes: [Int] = [Int.max]) throws -> [UInt8] {
    let source = ArraySource(frame, readSizes: readSizes)
    let decompressor = try ZstdDecompressor(source: source.read)
    var output = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: bufferSize)
    while true {
        let count = try buffer.withUnsafeMutableBytes { try decompressor.read(into: $0) }
        if count == 0 { return output }
        output.append(contentsOf: buffer[0..<count])
    }
}

/// One entry as read back: header plus data.
struct ReadEntry: Equatable {
    var header: TarEntryHeader
    var data: [UInt8]
}

/// Reads a whole tar (headers and data) with the given read sizes, then calls `finish()`.
func readTar(_ bytes: [UInt8], readSizes: [Int] = [Int.max], bufferSize: Int = 8191) throws -> [ReadEntry] {
    let source = ArraySource(bytes, readSizes: readSizes)
    let reader = try TarReader(source: source.read)
    var entries = [ReadEntry]()
    var buffer = [UInt8](repeating: 0, count: bufferSize)
    while let header = try reader.nextEntry() {
        var data = [UInt8]()
        while true {
            let count = try buffer.withUnsafeMutableBytes { try reader.readData(into: $0) }
            if count == 0 { break }
            data.append(contentsOf: buffer[0..<count])
        }
        entries.append(ReadEntry(header: header, data: data))
    }
    try reader.finish()
    return entries
}

/// Like `readTar`, but takes each entry's data in place with `readDataBlock()`; every block must be non-empty.
func readTarBlocks(_ bytes: [UInt8], readSizes: [Int] = [Int.max]) throws -> [ReadEntry] {
    let reader = try TarReader(source: ArraySource(bytes, readSizes: readSizes).read)
    var entries = [ReadEntry]()
    while let header = try reader.nextEntry() {
        var data = [UInt8]()
        while true {
            let block = try reader.readDataBlock()
            if block.isEmpty { break }
            data.append(contentsOf: block)
        }
        // At the end of the entry's data it stays at the end.
        XCTAssertTrue(try reader.readDataBlock().isEmpty)
        entries.append(ReadEntry(header: header, data: data))
    }
    XCTAssertTrue(try reader.readDataBlock().isEmpty, "no block without a current entry")
    try reader.finish()
    return entries
}

/// Asserts that `body` throws exactly `expected`.
func assertThrows<E: Error & Equatable>(
    _ body: @autoclosure () throws -> some Any, equals expected: E,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertThrowsError(try body(), file: file, line: line) { error in
        XCTAssertEqual(error as? E, expected, "got \(error)", file: file, line: line)
    }
}

/// Runs a tool with arguments; returns its exit status and standard output.
@discardableResult
func runTool(_ tool: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, output: Data) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, output)
}

/// A fresh temporary directory, removed when the test ends.
func makeTemporaryDirectory(_ testCase: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("vaultarchive-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    testCase.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}
