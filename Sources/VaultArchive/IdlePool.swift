import Synchronization

/// A few idle objects kept process-wide for reuse (the zstd contexts): `take` removes the most recently kept one that
/// matches, `keep` holds one unless `limit` are kept already, and then the caller frees it.
final class IdlePool<Element: Sendable>: Sendable {
    private let limit: Int
    private let items = Mutex<[Element]>([])

    init(limit: Int) { self.limit = limit }

    func take(where matches: (Element) -> Bool = { _ in true }) -> Element? {
        items.withLock { items in items.lastIndex(where: matches).map { items.remove(at: $0) } }
    }

    /// Whether `element` was kept; when not, the caller still owns it.
    func keep(_ element: Element) -> Bool {
        items.withLock { items in
            guard items.count < limit else { return false }
            items.append(element)
            return true
        }
    }
}
