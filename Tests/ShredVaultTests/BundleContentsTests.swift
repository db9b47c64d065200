import XCTest
import VaultCrypto
@testable import ShredVault

/// Hostile archive contents, validly encrypted with the right key: the reader must refuse each one.
final class BundleContentsTests: XCTestCase {
    private func assertContentsRejected(_ tar: [UInt8], contains expected: String, frames: Int = 1, trailing: [UInt8] = [],
                                        file: StaticString = #filePath, line: UInt = #line) throws {
        let dir = try makeTemporaryDirectory(self)
        try writeBytes(try craftBundle(header: testHeader(), tar: tar, zstdFrames: frames, trailingPlaintext: trailing), to: dir + "/b.svb")
        XCTAssertThrowsError(try BundleReader.extract(path: dir + "/b.svb", dataKey: testKey, to: dir + "/out"), file: file, line: line) { e in
            XCTAssertTrue("\(e)".contains(expected), "\(e) does not mention '\(expected)'", file: file, line: line)
        }
        XCTAssertEqual(try Posix.listDirectory(dir), ["b.svb"], file: file, line: line)
    }

    private func tar(_ build: (inout UstarBuilder) throws -> Void) rethrows -> [UInt8] {
        var b = UstarBuilder()
        try build(&b)
        return b.finished()
    }

    func testCraftedValidBundleOpens() throws {
        let dir = try makeTemporaryDirectory(self)
        let t = try tar { b in
            b.add(name: "files/a.txt", contents: Array("hi".utf8))
            try b.addManifest(testHeader(), [try fileEntry("a.txt", Array("hi".utf8))])
        }
        try writeBytes(try craftBundle(header: testHeader(), tar: t), to: dir + "/b.svb")
        try BundleReader.extract(path: dir + "/b.svb", dataKey: testKey, to: dir + "/out")
        XCTAssertEqual(try readBytes(dir + "/out/a.txt"), Array("hi".utf8))
    }

    func testUnsafePathsAndEntryTypes() throws {
        let h = testHeader()
        try assertContentsRejected(tar { b in b.add(name: "/etc/passwd"); try b.addManifest(h, []) }, contains: "outside files/")
        try assertContentsRejected(tar { b in b.add(name: "files/../../escape"); try b.addManifest(h, []) }, contains: "'..'")
        try assertContentsRejected(tar { b in b.add(name: "files//x"); try b.addManifest(h, []) }, contains: "absolute path")
        try assertContentsRejected(tar { b in b.add(name: "files/link", type: UInt8(ascii: "2"), linkName: "/etc/passwd"); try b.addManifest(h, []) }, contains: "symbolic link")
        try assertContentsRejected(tar { b in
            b.add(name: "files/a", contents: [1]); b.add(name: "files/b", type: UInt8(ascii: "1"), linkName: "files/a"); try b.addManifest(h, [])
        }, contains: "hard link")
        try assertContentsRejected(tar { b in b.add(name: "files/dev", type: UInt8(ascii: "3")); try b.addManifest(h, []) }, contains: "device")
        try assertContentsRejected(tar { b in b.add(name: "files/fifo", type: UInt8(ascii: "6")); try b.addManifest(h, []) }, contains: "device, FIFO")
    }

    func testManifestMismatches() throws {
        let h = testHeader()
        let a = Array("alpha".utf8)
        try assertContentsRejected(tar { b in b.add(name: "files/a", contents: a) }, contains: "no manifest")
        try assertContentsRejected(tar { b in b.add(name: "files/a", contents: a); try b.addManifest(h, []) }, contains: "not listed")
        try assertContentsRejected(tar { b in try b.addManifest(h, [try fileEntry("a", a)]) }, contains: "lacks")
        try assertContentsRejected(tar { b in
            b.add(name: "files/a", contents: a); try b.addManifest(h, [try fileEntry("a", Array("alphA".utf8))])
        }, contains: "differs from the manifest")
        try assertContentsRejected(tar { b in
            b.add(name: "files/a", contents: a); b.add(name: "files/a", contents: a); try b.addManifest(h, [try fileEntry("a", a), try fileEntry("a", a)])
        }, contains: "duplicate")
        try assertContentsRejected(tar { b in
            b.add(name: "files/d/a", contents: a); try b.addManifest(h, [try fileEntry("d/a", a)])
        }, contains: "before its directory")
        try assertContentsRejected(tar { b in
            try b.addManifest(h, []); b.add(name: "files/late", contents: a)
        }, contains: "follows the manifest")
        try assertContentsRejected(tar { b in
            try b.addManifest(testHeader(user: "u0000002"), [])
        }, contains: "not this bundle")
        try assertContentsRejected(tar { b in b.add(name: "manifest.json", contents: Array("{".utf8)) }, contains: "not valid JSON")
    }

    func testTrailingPlaintextAndSecondFrameAreRejected() throws {
        let h = testHeader()
        let t = try tar { b in try b.addManifest(h, []) }
        try assertContentsRejected(t, contains: "follow", trailing: [1, 2, 3])
        try assertContentsRejected(t, contains: "follow", frames: 2)
        try assertContentsRejected(t + [9], contains: "follow")
    }
}
