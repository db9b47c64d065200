import XCTest

@testable import VaultCrypto

/// SHA-256 with lent bytes hashed in pairs (CSHA256): every digest must be the SHA-256 of that hasher's own bytes in
/// order, computed here independently through OpenSSL's EVP interface, however the bytes were split, lent, paired
/// and settled.
final class PairedSHA256Tests: XCTestCase {
    override func tearDown() {
        SHA256.setPairing(true)
        super.tearDown()
    }

    /// A small deterministic generator (tests replay the same splits).
    private struct SplitMix {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    private func evpSHA256(_ parts: [[UInt8]]) throws -> [UInt8] {
        let context = try DigestContext(.sha256)
        for part in parts { try part.withUnsafeBytes { try context.update($0) } }
        return try context.finalize()
    }

    /// One run: a lender reads buffers of random sizes and lends each; the borrower hashes random pieces paired with
    /// it; now and then either hashes directly or settles. Returns whether both digests matched.
    private func runRandomSplits(seed: UInt64, rounds: Int) throws {
        var rng = SplitMix(state: seed)
        let lender = try SHA256(), borrower = try SHA256()
        var lentParts: [[UInt8]] = [], borrowedParts: [[UInt8]] = []
        // The lent buffer must stay unchanged until it is settled: keep it here, replace it only after a settle.
        var lentBuffer: [UInt8] = []
        func randomBytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
        func size() -> Int {
            switch rng.below(6) {
            case 0: return rng.below(3)  // empty and tiny pieces
            case 1: return 64 * (1 + rng.below(4))  // whole blocks
            case 2: return 1 + rng.below(130)  // around a block
            default: return rng.below(40_000)
            }
        }
        for _ in 0..<rounds {
            switch rng.below(10) {
            case 0..<3:
                try lender.settle()
                lentBuffer = randomBytes(size())
                lentParts.append(lentBuffer)
                try lentBuffer.withUnsafeBytes { try lender.lend($0) }
            case 3..<8:
                let piece = randomBytes(size())
                borrowedParts.append(piece)
                try piece.withUnsafeBytes { try borrower.update($0, pairedWith: lender) }
            case 8:
                let piece = randomBytes(size())
                lentParts.append(piece)
                try piece.withUnsafeBytes { try lender.update($0) }  // settles what was lent first
            default:
                try lender.settle()
            }
        }
        XCTAssertEqual(try lender.finalize(), try evpSHA256(lentParts), "lender, seed \(seed)")
        XCTAssertEqual(try borrower.finalize(), try evpSHA256(borrowedParts), "borrower, seed \(seed)")
    }

    func testPairedDigestsEqualEachStreamsOwnSHA256() throws {
        let before = SHA256.pairedBlocks
        for seed in 1...40 { try runRandomSplits(seed: UInt64(seed), rounds: 60) }
        if SHA256.pairsTogether {
            XCTAssertGreaterThan(SHA256.pairedBlocks, before, "this CPU pairs blocks, so some must have been paired")
        }
    }

    func testWithPairingOffTheSameDigestsAndNoPairs() throws {
        SHA256.setPairing(false)
        XCTAssertFalse(SHA256.pairsTogether)
        let before = SHA256.pairedBlocks
        for seed in 1...10 { try runRandomSplits(seed: UInt64(seed), rounds: 60) }
        XCTAssertEqual(SHA256.pairedBlocks, before)
    }

    func testLentBytesCountWhenFinalizedAndAHasherNeverPairsWithItself() throws {
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let hasher = try SHA256()
        try data.withUnsafeBytes { try hasher.lend($0) }
        XCTAssertEqual(try hasher.finalize(), try SHA256.hash(data), "finalize settles the lent bytes")
        // Lent bytes, then the same hasher's own paired update: its bytes must follow the lent ones, not pair with them.
        try data.withUnsafeBytes { try hasher.lend(UnsafeRawBufferPointer(rebasing: $0[..<640])) }
        try data.withUnsafeBytes { try hasher.update(UnsafeRawBufferPointer(rebasing: $0[640...]), pairedWith: hasher) }
        XCTAssertEqual(try hasher.finalize(), try SHA256.hash(data))
        // Known answers through the paired path: FIPS 180-2 "abc" and the 448-bit two-block message.
        let lender = try SHA256(), borrower = try SHA256()
        let abc = Array("abc".utf8)
        let twoBlock = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        try twoBlock.withUnsafeBytes { try lender.lend($0) }
        try abc.withUnsafeBytes { try borrower.update($0, pairedWith: lender) }
        XCTAssertEqual(Hex.encode(try lender.finalize()), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(Hex.encode(try borrower.finalize()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    /// More than 2^32 bits through the paired path, so the bit count's carry into its high word happens inside
    /// paired blocks (OpenSSL keeps the length as two 32-bit words).
    func testPairedLengthsPast512MiB() throws {
        let piece = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        let other = piece.reversed() as [UInt8]
        let lender = try SHA256(), borrower = try SHA256()
        let reference = try DigestContext(.sha256), referenceOther = try DigestContext(.sha256)
        let before = SHA256.pairedBlocks
        // 513 MiB + 3 bytes each; the odd tail leaves a started block in both before the last paired pieces.
        for i in 0..<514 {
            let n = i == 513 ? 3 : piece.count
            try piece.withUnsafeBytes { p in
                try other.withUnsafeBytes { o in
                    let a = UnsafeRawBufferPointer(rebasing: p[..<n]), b = UnsafeRawBufferPointer(rebasing: o[..<n])
                    try lender.lend(a)
                    try borrower.update(b, pairedWith: lender)
                    try lender.settle()
                    try reference.update(a)
                    try referenceOther.update(b)
                }
            }
        }
        XCTAssertEqual(try lender.finalize(), try reference.finalize())
        XCTAssertEqual(try borrower.finalize(), try referenceOther.finalize())
        if SHA256.pairsTogether {
            XCTAssertGreaterThanOrEqual(SHA256.pairedBlocks - before, UInt64(513 * (1 << 20) / 64))
        }
    }
}
