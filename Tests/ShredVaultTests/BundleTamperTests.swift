import XCTest
import VaultCrypto
@testable import ShredVault

/// G6: any modification, truncation, reordering or extension is detected, with exactly the error its position
/// calls for, and nothing reaches the target.
final class BundleTamperTests: XCTestCase {
    private func sealSmall(_ dir: String, size: Int) throws -> [UInt8] {
        try writeFile(dir + "/src/data.bin", pseudoRandomBytes(size, seed: 42))
        _ = try BundleWriter.seal(source: dir + "/src", header: testHeader(), dataKey: testKey, to: dir + "/good.svb")
        return try readBytes(dir + "/good.svb")
    }

    /// The exact error each kind of damage gives (vault-format.md §2.5), for a bundle at `path`.
    enum Damage {
        case magic, version, algorithm, layout(String), userId, commitment, truncated, forged
        func error(_ path: String) -> VaultError {
            switch self {
            case .magic: return .notABundle(path: path)
            case .layout(let reason): return .malformedHeader(path: path, reason: reason)
            case .userId: return .malformedHeader(path: path, reason: "user id is not of the form [A-Za-z0-9._-]{1,128}")
            case .commitment: return .wrongKeyOrModifiedHeader(path: path)
            case .truncated: return .corruptBundle(path: path, reason: CryptoError.truncated.description)
            case .forged: return .corruptBundle(path: path, reason: CryptoError.authenticationFailed.description)
            case .version, .algorithm: preconditionFailure("compare with the value read from the bytes")
            }
        }
    }

    /// Asserts that opening `bytes` fails with exactly the expected error (computed from the damaged bytes where the
    /// error names a field's value) and leaves neither target nor temporary file.
    private func assertRejected(_ bytes: [UInt8], _ dir: String, _ what: String, _ damage: Damage,
                                file: StaticString = #filePath, line: UInt = #line) {
        let path = dir + "/bad.svb"
        try? FileManager.default.removeItem(atPath: path)
        XCTAssertNoThrow(try writeBytes(bytes, to: path))
        let expected: VaultError
        switch damage {
        case .version: expected = .unsupportedVersion(path: path, version: Int(bytes[8]) << 8 | Int(bytes[9]))
        case .algorithm: expected = .unsupportedAlgorithm(path: path, algorithm: Int(bytes[10]) << 8 | Int(bytes[11]))
        default: expected = damage.error(path)
        }
        // Read on one thread and by the pipeline of threads (issue 15): the same error, the same nothing left.
        for pipeline in [BundleReader.Pipeline.never, .always] {
            XCTAssertThrowsError(try BundleReader.extract(path: path, dataKey: testKey, to: dir + "/out", pipeline: pipeline),
                                 "\(what) (\(pipeline))", file: file, line: line) { e in
                XCTAssertEqual(e as? VaultError, expected, "\(what) (\(pipeline)): \(e)", file: file, line: line)
            }
            XCTAssertFalse(Posix.exists(dir + "/out"), "\(what) (\(pipeline)): target created", file: file, line: line)
            XCTAssertEqual((try? Posix.listDirectory(dir))?.filter { $0.contains("partial") }, [],
                           "\(what) (\(pipeline)): temporary left", file: file, line: line)
        }
    }

    /// Where a changed byte of a one-chunk bundle lands.
    private func flipDamage(_ i: Int, _ b: [UInt8], headerLength h: Int) -> Damage {
        switch i {
        case 0..<8: return .magic
        case 8..<10: return .version
        case 10..<12: return .algorithm
        case 12..<16:
            let n = Int(b[14]), length = Int(b[12]) << 8 | Int(b[13])
            if !(1...128).contains(n) { return .layout("user id length \(n) is outside 1...128") }
            if length != 92 + n { return .layout("header length \(length) does not match user id length \(n)") }
            return .layout("reserved flags byte is \(b[15]), not 0")
        case 16..<92: return .commitment
        case 92..<h: return UserID(String(decoding: b[92..<h], as: UTF8.self)) == nil || String(validating: b[92..<h], as: UTF8.self) == nil
            ? .userId : .commitment
        case h..<(h + Cobblestone256.headerSize): return .commitment
        default: return .forged
        }
    }

    /// Where a cut of a one-chunk bundle lands.
    private func cutDamage(_ n: Int, headerLength h: Int) -> Damage {
        switch n {
        case 0..<8: return .magic
        case 8..<h: return .layout("file ends inside the header")
        case h..<(h + Cobblestone256.headerSize): return .truncated
        default: return n - h - Cobblestone256.headerSize < Cobblestone256.tagSize ? .truncated : .forged
        }
    }

    func testEverySingleBitFlipIsRejected() throws {
        let dir = try makeTemporaryDirectory(self)
        let good = try sealSmall(dir, size: 3000)
        let h = testHeader().length
        for i in 0..<good.count {
            var b = good
            b[i] ^= 0x01 << UInt8(i % 8)
            assertRejected(b, dir, "flip at \(i)", flipDamage(i, b, headerLength: h))
        }
    }

    func testEveryTruncationAndExtensionIsRejected() throws {
        let dir = try makeTemporaryDirectory(self)
        let good = try sealSmall(dir, size: 3000)
        let h = testHeader().length
        for n in 0..<good.count { assertRejected(Array(good[0..<n]), dir, "truncated to \(n)", cutDamage(n, headerLength: h)) }
        assertRejected(good + [0], dir, "one zero byte appended", .forged)
        assertRejected(good + good[good.count - 40..<good.count], dir, "tail repeated", .forged)
        assertRejected(good + good, dir, "bundle doubled", .forged)
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
            assertRejected(Array(good[0..<(start + k * unit)]), dir, "cut at chunk boundary \(k)", .truncated)
            assertRejected(Array(good[0..<(start + k * unit - 7)]), dir, "cut inside chunk \(k - 1)", .forged)
        }
        var swapped = good
        swapped.replaceSubrange(start..<(start + unit), with: good[(start + unit)..<(start + 2 * unit)])
        swapped.replaceSubrange((start + unit)..<(start + 2 * unit), with: good[start..<(start + unit)])
        assertRejected(swapped, dir, "chunks 0 and 1 swapped", .forged)
        var dropped = good
        dropped.removeSubrange((start + unit)..<(start + 2 * unit))
        assertRejected(dropped, dir, "chunk 1 removed", .forged)
        var duplicated = good
        duplicated.insert(contentsOf: good[(start + unit)..<(start + 2 * unit)], at: start + unit)
        assertRejected(duplicated, dir, "chunk 1 duplicated", .forged)
    }

    func testHeaderFromAnotherBundleIsRejected() throws {
        let dir = try makeTemporaryDirectory(self)
        let good = try sealSmall(dir, size: 100)
        // Same key, same layout, but another user id / bundle id / expiry / vault id in the header.
        for other in [testHeader(user: "u0000002"), testHeader(bundleId: Array(repeating: 1, count: 16))] {
            var b = good
            b.replaceSubrange(0..<other.length, with: other.encoded())
            assertRejected(b, dir, "header of \(other.userId)", .commitment)
        }
    }
}
