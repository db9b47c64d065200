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

    // Vault and jobs
    /// A SQLite database (catalog or keystore) failed.
    case database(path: String, message: String)
    /// An input file (accounts.csv) is malformed at a line.
    case malformedInput(path: String, line: Int, reason: String)
    /// A field of the vault's `config` (or a backup's copy) is missing or invalid; `field` is its JSON path.
    case invalidConfig(path: String, field: String, reason: String)
    /// No vault at the path.
    case vaultNotFound(path: String)
    /// `init` on a directory that already holds a vault.
    case vaultExists(path: String)
    /// Another job holds the vault lock.
    case locked(path: String)
    /// A job that decrypts was started without the restore key.
    case restoreKeyRequired
    /// The restore key does not open this vault's keys.
    case wrongRestoreKey
    /// The user is unknown to the vault.
    case unknownUser(String)
    /// A legal hold blocks the operation.
    case blockedByHold(user: String, cases: [String])
    /// The operation needs an active hold case on the user.
    case holdRequired(user: String, caseId: String)
    /// `hold release` of a case that is not active on the user.
    case holdNotFound(user: String, caseId: String)
    /// `delete` of a user the vault does not know, without `--not-archived` (a typo, or a user not archived yet).
    case notArchived(user: String)
    /// `backup --to` a directory that holds something other than a backup of this vault; nothing was written.
    case backupTargetRefused(path: String, reason: String)
    /// `recover --from s3://…`: the prefix holds a backup that was interrupted before its manifest was first written.
    case backupIncomplete(path: String)
    /// The data's key was destroyed.
    case unrecoverable(user: String, date: String, reason: String)
    /// A bundle file does not match its catalog entry (moved, replaced, foreign vault).
    case bundleMismatch(path: String, reason: String)
    /// G8: a bundle, sealed DEK or catalog record that this vault's jobs did not make (vault-format.md §3.10).
    case notGenuine(subject: String, reason: String)
    /// A signed object checked offline (a deletion receipt, or the trust record it is checked with) is not genuine.
    case notVerified(path: String, reason: String)
    /// A keystore snapshot whose epoch key was destroyed (G3).
    case snapshotPastWindow(path: String, takenDay: String, days: Int)
    /// `check` or `audit verify` found violations.
    case violations(count: Int)
    /// The job's clock was refused (vault-format.md §6.4): a simulated clock on a production vault, or a clock behind
    /// the latest time a job ran or too far ahead of it. The message says what to fix or to confirm.
    case clockRefused(String)
    /// The keyring is not the one bound to this vault (§5.1): empty or not a keyring, another vault's, a drill's, a
    /// replaced one, or this directory is a copy of the vault that owns it. The message names the command that fixes it.
    case keyringMismatch(path: String, reason: String)
    /// The keyring the config names does not exist (deleted or moved); the message says how to get one back.
    case keyringMissing(path: String)
    /// The bundle store (an S3 bucket, vault-format.md §6.5) failed: unreachable, wrong credentials, missing bucket,
    /// a refused or failed request. One line from VaultS3, which never holds a secret.
    case objectStore(String)
    /// An archive source in an S3 bucket (`archive --source s3://…`, §6.5) failed before anything changed:
    /// unreachable, wrong credentials, missing bucket, a refused or failed request. Exit 14, like `objectStore`.
    case sourceStore(String)

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
        case .database(let path, let message):
            return "database \(path): \(message)"
        case .malformedInput(let path, let line, let reason):
            return "\(path) line \(line): \(reason); fix the file and run again (nothing was changed)"
        case .invalidConfig(let path, let field, let reason):
            return "\(path)\(field.isEmpty ? "" : ": field " + field): \(reason); fix the config and run again (nothing was changed)"
        case .vaultNotFound(let path):
            return "no vault at \(path); create one with `shredvault init --vault \(path)` or set SHREDVAULT_VAULT"
        case .vaultExists(let path):
            return "\(path) already holds a vault; use it, or choose another directory"
        case .locked(let path):
            return "another shredvault job holds the vault lock \(path); retry later or pass --lock-wait SECONDS"
        case .restoreKeyRequired:
            return "this job decrypts and needs the restore key: pass --master-key-file FILE or set SHREDVAULT_MASTER_KEY_FILE"
        case .wrongRestoreKey:
            return "the restore key does not open this vault's keys; check --master-key-file / SHREDVAULT_MASTER_KEY_FILE"
        case .unknownUser(let user):
            return "user \(user) is unknown to this vault (never archived); check the user id"
        case .blockedByHold(let user, let cases):
            return "user \(user) is under legal hold \(cases.joined(separator: ", ")); the request is recorded as blocked and runs when the last hold is released with `shredvault hold release`"
        case .holdRequired(let user, let caseId):
            return "user \(user) has no active hold for case \(caseId); place one first with `shredvault hold place \(user) --case \(caseId) --reason TEXT`"
        case .holdNotFound(let user, let caseId):
            return "user \(user) has no active hold for case \(caseId); see `shredvault hold list --user \(user)`"
        case .notArchived(let user):
            return "user \(user) is unknown to this vault (never archived) and nothing was recorded: check the user id; if the user is "
                + "not archived yet, run the same delete with --not-archived to record the request and a tombstone, so it never is"
        case .backupIncomplete(let path):
            return "\(path) holds an incomplete backup: a backup into it was interrupted before its backup.json (written last) was first written, "
                + "so there is nothing whole to recover; run `shredvault backup --to \(path)` again to complete it, or recover from another backup"
        case .backupTargetRefused(let path, let reason):
            return "refusing to back up into \(path): \(reason); nothing was written: use a new or empty directory, or one that holds a backup of this vault"
        case .unrecoverable(let user, let date, let reason):
            return "user \(user) is unrecoverable: key destroyed on \(date) (\(reason))"
        case .bundleMismatch(let path, let reason):
            return "\(path) does not match the catalog: \(reason); run `shredvault check`"
        case .notGenuine(let subject, let reason):
            return "\(subject) was not made by this vault's jobs: \(reason); refused (run `shredvault check`)"
        case .notVerified(let path, let reason):
            return "\(path) does not verify: \(reason)"
        case .snapshotPastWindow(let path, let takenDay, let days):
            return "\(path): backup taken \(takenDay) is past the \(days)-day backup window and is permanently unreadable"
        case .violations(let count):
            return "\(count) violation\(count == 1 ? "" : "s") found"
        case .clockRefused(let message):
            return message
        case .keyringMismatch(let path, let reason):
            return "keyring \(path): \(reason)"
        case .keyringMissing(let path):
            return "keyring \(path) does not exist (it is never in a backup): if it was moved, put it back at that path; if it is lost, make a new one from the catalog with `shredvault keyring rebuild` (keystore backups taken so far become unreadable)"
        case .objectStore(let message):
            return "object store: " + message
        case .sourceStore(let message):
            return "source: " + message
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
