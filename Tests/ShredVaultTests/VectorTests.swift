import Foundation
import XCTest
import VaultCrypto
@testable import ShredVault

/// The committed vectors in samples/vectors (vault-format.md §5).
/// `SHREDVAULT_WRITE_VECTORS=1 swift test --filter VectorTests` regenerates them deterministically.
final class VectorTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("samples/vectors").path
    static let kat = root + "/known-answer"
    static let bad = root + "/bad"
    static let fixedSalt = (0..<24).map { UInt8($0) }
    static let fixedBundleId = Hex.decode("00112233445566778899aabbccddeeff")!
    static let fixedMtime: Int64 = 1_795_910_400

    static var writing: Bool { ProcessInfo.processInfo.environment["SHREDVAULT_WRITE_VECTORS"] == "1" }

    static func katHeader(_ user: String = "u0000001") -> BundleHeader {
        BundleHeader(vaultId: BundleHeader.zeroId, bundleId: fixedBundleId, createdAt: 1_795_910_400,
                     expiryDay: CivilDay(iso: "2027-02-26")!, userId: UserID(user)!)
    }

    /// Copies a committed source tree to a temporary place with fixed mtimes (git does not keep mtimes).
    func normalizedCopy(of source: String, in dir: String) throws -> String {
        let copy = dir + "/" + (source as NSString).lastPathComponent
        // git keeps neither empty directories nor mtimes: the "empty" user and edge-cases' empty-dir are made here.
        if Posix.exists(source) {
            try FileManager.default.copyItem(atPath: source, toPath: copy)
        } else {
            try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: false)
        }
        if source.hasSuffix("/edge-cases"), !Posix.exists(copy + "/empty-dir") {
            try FileManager.default.createDirectory(atPath: copy + "/empty-dir", withIntermediateDirectories: false)
        }
        func fix(_ rel: String?) throws {
            let path = rel.map { copy + "/" + $0 } ?? copy
            for name in try Posix.listDirectory(path) {
                let r = rel.map { $0 + "/" + name } ?? name
                let st = try Posix.status(copy + "/" + r)!
                if st.kind == .directory { try fix(r); try Posix.setPermissions(copy + "/" + r, 0o755) }
                else { try Posix.setPermissions(copy + "/" + r, 0o644) }
                try Posix.setModificationTime(copy + "/" + r, Self.fixedMtime)
            }
        }
        try fix(nil)
        return copy
    }

    func sealKAT(_ name: String, _ dir: String) throws -> [UInt8] {
        let src = try normalizedCopy(of: Self.kat + "/" + name, in: dir)
        let out = dir + "/" + name + ".svb"
        _ = try BundleWriter.seal(source: src, header: Self.katHeader(), dataKey: testKey, to: out, salt: Self.fixedSalt)
        return try readBytes(out)
    }

    func testKnownAnswerBundlesOpenAndReproduce() throws {
        let names = ["tiny", "edge-cases", "empty"]
        for name in names {
            let dir = try makeTemporaryDirectory(self)
            let fresh = try sealKAT(name, dir)
            if Self.writing { try writeBytes(fresh, to: Self.kat + "/" + name + ".svb") }
            let committed = try readBytes(Self.kat + "/" + name + ".svb")
            XCTAssertEqual(fresh, committed, "\(name): sealing the committed source with the fixed salt reproduces the committed bundle")
            let (_, manifest) = try BundleReader.extract(path: Self.kat + "/" + name + ".svb", dataKey: testKey, to: dir + "/out")
            let expected = Self.kat + "/" + name + ".manifest.json"
            if Self.writing { try writeBytes(try manifest.encoded() + [0x0a], to: expected) }
            XCTAssertEqual(try manifest.encoded() + [0x0a], try readBytes(expected), name)
            XCTAssertEqual(try TreeSnapshot(dir + "/out"), try TreeSnapshot(dir + "/" + name), "\(name): extracted tree equals the source")
        }
        let keyBytes: [UInt8] = testKey.withUnsafeBytes { Array($0) }
        let committedKey = Array(try readBytes(Self.kat + "/tiny.key").prefix(64))
        XCTAssertEqual(committedKey, Array(Hex.encode(keyBytes).utf8))
    }

    // MARK: bad-input vectors

    /// One `samples/vectors/bad/*.vector` file: text fields (`expect:`, `error:` or `tree:`, `key:`, `comment:`), a blank
    /// line, then the bundle bytes (vault-format.md §7).
    struct Vector {
        var name: String
        /// The outcome class of vault-format.md §2.5: success | header failure | payload failure | contents failure.
        var expect: String
        /// Failures: the exact error, as `Self.signature` renders it.
        var error: String?
        /// Successes: the known-answer source directory the bundle must extract to, byte for byte.
        var tree: String?
        var comment: String
        var key: String
        var bytes: [UInt8]
    }

    /// The exact error a reader reports, without the file path: the VaultError case and its detail.
    static func signature(_ e: VaultError) -> String {
        switch e {
        case .notABundle: return "notABundle"
        case .unsupportedVersion(_, let version): return "unsupportedVersion(\(version))"
        case .unsupportedAlgorithm(_, let algorithm): return "unsupportedAlgorithm(\(algorithm))"
        case .malformedHeader(_, let reason): return "malformedHeader(\(reason))"
        case .wrongKeyOrModifiedHeader: return "wrongKeyOrModifiedHeader"
        case .corruptBundle(_, let reason): return "corruptBundle(\(reason))"
        case .invalidContents(_, let reason): return "invalidContents(\(reason))"
        default: return "unexpected \(e)"
        }
    }

    /// The outcome class (vault-format.md §2.5) of an error.
    static func outcomeClass(_ e: VaultError) -> String {
        switch e {
        case .notABundle, .unsupportedVersion, .unsupportedAlgorithm, .malformedHeader, .wrongKeyOrModifiedHeader: return "header failure"
        case .corruptBundle: return "payload failure"
        case .invalidContents: return "contents failure"
        default: return "unexpected"
        }
    }

    static func parse(_ data: [UInt8], name: String) -> Vector? {
        guard let split = data.firstRange(of: [0x0a, 0x0a]) else { return nil }
        let text = String(decoding: data[..<split.lowerBound], as: UTF8.self)
        var fields: [String: String] = [:]
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { return nil }
            fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        guard let expect = fields["expect"], let key = fields["key"] else { return nil }
        return Vector(name: name, expect: expect, error: fields["error"], tree: fields["tree"], comment: fields["comment"] ?? "", key: key,
                      bytes: Array(data[split.upperBound...]))
    }

    func generateBadVectors(_ dir: String) throws -> [Vector] {
        let keyHex = Hex.encode(testKey.withUnsafeBytes { Array($0) })
        var out: [Vector] = []
        // Each failure names its exact error here, by hand, from vault-format.md §2.5 and the reader's documented
        // messages; the test then requires exactly that error (it is never copied from what the reader reports).
        let truncated = "corruptBundle(\(CryptoError.truncated.description))"
        let forged = "corruptBundle(\(CryptoError.authenticationFailed.description))"
        func add(_ name: String, _ expect: String, _ error: String, _ comment: String, _ bytes: [UInt8], key: String? = nil) {
            out.append(Vector(name: name, expect: expect, error: error, tree: nil, comment: comment, key: key ?? keyHex, bytes: bytes))
        }
        func success(_ name: String, tree: String, _ comment: String, _ bytes: [UInt8]) {
            out.append(Vector(name: name, expect: "success", error: nil, tree: tree, comment: comment, key: keyHex, bytes: bytes))
        }
        let tiny = try sealKAT("tiny", dir)
        let edge = try sealKAT("edge-cases", dir)
        let empty = try sealKAT("empty", dir)
        let h = Self.katHeader().length
        let start = h + Cobblestone256.headerSize
        let unit = Cobblestone256.chunkSize + Cobblestone256.tagSize
        success("success-tiny", tree: "known-answer/tiny", "two small files", tiny)
        success("success-edge-cases", tree: "known-answer/edge-cases", "empty file, 16 KiB and 32 KiB files, Unicode and long paths, empty directory", edge)
        success("success-empty-user", tree: "known-answer/empty", "empty user directory: only the manifest", empty)
        XCTAssertGreaterThan(edge.count, start + 2 * unit, "edge-cases spans several chunks")
        add("truncated-at-chunk-boundary", "payload failure", truncated, "cut after the first full chunk", Array(edge[0..<(start + unit)]))
        add("truncated-mid-chunk", "payload failure", forged, "cut 100 bytes into the second chunk", Array(edge[0..<(start + unit + 100)]))
        add("truncated-mid-final-chunk", "payload failure", forged, "last byte of the final chunk missing", Array(edge.dropLast()))
        add("truncated-in-commitment", "payload failure", truncated, "ends inside the salt/commitment", Array(tiny[0..<(h + 40)]))
        add("truncated-after-header", "payload failure", truncated, "header only", Array(tiny[0..<h]))
        add("truncated-in-header", "header failure", "malformedHeader(file ends inside the header)", "ends inside the header", Array(tiny[0..<50]))
        let fullChunks = (edge.count - start) / unit
        add("missing-final-chunk", "payload failure", truncated, "all full chunks, final short chunk removed", Array(edge[0..<(start + fullChunks * unit)]))
        add("trailing-byte", "payload failure", forged, "one byte appended", tiny + [0])
        add("trailing-chunk", "payload failure", forged, "a copy of the final chunk appended", tiny + tiny[start...])
        var swapped = edge
        swapped.replaceSubrange(start..<(start + unit), with: edge[(start + unit)..<(start + 2 * unit)])
        swapped.replaceSubrange((start + unit)..<(start + 2 * unit), with: edge[start..<(start + unit)])
        add("chunks-swapped", "payload failure", forged, "chunks 0 and 1 swapped", swapped)
        var flippedChunk = tiny; flippedChunk[start + 5] ^= 0x80
        add("chunk-byte-flipped", "payload failure", forged, "one ciphertext bit flipped", flippedChunk)
        var flippedTag = tiny; flippedTag[tiny.count - 1] ^= 0x01
        add("tag-byte-flipped", "payload failure", forged, "last tag bit flipped", flippedTag)
        var flippedCommit = tiny; flippedCommit[h + 30] ^= 0x01
        add("commitment-flipped", "header failure", "wrongKeyOrModifiedHeader", "commitment modified", flippedCommit)
        var flippedSalt = tiny; flippedSalt[h] ^= 0x01
        add("salt-flipped", "header failure", "wrongKeyOrModifiedHeader", "salt modified: the derived commitment differs", flippedSalt)
        // The fields the reader checks before the key commitment fail on their own rule; every other byte (ids, times,
        // key ids, a user id that stays well-formed: "u0000001" -> "u0010001") fails the commitment.
        let commitment = "wrongKeyOrModifiedHeader"
        let fields: [(String, Int, String)] = [
            ("magic", 0, "notABundle"), ("version", 9, "unsupportedVersion(0)"), ("algorithm", 11, "unsupportedAlgorithm(0)"),
            ("header-length", 13, "malformedHeader(header length 101 does not match user id length 8)"),
            ("user-id-length", 14, "malformedHeader(header length 100 does not match user id length 9)"),
            ("flags", 15, "malformedHeader(reserved flags byte is 1, not 0)"), ("vault-id", 20, commitment), ("bundle-id", 40, commitment),
            ("created-at", 55, commitment), ("expiry-day", 59, commitment), ("user-key-id", 70, commitment), ("day-key-id", 90, commitment),
            ("user-id", 95, commitment),
        ]
        for (field, offset, error) in fields {
            var b = tiny; b[offset] ^= 0x01
            add("header-\(field)-flipped", "header failure", error, "bit 0 of header byte \(offset) (\(field)) flipped", b)
        }
        var v2 = tiny; v2[8] = 0; v2[9] = 2
        add("unknown-version", "header failure", "unsupportedVersion(2)", "format version 2", v2)
        add("wrong-key", "header failure", "wrongKeyOrModifiedHeader", "opened with another key", tiny, key: String(repeating: "ff", count: 32))
        add("not-a-bundle", "header failure", "notABundle", "a text file", Array("hello, world\n".utf8))
        add("empty-file", "header failure", "notABundle", "zero bytes", [])

        // Hostile contents, validly encrypted.
        let kh = Self.katHeader()
        /// A bundle whose Cobblestone plaintext is exactly `frame`.
        func crafted(_ name: String, _ expect: String, _ error: String, _ comment: String, header: BundleHeader, frame: [UInt8]) throws {
            var payload = header.encoded()
            let e = try CobblestoneEncryptor(inputKey: testKey, context: header.encoded(), salt: Self.fixedSalt) { payload += $0 }
            try e.write(frame)
            try e.finish()
            add(name, expect, error, comment, payload)
        }
        func hostile(_ name: String, _ reason: String, _ comment: String, header: BundleHeader? = nil,
                     _ build: (inout UstarBuilder) throws -> Void) throws {
            var b = UstarBuilder()
            try build(&b)
            try crafted(name, "contents failure", "invalidContents(\(reason))", comment, header: header ?? kh,
                        frame: try ZstdCompressorShim.compress(b.finished()))
        }
        let x = Array("x".utf8)
        try hostile("contents-absolute-path", "entry '/etc/passwd' is outside files/", "entry /etc/passwd") { b in b.add(name: "/etc/passwd", contents: x); try b.addManifest(kh, []) }
        try hostile("contents-dotdot", "entry 'files/../../escape': '.' or '..' path component", "entry files/../../escape") { b in b.add(name: "files/../../escape", contents: x); try b.addManifest(kh, []) }
        try hostile("contents-symlink", "entry 'l' is a symbolic link; bundles never contain links", "symbolic link to /etc/passwd") { b in b.add(name: "files/l", type: UInt8(ascii: "2"), linkName: "/etc/passwd"); try b.addManifest(kh, []) }
        try hostile("contents-hardlink", "entry 'h' is a hard link; bundles never contain links", "hard link") { b in b.add(name: "files/a", contents: x); b.add(name: "files/h", type: UInt8(ascii: "1"), linkName: "files/a"); try b.addManifest(kh, [try fileEntry("a", x)]) }
        try hostile("contents-device", "entry 'dev' is a device, FIFO or socket", "character device") { b in b.add(name: "files/dev", type: UInt8(ascii: "3")); try b.addManifest(kh, []) }
        try hostile("contents-duplicate", "duplicate entry 'a'", "same file twice") { b in b.add(name: "files/a", contents: x); b.add(name: "files/a", contents: x); try b.addManifest(kh, [try fileEntry("a", x), try fileEntry("a", x)]) }
        try hostile("contents-unlisted", "entry 'a' is not listed in the manifest", "file missing from the manifest") { b in b.add(name: "files/a", contents: x); try b.addManifest(kh, []) }
        try hostile("contents-hash-mismatch", "entry 'a' differs from the manifest (size, mode, mtime or SHA-256)", "manifest hash of other contents") { b in b.add(name: "files/a", contents: x); try b.addManifest(kh, [try fileEntry("a", Array("y".utf8))]) }
        try hostile("contents-no-manifest", "no manifest (the archive ends without manifest.json)", "archive without manifest") { b in b.add(name: "files/a", contents: x) }

        // The strict reader: inputs libzstd or libarchive would still accept (each found by fuzzing), otherwise valid.
        let frameError = { (detail: String) in
            "corruptBundle(\(ArchiveError.unsupportedFrame(detail).description))"
        }
        let validTar = try Self.oneFileTar(kh)
        let validFrame = try ZstdCompressorShim.compress(validTar)
        var noChecksum = validFrame
        noChecksum[4] &= ~0x04  // Content_Checksum_flag
        noChecksum.removeLast(4)  // and the checksum itself
        try crafted("zstd-no-checksum", "payload failure", frameError("its frame header declares no content checksum"),
                    "one file and its manifest in a zstd frame without a content checksum", header: kh, frame: noChecksum)
        try crafted("zstd-legacy-v05", "payload failure",
                    frameError("it starts with the magic number of a legacy (pre-RFC 8878) zstd format, 0xfd2fb525"),
                    "one file and its manifest in a legacy zstd v0.5 frame (raw blocks)", header: kh, frame: Self.legacyV05Frame(validTar))
        try crafted("zstd-skippable-frame", "payload failure", frameError("it starts with a skippable frame (magic 0x184d2a50)"),
                    "a skippable frame, then a valid frame", header: kh, frame: [0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4] + validFrame)
        let onlyFilesAndDirectories = "not '0'; bundles hold only regular files ('0') and directories ('5')"
        try hostile("contents-typeflag-7", "entry 'a' is stored as tar type '7', \(onlyFilesAndDirectories)",
                    "a contiguous file (typeflag '7'), listed in the manifest") { b in
            b.add(name: "files/a", type: UInt8(ascii: "7"), contents: x); try b.addManifest(kh, [try fileEntry("a", x)])
        }
        try hostile("contents-typeflag-nul", "entry 'a' is stored as tar type 0x00, \(onlyFilesAndDirectories)",
                    "an old-style regular file (typeflag NUL), listed in the manifest") { b in
            b.add(name: "files/a", type: 0, contents: x); try b.addManifest(kh, [try fileEntry("a", x)])
        }
        try hostile("contents-gnu-sparse", "entry 'a' is stored as tar type 'S', \(onlyFilesAndDirectories)",
                    "a GNU sparse file (typeflag 'S', one data block), listed in the manifest") { b in
            b.add(name: "files/a", type: UInt8(ascii: "S"), contents: x, magic: UstarBuilder.gnuMagic) { h in
                // Old GNU sparse header: sp[0] = (offset 0, numbytes 1) at 386, isextended 0 at 482, realsize 1 at 483.
                for (offset, value) in [(386, "00000000000"), (398, "00000000001"), (483, "00000000001")] {
                    h.replaceSubrange(offset..<(offset + 11), with: Array(value.utf8))
                }
            }
            try b.addManifest(kh, [try fileEntry("a", x)])
        }
        try hostile("contents-pax-global-header", "entry 'a' has a tar header of type 'g'; bundles use only pax extended headers ('x')",
                    "a pax global header ('g') before a listed file") { b in
            b.addPax([("comment", Array("global".utf8))], type: UInt8(ascii: "g"))
            b.add(name: "files/a", contents: x); try b.addManifest(kh, [try fileEntry("a", x)])
        }
        try hostile("contents-pax-xattr", "entry 'a' has the pax record 'SCHILY.xattr.user.note'; bundles use only path, size and mtime",
                    "an extended attribute record in the pax header of a listed file") { b in
            b.addPax([("SCHILY.xattr.user.note", x)])
            b.add(name: "files/a", contents: x); try b.addManifest(kh, [try fileEntry("a", x)])
        }
        // "e" + U+0301 in the tar, U+00E9 in the manifest: canonically equivalent, other bytes (libarchive used to hand
        // the reader the NFC spelling, which the manifest then matched).
        let nfd = "e\u{301}.txt", nfc = "\u{e9}.txt"
        try hostile("contents-nfd-name-nfc-manifest", "archive entry '\(nfd)' is not where the manifest lists '\(nfc)'",
                    "tar path NFD (e + U+0301, pax record), manifest path NFC (U+00E9)") { b in
            b.addPax([("path", Array(("files/" + nfd).utf8))])
            b.add(name: "files/nfd.txt", contents: x); try b.addManifest(kh, [try fileEntry(nfc, x)])
        }
        // User "uK000001" in the header, "u" + KELVIN SIGN (U+212A) + "000001" in the manifest.
        let kelvinUser = "u\u{212A}000001"
        let kHeader = Self.katHeader("uK000001")
        try hostile("contents-kelvin-user-id", "manifest names bundle \(kHeader.bundleIdHex) of user \(kelvinUser), not this bundle",
                    "header user uK000001, manifest user u + U+212A KELVIN SIGN + 000001", header: kHeader) { b in
            b.add(name: Manifest.entryPath, contents: try Manifest(bundleId: kHeader.bundleIdHex, userId: kelvinUser, entries: []).encoded())
        }
        return out
    }

    /// `files/a` holding "x" and its manifest: a valid bundle tar.
    static func oneFileTar(_ header: BundleHeader) throws -> [UInt8] {
        var b = UstarBuilder()
        b.add(name: "files/a", contents: Array("x".utf8))
        try b.addManifest(header, [try fileEntry("a", Array("x".utf8))])
        return b.finished()
    }

    /// `data` in a legacy zstd v0.5 frame (magic 0xFD2FB525, window log 17, raw blocks of at most 64 KiB, end block),
    /// the format of zstd's lib/legacy/zstd_v05.c, which libzstd still decodes when built with legacy support.
    static func legacyV05Frame(_ data: [UInt8]) -> [UInt8] {
        var frame: [UInt8] = [0x25, 0xB5, 0x2F, 0xFD, 17 - 11]
        var offset = 0
        while offset < data.count {
            let n = min(1 << 16, data.count - offset)
            frame += [0x40 | UInt8(n >> 16), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)]  // bt_raw, size
            frame += data[offset..<(offset + n)]
            offset += n
        }
        return frame + [0xC0, 0, 0]  // bt_end
    }

    func testBadInputVectors() throws {
        let dir = try makeTemporaryDirectory(self)
        if Self.writing {
            try? FileManager.default.removeItem(atPath: Self.bad)
            try FileManager.default.createDirectory(atPath: Self.bad, withIntermediateDirectories: true)
            for v in try generateBadVectors(dir) {
                let detail = v.error.map { "error: \($0)\n" } ?? v.tree.map { "tree: \($0)\n" } ?? ""
                let head = "expect: \(v.expect)\n" + detail + "key: \(v.key)\ncomment: \(v.comment)\n\n"
                try writeBytes(Array(head.utf8) + v.bytes, to: Self.bad + "/" + v.name + ".vector")
            }
        }
        let files = try Posix.listDirectory(Self.bad).filter { $0.hasSuffix(".vector") }
        var counts: [String: Int] = [:]
        var exact = 0, trees = 0
        for file in files {
            guard let v = Self.parse(try readBytes(Self.bad + "/" + file), name: file) else { XCTFail("unparseable \(file)"); continue }
            counts[v.expect, default: 0] += 1
            let path = dir + "/" + file + ".svb"
            try writeBytes(v.bytes, to: path)
            let key = SecretBytes(copying: Hex.decode(v.key)!)
            let target = dir + "/out-" + file
            if v.expect == "success" {
                XCTAssertNil(v.error, "\(file): a success vector names no error")
                guard let tree = v.tree else { XCTFail("\(file): a success vector names the tree it extracts to (tree:)"); continue }
                do {
                    try BundleReader.extract(path: path, dataKey: key, to: target)
                } catch {
                    XCTFail("\(file) (\(v.comment)) expects success but failed with: \(error)")
                    continue
                }
                // The extracted tree equals the committed source, byte for byte, with modes and mtimes.
                let source = try normalizedCopy(of: Self.root + "/" + tree, in: try makeTemporaryDirectory(self))
                XCTAssertEqual(try TreeSnapshot(target), try TreeSnapshot(source), "\(file): extracted tree equals \(tree)")
                trees += 1
                continue
            }
            guard let expectedError = v.error else { XCTFail("\(file): a failure vector names its exact error (error:)"); continue }
            // On one thread and through the pipeline of threads (issue 15): the same error, nothing left.
            for pipeline in [BundleReader.Pipeline.never, .always] {
                do {
                    try BundleReader.extract(path: path, dataKey: key, to: target, pipeline: pipeline)
                    XCTFail("\(file) (\(v.comment), \(pipeline)) opened but expects \(v.expect): \(expectedError)")
                } catch let e as VaultError {
                    XCTAssertFalse(Posix.exists(target), "\(file) (\(pipeline)): target left behind")
                    // Byte for byte: String equality would let a canonically equivalent spelling pass.
                    XCTAssertEqual(Array(Self.signature(e).utf8), Array(expectedError.utf8), "\(file) (\(v.comment), \(pipeline)): \(Self.signature(e))")
                    XCTAssertEqual(Self.outcomeClass(e), v.expect, "\(file) (\(pipeline)): \(e) is a \(Self.outcomeClass(e)), the vector expects \(v.expect)")
                    if pipeline == .never && Self.signature(e).utf8.elementsEqual(expectedError.utf8) { exact += 1 }
                }
                XCTAssertEqual((try? Posix.listDirectory(dir))?.filter { $0.contains("partial") } ?? [], [], "\(file) (\(pipeline)): temporary left")
            }
        }
        print("bad-input vectors: \(files.count) run, by expectation \(counts.sorted { $0.key < $1.key }); "
              + "\(exact) failed with exactly their recorded error, \(trees) extracted to exactly their tree")
        XCTAssertEqual(files.count, 53, "every committed vector ran")
        XCTAssertEqual(counts, ["success": 3, "header failure": 20, "payload failure": 14, "contents failure": 16])
        XCTAssertEqual(exact, 50, "every failure vector failed with its exact error")
        XCTAssertEqual(trees, 3, "every success vector extracted to its tree")
    }
}

import VaultArchive
enum ZstdCompressorShim {
    static func compress(_ bytes: [UInt8]) throws -> [UInt8] {
        var out = [UInt8]()
        let c = try ZstdCompressor(level: 3) { out += $0 }
        try bytes.withUnsafeBytes { try c.write($0) }
        try c.finish()
        return out
    }
}
