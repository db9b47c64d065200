/// Every failure VaultCrypto reports. Messages never contain key or plaintext bytes.
public enum CryptoError: Error, Equatable, CustomStringConvertible {
    /// An OpenSSL call failed; `function` names it, `detail` is OpenSSL's error string.
    case openSSL(function: String, detail: String)
    /// A key had the wrong length.
    case invalidKeySize(expected: Int, actual: Int)
    /// A nonce had the wrong length.
    case invalidNonceSize(expected: Int, actual: Int)
    /// An AEAD tag did not verify: the data was modified, or the key, nonce or AAD is wrong.
    case authenticationFailed
    /// Cobblestone: the key commitment did not match: wrong key, or the header/context was modified.
    case commitmentMismatch
    /// The ciphertext ended early: header or a chunk is cut short, or the final short chunk is missing.
    case truncated
    /// Cobblestone: the chunk counter reached 2^38, the most chunks one message may have.
    case chunkLimitExceeded
    /// A P-256 public key was rejected (encoding, not on the curve, point at infinity).
    case invalidPublicKey(String)
    /// An input had an unusable length; the associated text says which and why.
    case invalidLength(String)

    public var description: String {
        switch self {
        case let .openSSL(function, detail):
            return "OpenSSL call \(function) failed: \(detail)."
        case let .invalidKeySize(expected, actual):
            return "The key is \(actual) bytes long but must be \(expected) bytes."
        case let .invalidNonceSize(expected, actual):
            return "The nonce is \(actual) bytes long but must be \(expected) bytes."
        case .authenticationFailed:
            return "Authentication failed: the data was modified or the key does not match."
        case .commitmentMismatch:
            return "The key commitment does not match: wrong key, or the header or context was modified."
        case .truncated:
            return "The ciphertext is truncated: it ends before its final chunk."
        case .chunkLimitExceeded:
            return "The message exceeds the maximum of 2^38 chunks."
        case let .invalidPublicKey(reason):
            return "The P-256 public key is invalid: \(reason)."
        case let .invalidLength(reason):
            return "Invalid length: \(reason)."
        }
    }
}
