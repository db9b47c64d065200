import Foundation
import XCTest
@testable import VaultArchive

final class ZlibInflateTests: XCTestCase {
    /// zlib.compress(b"hello") from CPython's zlib module.
    private static let hello: [UInt8] = [0x78, 0x9C, 0xCB, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00, 0x06, 0x2C, 0x02, 0x15]

    func testKnownVector() throws {
        XCTAssertEqual(try zlibInflate(Self.hello), Array("hello".utf8))
    }

    func testVectorFromPython() throws {
        // 2.5 MB of output: several output chunks.
        let result = try runTool("/usr/bin/python3", ["-c", """
            import sys, zlib
            data = bytes((i * 7 + i // 251) % 256 for i in range(2_500_000))
            sys.stdout.buffer.write(zlib.compress(data, 9))
            """])
        XCTAssertEqual(result.status, 0)
        let expected: [UInt8] = (0..<2_500_000).map { (i: Int) -> UInt8 in UInt8((i * 7 + i / 251) % 256) }
        XCTAssertEqual(try zlibInflate([UInt8](result.output)), expected)
    }

    func testTruncatedInputIsRejected() {
        for length in 0..<Self.hello.count {
            assertThrows(try zlibInflate(Array(Self.hello.prefix(length))),
                         equals: ArchiveError.truncated("the zlib stream ended before its checksum"))
        }
    }

    func testTrailingBytesAreRejected() {
        assertThrows(try zlibInflate(Self.hello + [0]), equals: ArchiveError.trailingData("found 1 more byte after the zlib stream"))
    }

    func testCorruptInputIsRejected() {
        var badChecksum = Self.hello
        badChecksum[badChecksum.count - 1] ^= 1
        assertThrows(try zlibInflate(badChecksum), equals: ArchiveError.zlib(function: "inflate", message: "incorrect data check"))
        var badHeader = Self.hello
        badHeader[1] ^= 1
        assertThrows(try zlibInflate(badHeader), equals: ArchiveError.zlib(function: "inflate", message: "incorrect header check"))
    }
}
