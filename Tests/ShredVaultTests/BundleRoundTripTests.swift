import XCTest
import VaultCrypto
@testable import ShredVault

final class BundleRoundTripTests: XCTestCase {
    /// A source tree with the edge cases a bundle must carry byte-identically.
    func makeSource(in dir: String) throws -> String {
        let src = dir + "/src"
        try writeFile(src + "/profile.json", Array("{\"name\":\"Ada\"}".utf8), mode: 0o600, mtime: 1_600_000_000)
        try writeFile(src + "/empty.txt", [])
        try writeFile(src + "/exactly-16k.bin", pseudoRandomBytes(16_384, seed: 1))
        try writeFile(src + "/exactly-32k.bin", pseudoRandomBytes(32_768, seed: 2))
        try writeFile(src + "/usage/events.jsonl", pseudoRandomBytes(300_000, seed: 3, text: true), mtime: 1_650_000_000)
        try writeFile(src + "/attachments/random.bin", pseudoRandomBytes(200_001, seed: 4))
        try writeFile(src + "/messages/données-日本語 ✓.txt", Array("bonjour\n".utf8), mode: 0o444)
        let longDir = (0..<6).map { "nested-directory-level-\($0)-" + String(repeating: "x", count: 30) }.joined(separator: "/")
        try writeFile(src + "/" + longDir + "/long-file-name.txt", Array("deep\n".utf8))
        try FileManager.default.createDirectory(atPath: src + "/empty-dir", withIntermediateDirectories: true)
        try Posix.setPermissions(src + "/empty-dir", 0o750)
        try Posix.setModificationTime(src + "/empty-dir", 1_500_000_000)
        return src
    }

    func testRoundTripIsByteIdenticalWithModesAndTimes() throws {
        let dir = try makeTemporaryDirectory(self)
        let src = try makeSource(in: dir)
        let sealed = try BundleWriter.seal(source: src, header: testHeader(), dataKey: testKey, to: dir + "/b.svb")
        XCTAssertEqual(sealed.fileSize, UInt64(try readBytes(dir + "/b.svb").count))
        XCTAssertEqual(sealed.fileSHA256, try SHA256.hash(try readBytes(dir + "/b.svb")))
        let (header, manifest) = try BundleReader.extract(path: dir + "/b.svb", dataKey: testKey, to: dir + "/out")
        XCTAssertEqual(header, testHeader())
        XCTAssertEqual(manifest, sealed.manifest)
        XCTAssertEqual(try TreeSnapshot(dir + "/out"), try TreeSnapshot(src))
        XCTAssertEqual(try Posix.status(dir + "/out")!.mode, 0o700)
        XCTAssertEqual(manifest.fileCount, 8)
        XCTAssertEqual(try BundleReader.verify(path: dir + "/b.svb", dataKey: testKey).manifest, manifest)
    }

    /// File names are bytes (vault-format.md §2.4): canonically equivalent spellings are different files, and a name
    /// may start with a combining mark. Each is sealed and restored byte for byte.
    func testNamesAreSealedAndRestoredByteForByte() throws {
        let dir = try makeTemporaryDirectory(self)
        let src = dir + "/src"
        let names = ["\u{e9}.txt", "e\u{301}.txt", "\u{301}starts-with-a-combining-mark.txt", "K.txt", "\u{212A}.txt",
                     "\u{301}dir/e\u{301}\u{301}.txt", "Å/A\u{30A}.txt"]
        for (i, name) in names.enumerated() { try writeFile(src + "/" + name, Array("file \(i)\n".utf8)) }
        let sourceNames = try TreeSnapshot(src).paths
        XCTAssertEqual(sourceNames.count, names.count + 2, "the file system keeps every spelling apart")
        let sealed = try BundleWriter.seal(source: src, header: testHeader(), dataKey: testKey, to: dir + "/b.svb")
        for target in [dir + "/out", dir + "/again"] {
            let (_, manifest) = try BundleReader.extract(path: dir + "/b.svb", dataKey: testKey, to: target)
            XCTAssertEqual(manifest, sealed.manifest)
            XCTAssertEqual(manifest.entries.map { Array($0.path.utf8) }, sourceNames)
            XCTAssertEqual(try TreeSnapshot(target).paths, sourceNames, "restored names are the sealed bytes")
            for (i, name) in names.enumerated() {
                XCTAssertEqual(try readBytes(target + "/" + name), Array("file \(i)\n".utf8), "\(Array(name.unicodeScalars))")
            }
        }
        XCTAssertEqual(try BundleReader.verify(path: dir + "/b.svb", dataKey: testKey).manifest, sealed.manifest)
    }

