import XCTest
@testable import VaultCrypto

/// Reused I/O buffers (issue 15) come back zeroed: a buffer that held plaintext is never handed out with it.
final class BufferPoolTests: XCTestCase {
    func testABufferIsZeroedBeforeItIsReusedAndSizesAreKeptApart() {
        let size = 3 * 4096 + 17  // a size no other code path uses, so the pool's buffer is this test's
        let first = BufferPool.take(size)
        XCTAssertEqual(first.count, size)
        for i in 0..<size { first[i] = 0xA5 }
        let address = first.baseAddress
        BufferPool.give(first)
        let second = BufferPool.take(size)
        XCTAssertEqual(second.baseAddress, address, "the kept buffer is reused")
        XCTAssertTrue(second.allSatisfy { $0 == 0 }, "a reused buffer holds none of its earlier contents")
        let other = BufferPool.take(size + 1)
        XCTAssertNotEqual(other.baseAddress, address)
        XCTAssertEqual(other.count, size + 1)
        BufferPool.give(second)
        BufferPool.give(other)
    }
}
