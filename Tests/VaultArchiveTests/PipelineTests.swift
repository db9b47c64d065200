import XCTest
@testable import VaultArchive

/// tar → zstd → bytes → zstd → tar, pulled end to end on one thread without holding the data.
final class PipelineTests: XCTestCase {
    /// File contents are 64 KiB blocks, each derived from (file seed, block index), so the reading side
    /// can regenerate and compare any range without either side keeping the file.
    private static let blockSize = 65_536

    private struct FileSpec {
        var path: String
        var size: Int
        var seed: UInt64
        var compressible: Bool
    }

    private static func fillBlock(_ buffer: UnsafeMutableRawBufferPointer, file: FileSpec, index: Int) {
        var generator = ByteGenerator(seed: file.seed &* 1_000_003 &+ UInt64(index))
        if file.compressible {
            // A 4 KiB random pattern repeated: zstd finds the repeats.
            let pattern = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<4096])
            generator.fill(pattern)
            for offset in stride(from: 4096, to: buffer.count, by: 4096) {
                UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<(offset + 4096)]).copyMemory(from: UnsafeRawBufferPointer(pattern))
            }
        } else {
            generator.fill(buffer)
        }
    }

    /// A FIFO of compressed bytes between the two ends; records its high-water mark.
    private final class Pipe {
        private var storage = [UInt8]()
        private var head = 0
        private(set) var highWaterMark = 0
        var isEmpty: Bool { head == storage.count }

        func append(_ bytes: UnsafeRawBufferPointer) {
            if head == storage.count {
                storage.removeAll(keepingCapacity: true)
                head = 0
            }
            storage.append(contentsOf: bytes)
            highWaterMark = max(highWaterMark, storage.count - head)
        }

        func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
            let count = min(buffer.count, storage.count - head)
            storage.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[head..<(head + count)])) }
            head += count
            return count
        }
    }

    /// Writes the files through TarWriter and ZstdCompressor, one block per step.
    private final class Producer {
        let files: [FileSpec]
        let pipe: Pipe
        let compressor: ZstdCompressor
        let writer: TarWriter
        private var fileIndex = 0
        private var written = 0
        private var inFile = false
        private(set) var isDone = false
        private var block = [UInt8](repeating: 0, count: PipelineTests.blockSize)

        init(files: [FileSpec], pipe: Pipe) throws {
            self.files = files
            self.pipe = pipe
            let compressor = try ZstdCompressor(level: 3) { pipe.append($0) }
            self.compressor = compressor
            writer = try TarWriter { try compressor.write($0) }
        }

        func step() throws {
            guard fileIndex < files.count else {
                try writer.finish()
                try compressor.finish()
                isDone = true
                return
            }
            let file = files[fileIndex]
            if !inFile {
                try writer.beginFile(path: file.path, size: Int64(file.size), mode: 0o600, mtime: 1_700_000_000)
                inFile = true
            }
            if written < file.size {
                let count = min(PipelineTests.blockSize, file.size - written)
                try block.withUnsafeMutableBytes { block in
                    PipelineTests.fillBlock(block, file: file, index: written / PipelineTests.blockSize)
                    try writer.writeData(UnsafeRawBufferPointer(rebasing: block[0..<count]))
                }
                written += count
            } else {
                try writer.endFile()
                inFile = false
                written = 0
                fileIndex += 1
            }
        }
    }

    /// Compares the data read for one file against its regenerated blocks.
    private struct Verifier {
        let file: FileSpec
        private var offset = 0
        private var expected = [UInt8](repeating: 0, count: PipelineTests.blockSize)
        private var expectedIndex = -1

        init(file: FileSpec) { self.file = file }

        /// Returns false at the first differing byte.
        mutating func check(_ bytes: UnsafeRawBufferPointer) -> Bool {
            var consumed = 0
            while consumed < bytes.count {
                let index = offset / PipelineTests.blockSize
                if index != expectedIndex {
                    let file = self.file
                    expected.withUnsafeMutableBytes { PipelineTests.fillBlock($0, file: file, index: index) }
                    expectedIndex = index
                }
                let start = offset % PipelineTests.blockSize
                let count = min(bytes.count - consumed, PipelineTests.blockSize - start)
                let same = expected.withUnsafeBytes { expected in
                    UnsafeRawBufferPointer(rebasing: expected[start..<(start + count)])
                        .elementsEqual(UnsafeRawBufferPointer(rebasing: bytes[consumed..<(consumed + count)]))
                }
                guard same else { return false }
                offset += count
                consumed += count
            }
            return true
        }

        var bytesChecked: Int { offset }
    }

    private func runPipeline(_ files: [FileSpec], readBufferSize: Int) throws -> (compressed: Int, highWaterMark: Int) {
        let pipe = Pipe()
        let producer = try Producer(files: files, pipe: pipe)
        var compressedBytes = 0
        let decompressor = try ZstdDecompressor { buffer in
            while pipe.isEmpty && !producer.isDone { try producer.step() }
            let count = pipe.read(into: buffer)
            compressedBytes += count
            return count
        }
        let reader = try TarReader(source: decompressor.read)
        var buffer = [UInt8](repeating: 0, count: readBufferSize)
        var index = 0
        while let header = try reader.nextEntry() {
            XCTAssertLessThan(index, files.count)
            guard index < files.count else { break }
            let file = files[index]
            XCTAssertEqual(header, TarEntryHeader(path: file.path, kind: .file, size: Int64(file.size), mode: 0o600, mtime: 1_700_000_000))
            var verifier = Verifier(file: file)
            while true {
                let count = try buffer.withUnsafeMutableBytes { try reader.readData(into: $0) }
                if count == 0 { break }
                let matches = buffer.withUnsafeBytes { verifier.check(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
                XCTAssertTrue(matches, "\(file.path) differs near offset \(verifier.bytesChecked)")
                guard matches else { break }
            }
            XCTAssertEqual(verifier.bytesChecked, file.size, file.path)
            index += 1
        }
        try reader.finish()
        XCTAssertEqual(index, files.count)
        XCTAssertTrue(producer.isDone)
        return (compressedBytes, pipe.highWaterMark)
    }

    func testSmallFilesPassThrough() throws {
        let files = [
            FileSpec(path: "empty", size: 0, seed: 1, compressible: false),
            FileSpec(path: "odd/size.bin", size: 70_001, seed: 2, compressible: false),
            FileSpec(path: "repeats/é.txt", size: 300_000, seed: 3, compressible: true),
        ]
        let result = try runPipeline(files, readBufferSize: 1_000)
        XCTAssertGreaterThan(result.compressed, 0)
    }

    func testTwoHundredMebibytesStreamInBoundedMemory() throws {
        let mebibyte = 1 << 20
        let files = [
            FileSpec(path: "random-a.bin", size: 80 * mebibyte, seed: 10, compressible: false),
            FileSpec(path: "repeats.bin", size: 70 * mebibyte + 123, seed: 11, compressible: true),
            FileSpec(path: "random-b.bin", size: 50 * mebibyte - 123, seed: 12, compressible: false),
        ]
        XCTAssertEqual(files.map(\.size).reduce(0, +), 200 * mebibyte)
        let result = try runPipeline(files, readBufferSize: 256 * 1024)
        // Compressed bytes never piled up between the ends: one block's worth at a time.
        XCTAssertLessThan(result.highWaterMark, 1 * mebibyte)
        XCTAssertLessThan(result.compressed, 140 * mebibyte)
    }
}
