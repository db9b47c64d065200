import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Threads for work that blocks on the network. libdispatch's concurrent queues and `concurrentPerform` run at most
/// one block per core on Linux, so transfers that wait on a store would be limited to the core count: each transfer
/// in flight gets a thread of its own instead.
public enum BlockingWorkers {
    /// Runs `body(0..<count)` on `count` threads at once and returns when all have returned and exited.
    ///
    /// The threads are joined, so nothing `body` captured is still held by a thread on its way out when this returns:
    /// a vault that `body` captures (and with it its lock) is released as soon as the caller lets go of it.
    public static func run(_ count: Int, stackSize: Int = 1 << 20, _ body: @escaping @Sendable (Int) -> Void) {
        guard count > 0 else { return }
        var attributes = pthread_attr_t()
        guard pthread_attr_init(&attributes) == 0 else {
            for index in 0..<count { body(index) }  // no threads to be had: one after the other, on this one
            return
        }
        defer { pthread_attr_destroy(&attributes) }
        _ = pthread_attr_setstacksize(&attributes, max(stackSize, Int(PTHREAD_STACK_MIN)))  // EINVAL keeps the default
        var threads: [pthread_t] = []
        var inline: [Int] = []
        for index in 0..<count {
            let job = Unmanaged.passRetained(Job { body(index) })
            var thread = pthread_t()
            let started = pthread_create(&thread, &attributes, { context in
                // Released when this function returns, before the thread exits and its join returns.
                let job = Unmanaged<Job>.fromOpaque(context!).takeRetainedValue()
                job.body()
                return nil
            }, job.toOpaque())
            if started == 0 {
                threads.append(thread)
            } else {
                job.release()
                inline.append(index)  // out of threads (EAGAIN): this share runs on the calling thread
            }
        }
        for index in inline { body(index) }
        for thread in threads {
            let joined = pthread_join(thread, nil)
            precondition(joined == 0, "pthread_join failed: \(joined)")  // only a thread of ours, joined once: a bug if not
        }
    }

    /// Runs `work(index, notYetStarted)` for every index in `0..<count` on up to `workers` threads (`run`), each
    /// thread taking the next index as it finishes one; `notYetStarted` is how many
    /// indexes were still waiting when this one was taken. After the first error no further index is started; it is
    /// rethrown once every thread has ended.
    public static func forEach(_ count: Int, workers: Int, stackSize: Int = 1 << 20,
                               _ work: @escaping @Sendable (_ index: Int, _ notYetStarted: Int) throws -> Void) throws {
        guard count > 0 else { return }
        final class Queue: @unchecked Sendable {
            let lock = NSLock()
            var next = 0
            var error: Error?
        }
        let queue = Queue()
        let body: @Sendable (Int) -> Void = { _ in
            while true {
                let taken: (index: Int, notYetStarted: Int)? = queue.lock.withLock {
                    guard queue.error == nil, queue.next < count else { return nil }
                    defer { queue.next += 1 }
                    return (queue.next, count - queue.next - 1)
                }
                guard let taken else { return }
                do {
                    try work(taken.index, taken.notYetStarted)
                } catch {
                    queue.lock.withLock { if queue.error == nil { queue.error = error } }
                    return
                }
            }
        }
        run(max(1, min(workers, count)), stackSize: stackSize, body)
        if let error = queue.error { throw error }
    }

    private final class Job {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts `body` on a new thread; `group` (entered here, left when `body` returns) tracks it.
    public static func start(group: DispatchGroup, stackSize: Int = 1 << 20, _ body: @escaping @Sendable () -> Void) {
        group.enter()
        start(stackSize: stackSize) {
            body()
            group.leave()
        }
    }

    private static func start(stackSize: Int, _ body: @escaping @Sendable () -> Void) {
        let thread = Thread(block: body)
        thread.stackSize = stackSize
        thread.start()
    }
}
