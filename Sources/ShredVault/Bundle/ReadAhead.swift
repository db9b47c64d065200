import Foundation

/// Runs a byte source on a thread of its own, ahead of its consumer, through a bounded ring of fixed buffers
/// (`BundleReader`'s restore pipeline: decrypt ‖ decompress ‖ tar, hash and write; issue 15).
///
/// The consumer sees exactly the byte stream the source produced, in order, and then exactly what the source
/// ended with: 0 (end) or the error it threw, unchanged and at the same position in the stream as without the
/// stage, and again on every later call. Memory is `slotCount × slotSize`, whatever the stream's length.
///
/// The source is only ever called on the stage's thread once `start()` ran, so it may own state that is not
/// thread-safe (a decryptor, a decompression context); the caller must not touch that state until `join()`
/// returned. `cancel()` stops the thread at its next buffer boundary and makes a consumer blocked in `read(into:)`
/// throw; `join()` waits for the thread to exit. Every stage that was started must be cancelled or drained and then
/// joined (`BundleReader` does both in a `defer`), so no thread outlives the bundle it reads.
final class ReadAhead: @unchecked Sendable {
    /// Thrown by `read(into:)` of a cancelled stage (only ever seen by a downstream stage being cancelled too).
    struct Cancelled: Error {}

    private let condition = NSCondition()
    private let source: (UnsafeMutableRawBufferPointer) throws -> Int
    private let storage: UnsafeMutableRawBufferPointer
    private let slotSize: Int
    private let slotCount: Int
    private let name: String
    // Guarded by `condition`:
    private var counts: [Int]
    /// Full slots waiting for the consumer, starting at `head`.
    private var filled = 0
    private var head = 0
    private var ended = false
    private var failure: (any Error)?
    private var cancelled = false
    private var running = false
    // Consumer-only: bytes of slot `head` already handed out.
    private var offset = 0

    init(name: String, slotSize: Int = 1 << 20, slotCount: Int = 4, source: @escaping (UnsafeMutableRawBufferPointer) throws -> Int) {
        precondition(slotSize > 0 && slotCount > 0)
        precondition(name.utf8.count <= 15, "Linux thread names are at most 15 bytes")
        self.name = name
        self.source = source
        self.slotSize = slotSize
        self.slotCount = slotCount
        counts = Array(repeating: 0, count: slotCount)
        storage = .allocate(byteCount: slotSize * slotCount, alignment: 64)
    }

    deinit {
        // Plaintext passes through these buffers: zero them before they return to the allocator.
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        storage.deallocate()
    }

    private func slot(_ index: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: storage[(index * slotSize)..<((index + 1) * slotSize)])
    }

    private static let startedLock = NSLock()
    nonisolated(unsafe) private static var startedCount = 0
    /// Threads started by all stages so far (tests check that the pipeline really runs on threads).
    static var threadsStarted: Int { startedLock.withLock { startedCount } }

    /// Starts the producing thread.
    func start() {
        condition.lock()
        precondition(!running, "ReadAhead.start() called twice")
        running = true
        condition.unlock()
        Self.startedLock.withLock { Self.startedCount += 1 }
        let thread = Thread { [self] in
            // Set from the thread itself, the name reaches the OS (ps, perf, /proc/self/task/*/comm, where the tests
            // look for leaked stages); set before `start()` it does not on Linux.
            Thread.current.name = name
            produce()
            condition.lock()
            running = false
            condition.broadcast()
            condition.unlock()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    private func produce() {
        var index = 0
        while true {
            condition.lock()
            while filled == slotCount && !cancelled { condition.wait() }
            let stop = cancelled
            condition.unlock()
            if stop { return }
            // Slot `index` is not full, so the consumer does not read it: fill it without the lock.
            let target = slot(index)
            var count = 0
            var atEnd = false
            var error: (any Error)?
            do {
                while count < slotSize {
                    let n = try source(UnsafeMutableRawBufferPointer(rebasing: target[count...]))
                    precondition((0...(slotSize - count)).contains(n), "source returned \(n) for a \(slotSize - count)-byte buffer")
                    if n == 0 { atEnd = true; break }
                    count += n
                }
            } catch let e {
                error = e
            }
            condition.lock()
            if count > 0 {
                counts[index] = count
                filled += 1
            }
            if atEnd { ended = true }
            if let error { failure = error }
            condition.broadcast()
            condition.unlock()
            if atEnd || error != nil { return }
            index = (index + 1) % slotCount
        }
    }

    /// Copies up to `buffer.count` bytes of the stream into `buffer`; 0 at its end. Rethrows the source's error
    /// once every byte produced before it was read.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        condition.lock()
        while filled == 0 {
            if cancelled { condition.unlock(); throw Cancelled() }
            if let failure { condition.unlock(); throw failure }
            if ended { condition.unlock(); return 0 }
            condition.wait()
        }
        let current = head
        let available = counts[current] - offset
        condition.unlock()
        // Slot `current` is full: the producer does not write it until the consumer releases it below.
        let n = min(buffer.count, available)
        buffer.baseAddress!.copyMemory(from: slot(current).baseAddress! + offset, byteCount: n)
        offset += n
        if offset == counts[current] {
            offset = 0
            condition.lock()
            head = (head + 1) % slotCount
            filled -= 1
            condition.broadcast()
            condition.unlock()
        }
        return n
    }

    /// Asks the producer to stop at its next buffer boundary and wakes a blocked consumer (which throws
    /// `Cancelled`). Idempotent.
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until the producing thread (if started) has exited.
    func join() {
        condition.lock()
        while running { condition.wait() }
        condition.unlock()
    }
}
