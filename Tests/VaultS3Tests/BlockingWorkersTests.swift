import Foundation
import XCTest
@testable import VaultS3

/// `BlockingWorkers.run`: every index runs once, each on a thread of its own, and when it returns no thread still
/// holds what the body captured (a job's vault, and with it the vault's lock, is released when its caller lets go).
final class BlockingWorkersTests: XCTestCase {
    private final class Token: @unchecked Sendable {
        let lock = NSLock()
        var seen: [Int] = []
        var threads = Set<String>()
    }

    func testEveryIndexRunsOnceOnItsOwnThread() {
        let token = Token()
        let started = DispatchGroup()
        for _ in 0..<4 { started.enter() }
        BlockingWorkers.run(4, stackSize: 1 << 16) { index in
            token.lock.lock()
            token.seen.append(index)
            token.threads.insert("\(pthread_self())")
            token.lock.unlock()
            started.leave()
            started.wait()  // all four at once: each index has a thread of its own
        }
        XCTAssertEqual(token.seen.sorted(), [0, 1, 2, 3])
        XCTAssertEqual(token.threads.count, 4)
    }

    /// Checked the moment `run` returns, with nothing in between: a thread that had not yet exited would still hold
    /// the token.
    func testNothingTheBodyCapturedOutlivesTheCall() {
        weak var released: Token?
        func work() {
            let token = Token()
            released = token
            BlockingWorkers.run(2) { index in
                token.lock.lock()
                token.seen.append(index)
                token.lock.unlock()
            }
        }
        var held = 0
        for _ in 0..<2_000 {
            work()
            if released != nil { held += 1 }
        }
        XCTAssertEqual(held, 0, "in \(held) of 2000 calls a worker thread still held the body's captures after run returned")
    }

    /// `forEach`: each index once, told how many were still waiting when it was taken; after the first error no new
    /// index starts, and that error comes back once every thread has ended.
    func testForEachRunsEveryIndexOnceAndStopsAfterTheFirstError() throws {
        struct Stop: Error, Equatable { let index: Int }
        let token = Token()
        try BlockingWorkers.forEach(50, workers: 3) { index, notYetStarted in
            token.lock.withLock { token.seen.append(index * 1000 + notYetStarted) }
        }
        XCTAssertEqual(token.seen.map { $0 / 1000 }.sorted(), Array(0..<50))
        XCTAssertEqual(Set(token.seen.map { $0 % 1000 + $0 / 1000 }), [49], "index + notYetStarted = count - 1")
        let after = Token()
        XCTAssertThrowsError(try BlockingWorkers.forEach(1000, workers: 1) { index, _ in
            after.lock.withLock { after.seen.append(index) }
            if index == 7 { throw Stop(index: index) }
        }) { XCTAssertEqual($0 as? Stop, Stop(index: 7)) }
        XCTAssertEqual(after.seen, Array(0...7), "nothing started after the error")
        try BlockingWorkers.forEach(0, workers: 4) { _, _ in XCTFail("no index to run") }
    }

    func testZeroWorkersRunNothing() {
        BlockingWorkers.run(0) { _ in XCTFail("no index to run") }
    }
}