    func testManifestEqualityIsByteEquality() throws {
        let nfc = try fileEntry("\u{e9}", [1]), nfd = try fileEntry("e\u{301}", [1])
        XCTAssertEqual(nfc.path, nfd.path, "Swift String equality: canonical equivalence")
        XCTAssertNotEqual(nfc, nfd)
        XCTAssertNotEqual(Manifest(bundleId: "ab", userId: "uK", entries: []), Manifest(bundleId: "ab", userId: "u\u{212A}", entries: []))
        XCTAssertEqual(Manifest(bundleId: "ab", userId: "uK", entries: [nfc]), Manifest(bundleId: "ab", userId: "uK", entries: [nfc]))
    }

    func testBigTreeIsCompressedByWorkerThreadsAndRoundTrips() throws {
        let dir = try makeTemporaryDirectory(self)
        let src = try makeSource(in: dir)
        try writeFile(src + "/big/a.bin", pseudoRandomBytes(1_500_000, seed: 7, text: true))
        try writeFile(src + "/big/b.bin", pseudoRandomBytes(1_200_000, seed: 8, text: true))
        let salt = [UInt8](repeating: 0x42, count: 24)
        // Same key, header and salt: only the compression differs.
        let single = try BundleWriter.seal(source: src, header: testHeader(), dataKey: testKey, to: dir + "/single.svb",
                                           salt: salt, syncDirectory: true, deferSync: false, parallelThreshold: .max)
        let parallel = try BundleWriter.seal(source: src, header: testHeader(), dataKey: testKey, to: dir + "/parallel.svb",
                                             salt: salt, syncDirectory: true, deferSync: false, parallelThreshold: 1 << 20)
        XCTAssertNotEqual(try readBytes(dir + "/single.svb"), try readBytes(dir + "/parallel.svb"))
        XCTAssertEqual(parallel.manifest, single.manifest)
        let (_, manifest) = try BundleReader.extract(path: dir + "/parallel.svb", dataKey: testKey, to: dir + "/out")
        XCTAssertEqual(manifest, parallel.manifest)
        XCTAssertEqual(try TreeSnapshot(dir + "/out"), try TreeSnapshot(src))
        XCTAssertEqual(try BundleReader.verify(path: dir + "/parallel.svb", dataKey: testKey).manifest, manifest)
    }

    func testEmptyDirectoryGivesAnEmptyBundle() throws {
        let dir = try makeTemporaryDirectory(self)
        try FileManager.default.createDirectory(atPath: dir + "/src", withIntermediateDirectories: false)
        let sealed = try BundleWriter.seal(source: dir + "/src", header: testHeader(), dataKey: testKey, to: dir + "/b.svb")
        XCTAssertEqual(sealed.manifest.entries, [])
        try BundleReader.extract(path: dir + "/b.svb", dataKey: testKey, to: dir + "/out")
        XCTAssertEqual(try Posix.listDirectory(dir + "/out"), [])
    }

