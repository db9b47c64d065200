import ArgumentParser
import Foundation
import ShredVault

/// The one place where library errors become exit codes (documented in `shredvault --help`).
enum ExitCodes {
    static let internalError: Int32 = 1
    static let usage: Int32 = 64
    static let dataError: Int32 = 65
    static let notFound: Int32 = 66
    static let unsupported: Int32 = 69
    static let cannotCreate: Int32 = 73
    static let ioError: Int32 = 74
    static let keyError: Int32 = 77
    static let violations: Int32 = 2
    /// The job finished, but not for everyone: `archive` users that failed or whose source could not be removed
    /// (each named on stderr and in the JSON report); the others were done.
    static let partialFailure: Int32 = 3
    static let blockedByHold: Int32 = 10
    static let unrecoverable: Int32 = 11
    static let clockRefused: Int32 = 12
    static let keyringMismatch: Int32 = 13
    static let locked: Int32 = 75
    /// The bundle store (S3) is unreachable, refuses the credentials, lacks the bucket, or a request to it failed.
    static let objectStore: Int32 = 14
    /// `status --health` found the vault unhealthy (reasons on stderr).
    static let unhealthy: Int32 = 20

    static func code(for error: VaultError) -> Int32 {
        switch error {
        case .notABundle, .malformedHeader, .corruptBundle, .invalidContents, .invalidSource, .malformedInput, .bundleMismatch, .notGenuine,
             .notVerified, .invalidConfig: return dataError
        case .unsupportedVersion, .unsupportedAlgorithm: return unsupported
        case .wrongKeyOrModifiedHeader, .keyFile, .restoreKeyRequired, .wrongRestoreKey: return keyError
        case .targetExists, .vaultExists: return cannotCreate
        case .notFound, .vaultNotFound, .unknownUser, .holdNotFound, .keyringMissing: return notFound
        case .database: return ioError
        case .locked: return locked
        case .blockedByHold, .holdRequired: return blockedByHold
        case .unrecoverable, .snapshotPastWindow: return unrecoverable
        case .violations: return violations
        case .clockRefused: return clockRefused
        case .keyringMismatch: return keyringMismatch
        case .invalidArgument: return usage
        case .io: return ioError
        case .objectStore, .sourceStore: return objectStore
        case .notArchived, .backupIncomplete: return notFound
        case .backupTargetRefused: return cannotCreate
        }
    }
}

/// Runs a command body, turning any library error into one line on stderr and its exit code.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        do {
            try body()
        } catch let exit as ExitCode {
            // The command reported its outcome (e.g. a blocked deletion, exit 10); closing must still succeed.
            try OpenVaults.shared.closeAll()
            throw exit
        } catch {
            // The command failed: close what it opened (so its databases end as cleanly as they would on success),
            // and report the command's error, not a secondary one.
            try? OpenVaults.shared.closeAll()
            throw error
        }
        try OpenVaults.shared.closeAll()
    } catch let error as VaultError {
        printError(error.description)
        throw ExitCode(ExitCodes.code(for: error))
    } catch let error as ExitCode {
        throw error
    } catch {
        printError("unexpected error: \(error)")
        throw ExitCode(ExitCodes.internalError)
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("shredvault: error: \(message)\n".utf8))
}

/// Prints a JSON object on stdout, through `Output.json` (sorted keys, `schemaVersion`).
func printJSON(_ object: [String: Any]) {
    do { try Output.json(object: object) } catch { FileHandle.standardOutput.write(Data("{}\n".utf8)) }
}
