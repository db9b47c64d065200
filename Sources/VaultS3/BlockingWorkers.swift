import Foundation

/// Threads for work that blocks on the network. libdispatch's concurrent queues and `concurrentPerform` run at most
/// one block per core on Linux, so transfers that wait on a store would be limited to the core count: each transfer
/// in flight gets a thread of its own instead.
public enum BlockingWorkers {
    /// Runs `body(0..<count)` on `count` threads at once and returns when all have returned.
    public static func run(_ count: Int, stackSize: Int = 1 << 20, _ body: @escaping @Sendable (Int) -> Void) {
        guard count > 0 else { return }
        let done = DispatchGroup()
        for index in 0..<count {
            done.enter()
            start(stackSize: stackSize) {
                body(index)
                done.leave()
            }
        }
        done.wait()
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