    func testBundleIsAStandardCobblestoneMessageOverZstdOverTar() throws {
        let dir = try makeTemporaryDirectory(self)
        let src = try makeSource(in: dir)
        _ = try BundleWriter.seal(source: src, header: testHeader(), dataKey: testKey, to: dir + "/b.svb")
        let bytes = try readBytes(dir + "/b.svb")
        let headerLength = testHeader().length
        // Decrypt the bytes after the header with the generic Cobblestone decryptor, context = header bytes.
        var offset = headerLength
        let d = try CobblestoneDecryptor(inputKey: testKey, context: Array(bytes[0..<headerLength])) { buf in
            let n = min(buf.count, bytes.count - offset)
            buf.copyBytes(from: bytes[offset..<(offset + n)])
            offset += n
            return n
        }
        var plain = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = try chunk.withUnsafeMutableBytes { try d.read(into: $0) }
            if n == 0 { break }
            plain += chunk[0..<n]
        }
        XCTAssertEqual(Array(plain[0..<4]), [0x28, 0xb5, 0x2f, 0xfd], "plaintext is a zstd frame")
        // The system zstd and tar read it.
        try writeBytes(plain, to: dir + "/payload.tar.zst")
        let listing = try runProcess("/bin/sh", ["-c", "zstd -dc '\(dir)/payload.tar.zst' | tar -tf -"])
        XCTAssertTrue(listing.contains("files/usage/events.jsonl"), listing)
        XCTAssertTrue(listing.contains("files/messages/données-日本語 ✓.txt"), listing)
        XCTAssertTrue(listing.hasSuffix("manifest.json\n"), listing)
    }

    func testSealRefusesLinksAndSpecialFilesAndLeavesNothing() throws {
        let dir = try makeTemporaryDirectory(self)
        try writeFile(dir + "/src/a.txt", [1])
        try FileManager.default.createSymbolicLink(atPath: dir + "/src/link", withDestinationPath: "/etc/passwd")
        XCTAssertThrowsError(try BundleWriter.seal(source: dir + "/src", header: testHeader(), dataKey: testKey, to: dir + "/b.svb")) {
            guard case VaultError.invalidSource(_, let reason) = $0 else { return XCTFail("\($0)") }
            XCTAssertTrue(reason.contains("symbolic link"))
        }
        XCTAssertEqual(try Posix.listDirectory(dir), ["src"], "no temporary or partial bundle left behind")
        try FileManager.default.removeItem(atPath: dir + "/src/link")
        XCTAssertEqual(mkfifo(dir + "/src/fifo", 0o600), 0)
        XCTAssertThrowsError(try BundleWriter.seal(source: dir + "/src", header: testHeader(), dataKey: testKey, to: dir + "/b.svb"))
        XCTAssertEqual(try Posix.listDirectory(dir), ["src"])
    }

    func testSealRefusesExistingOutputAndOpenRefusesExistingTarget() throws {
        let dir = try makeTemporaryDirectory(self)
        try writeFile(dir + "/src/a.txt", [1])
        try writeFile(dir + "/b.svb", [9])
        XCTAssertThrowsError(try BundleWriter.seal(source: dir + "/src", header: testHeader(), dataKey: testKey, to: dir + "/b.svb")) {
            XCTAssertEqual($0 as? VaultError, .targetExists(path: dir + "/b.svb"))
        }
        XCTAssertEqual(try readBytes(dir + "/b.svb"), [9])
        try FileManager.default.removeItem(atPath: dir + "/b.svb")
        _ = try BundleWriter.seal(source: dir + "/src", header: testHeader(), dataKey: testKey, to: dir + "/b.svb")
        try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: false)
        XCTAssertThrowsError(try BundleReader.extract(path: dir + "/b.svb", dataKey: testKey, to: dir + "/out")) {
            XCTAssertEqual($0 as? VaultError, .targetExists(path: dir + "/out"))
        }
    }

    func testWrongKeyIsACommitmentFailure() throws {
        let dir = try makeTemporaryDirectory(self)
        try writeFile(dir + "/src/a.txt", [1])
        _ = try BundleWriter.seal(source: dir + "/src", header: testHeader(), dataKey: testKey, to: dir + "/b.svb")
        let other = try SecretBytes.random(count: 32)
        XCTAssertThrowsError(try BundleReader.extract(path: dir + "/b.svb", dataKey: other, to: dir + "/out")) {
            XCTAssertEqual($0 as? VaultError, .wrongKeyOrModifiedHeader(path: dir + "/b.svb"))
        }
        XCTAssertFalse(Posix.exists(dir + "/out"))
        XCTAssertEqual(try Posix.listDirectory(dir).sorted(), ["b.svb", "src"])
    }
}

@discardableResult
func runProcess(_ executable: String, _ arguments: [String]) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
