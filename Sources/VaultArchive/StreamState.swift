/// The life cycle shared by the streaming types: usable, cleanly finished, or failed for good.
///
/// Failures are sticky: once a C library or a caller's closure has failed, the stream's position is
/// unknown, so every later call throws the first error again.
enum StreamState {
    case open
    case finished
    case failed(any Error)

    /// Throws the stored error if the stream has failed.
    func throwIfFailed() throws {
        if case let .failed(error) = self { throw error }
    }

    var isFinished: Bool {
        if case .finished = self { return true }
        return false
    }
}
