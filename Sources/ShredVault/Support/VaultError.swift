import VaultArchive
import VaultCrypto

/// Every failure the ShredVault library reports. Each message names what failed and what to do next;
/// none contains key material. The CLI maps each case to a documented exit code (see README "Exit codes").
public enum VaultError: Error, Equatable, CustomStringConvertible {
    // Bundle format (vault-format.md §2)
    /// The file does not start with the bundle magic.
    case notABundle(path: String)
    /// The bundle was written by a newer format version than this build reads.
    case unsupportedVersion(path: String, version: Int)
    /// Unknown algorithm id in the header.
    case unsupportedAlgorithm(path: String, algorithm: Int)
    /// A header field violates the fixed layout (reserved bits, lengths, user id syntax).
    case malformedHeader(path: String, reason: String)
    /// The Cobblestone commitment did not match: wrong data key, or the header was modified.
    case wrongKeyOrModifiedHeader(path: String)
    /// Authentication, truncation or decompression failure inside the encrypted payload.
    case corruptBundle(path: String, reason: String)
    /// The decrypted archive breaks the tar/manifest rules (unsafe path, link, device, duplicate, unlisted, hash mismatch).
    case invalidContents(path: String, reason: String)

    // Inputs and outputs
    /// A source file or directory cannot be archived as it is.
    case invalidSource(path: String, reason: String)
    /// The restore/open target already exists.
    case targetExists(path: String)
    /// A file that must exist does not.
    case notFound(path: String, what: String)
    /// A key file is missing, malformed or has unsafe permissions.
    case keyFile(path: String, reason: String)
    /// A command-line value is malformed.
    case invalidArgument(String)
    /// A system call failed.
    case io(operation: String, path: String, errno: Int32)

    public var description: String {
        switch self {
        case .notABundle(let path):
            return "\(path) is not a ShredVault bundle (bad magic); check the path"
        case .unsupportedVersion(let path, let version):
            return "\(path) uses bundle format version \(version), which this shredvault does not read; upgrade shredvault"
        case .unsupportedAlgorithm(let path, let algorithm):
            return "\(path) uses unknown algorithm id \(algorithm); upgrade shredvault or check the file's origin"
        case .malformedHeader(let path, let reason):
            return "\(path) has a malformed header: \(reason); the file is corrupt or not a bundle"
        case .wrongKeyOrModifiedHeader(let path):
            return "\(path): wrong data key, or the bundle header was modified (key commitment mismatch)"
        case .corruptBundle(let path, let reason):
            return "\(path) is corrupt or truncated: \(reason); restore it from a replica"
        case .invalidContents(let path, let reason):
            return "\(path) holds invalid contents: \(reason); nothing was extracted"
        case .invalidSource(let path, let reason):
            return "cannot archive \(path): \(reason)"
        case .targetExists(let path):
            return "\(path) already exists; choose a new target directory"
        case .notFound(let path, let what):
            return "\(what) \(path) does not exist"
        case .keyFile(let path, let reason):
            return "key file \(path): \(reason)"
        case .invalidArgument(let message):
            return message
        case .io(let operation, let path, let code):
            return "\(operation) \(path) failed: \(String(cString: strerror(code)))"
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

extension VaultError {
    /// Translates a lower-layer error raised while decrypting/decompressing/reading a bundle.
    static func fromPayload(_ error: Error, path: String) -> Error {
        switch error {
        case let e as VaultError: return e
        case CryptoError.commitmentMismatch: return VaultError.wrongKeyOrModifiedHeader(path: path)
        case let e as CryptoError: return VaultError.corruptBundle(path: path, reason: e.description)
        case let e as ArchiveError: return VaultError.corruptBundle(path: path, reason: e.description)
        default: return error
        }
    }
}
