import XCTest
import VaultCrypto
@testable import ShredVault

/// G6: any modification, truncation, reordering or extension is detected and nothing reaches the target.
final class BundleTamperTests: XCTestCase {
    private func sealSmall(_ dir: String, size: Int) throws -> [UInt8] {
        try writeFile(dir + "/src/data.bin", pseudoRandomBytes(size, seed: 42))
        _ = try BundleWriter.seal(source: dir + "/src", header: testHeader(), dataKey: testKey, to: dir + "/good.svb")
        return try readBytes(dir + "/good.svb")
    }

    private func assertRejected(_ bytes: [UInt8], _ dir: String, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let path = dir + "/bad.svb"
        try? FileManager.default.removeItem(atPath: path)
        XCTAssertNoThrow(try writeBytes(bytes, to: path))
        XCTAssertThrowsError(try BundleReader.extract(path: path, dataKey: testKey, to: dir + "/out"), what, file: file, line: line) { e in
            XCTAssertTrue(e is VaultError, "\(what): \(e) is not a VaultError", file: file, line: line)
        }
        XCTAssertFalse(Posix.exists(dir + "/out"), "\(what): target created", file: file, line: line)
        XCTAssertEqual((try? Posix.listDirectory(dir))?.filter { $0.contains("partial") }, [], "\(what): temporary left", file: file, line: line)
    }

    func testEverySingleBitFlipIsRejected() throws {
        let dir = try makeTemporaryDirectory(self)
        let good = try sealSmall(dir, size: 3000)
        for i in 0..<good.count {
            var b = good
            b[i] ^= 0x01 << UInt8(i % 8)
            assertRejected(b, dir, "flip at \(i)")
        }
    }

    func testEveryTruncationAndExtensionIsRejected() throws {
        let dir = try makeTemporaryDirectory(self)
        let good = try sealSmall(dir, size: 3000)
        for n in 0..<good.count { assertRejected(Array(good[0..<n]), dir, "truncated to \(n)") }
        assertRejected(good + [0], dir, "one zero byte appended")
        assertRejected(good + good[good.count - 40..<good.count], dir, "tail repeated")
        assertRejected(good + good, dir, "bundle doubled")
    }

    func testMultiChunkTruncationReorderingAndSwapsAreRejected() throws {
        let dir = try makeTemporaryDirectory(self)
        // Incompressible data so the payload spans several 16 KiB chunks.
        let good = try sealSmall(dir, size: 5 * 16_384)
        let start = testHeader().length + Cobblestone256.headerSize
        let unit = Cobblestone256.chunkSize + Cobblestone256.tagSize
        let chunks = (good.count - start + unit - 1) / unit
        XCTAssertGreaterThanOrEqual(chunks, 5)
        for k in 1..<chunks {
            assertRejected(Array(good[0..<(start + k * unit)]), dir, "cut at chunk boundary \(k)")
            assertRejected(Array(good[0..<(start + k * unit - 7)]), dir, "cut inside chunk \(k - 1)")
        }
        var swapped = good
        swapped.replaceSubrange(start..<(start + unit), with: good[(start + unit)..<(start + 2 * unit)])
        swapped.replaceSubrange((start + unit)..<(start + 2 * unit), with: good[start..<(start + unit)])
        assertRejected(swapped, dir, "chunks 0 and 1 swapped")
        var dropped = good
        dropped.removeSubrange((start + unit)..<(start + 2 * unit))
        assertRejected(dropped, dir, "chunk 1 removed")
        var duplicated = good
        duplicated.insert(contentsOf: good[(start + unit)..<(start + 2 * unit)], at: start + unit)
        assertRejected(duplicated, dir, "chunk 1 duplicated")
    }

    func testHeaderFromAnotherBundleIsRejected() throws {
        let dir = try makeTemporaryDirectory(self)
        let good = try sealSmall(dir, size: 100)
        // Same key, same layout, but another user id / bundle id / expiry / vault id in the header.
        for other in [testHeader(user: "u0000002"), testHeader(bundleId: Array(repeating: 1, count: 16))] {
            var b = good
            b.replaceSubrange(0..<other.length, with: other.encoded())
            assertRejected(b, dir, "header of \(other.userId)")
        }
    }
}
