import CPKCS11

/// Every failure VaultHSM reports. Messages name the PKCS#11 function and return code, the module
/// path, the token or object label; never a PIN or key bytes.
public enum PKCS11Error: Error, Equatable, CustomStringConvertible {
    /// No file at the module path.
    case moduleNotFound(path: String)
    /// `dlopen` failed; `detail` is `dlerror()`'s text.
    case moduleLoadFailed(path: String, detail: String)
    /// The library has no `C_GetFunctionList`, or its function list lacks a function VaultHSM calls.
    case missingFunction(path: String, function: String)
    /// A PKCS#11 call returned something other than `CKR_OK`.
    case call(function: String, code: UInt)
    /// No token with this label is present.
    case tokenNotFound(label: String)
    /// More than one present token carries this label.
    case ambiguousToken(label: String, count: Int)
    /// A token or object label that PKCS#11 cannot hold (too long, empty, ...).
    case invalidLabel(String)
    /// No object with this label is on the token.
    case objectNotFound(label: String)
    /// More than one key object carries this label, so the key to seal with is ambiguous.
    case duplicateObject(label: String, count: Int)
    /// The AES-GCM tag did not verify: the data, the AAD or the generation is wrong.
    case authenticationFailed
    /// A sealed value is too short or otherwise malformed before any token call.
    case invalidSealedData(String)
    /// The token returned something unusable (wrong length, bad attribute).
    case unexpectedResponse(function: String, detail: String)
    /// No PIN source was given: neither the environment variable nor a PIN file.
    case pinMissing(environmentVariable: String)
    /// The PIN file cannot be used: `reason` says why (missing, not a regular file, group/other
    /// permission bits set, empty, too long).
    case pinFile(path: String, reason: String)
    /// A `pkcs11:` URI (RFC 7512) could not be parsed or lacks a required attribute.
    case invalidURI(String)

    /// The raw `CK_RV` of a failed call, or nil for errors not coming from the token.
    public var returnCode: UInt? {
        if case let .call(_, code) = self { return code }
        return nil
    }

    public var description: String {
        switch self {
        case let .moduleNotFound(path):
            return "PKCS#11 module not found: no file at \(path)."
        case let .moduleLoadFailed(path, detail):
            return "PKCS#11 module \(path) could not be loaded: \(detail)."
        case let .missingFunction(path, function):
            return "PKCS#11 module \(path) does not provide \(function)."
        case let .call(function, code):
            let hint: String
            switch code {
            case UInt(CKR_PIN_INCORRECT): hint = " (wrong PIN)"
            case UInt(CKR_PIN_LOCKED): hint = " (the user PIN is locked)"
            case UInt(CKR_USER_PIN_NOT_INITIALIZED): hint = " (the token has no user PIN)"
            case UInt(CKR_ATTRIBUTE_SENSITIVE): hint = " (the attribute is sensitive and cannot be read)"
            default: hint = ""
            }
            return "PKCS#11 call \(function) failed: \(PKCS11ReturnCode.name(code))\(hint)."
        case let .tokenNotFound(label):
            return "No PKCS#11 token labelled \"\(label)\" is present."
        case let .ambiguousToken(label, count):
            return "\(count) PKCS#11 tokens are labelled \"\(label)\"; token labels must be unique."
        case let .invalidLabel(reason):
            return "Invalid PKCS#11 label: \(reason)."
        case let .objectNotFound(label):
            return "No key object labelled \"\(label)\" is on the token."
        case let .duplicateObject(label, count):
            return "\(count) key objects are labelled \"\(label)\" on the token; expected one."
        case .authenticationFailed:
            return "Authentication failed: the sealed data, its AAD or the root generation does not match."
        case let .invalidSealedData(reason):
            return "Invalid sealed data: \(reason)."
        case let .unexpectedResponse(function, detail):
            return "PKCS#11 call \(function) returned an unexpected result: \(detail)."
        case let .pinMissing(variable):
            return "No PKCS#11 PIN: set \(variable) or give a PIN file (mode 0600)."
        case let .pinFile(path, reason):
            return "PKCS#11 PIN file \(path) cannot be used: \(reason)."
        case let .invalidURI(reason):
            return "Invalid pkcs11: URI: \(reason)."
        }
    }
}

/// Names for `CK_RV` values (the common ones; others print as hex).
public enum PKCS11ReturnCode {
    private static let names: [UInt: String] = {
        let table: [(CK_RV, String)] = [
            (CK_RV(CKR_OK), "CKR_OK"),
            (CK_RV(CKR_CANCEL), "CKR_CANCEL"),
            (CK_RV(CKR_HOST_MEMORY), "CKR_HOST_MEMORY"),
            (CK_RV(CKR_SLOT_ID_INVALID), "CKR_SLOT_ID_INVALID"),
            (CK_RV(CKR_GENERAL_ERROR), "CKR_GENERAL_ERROR"),
            (CK_RV(CKR_FUNCTION_FAILED), "CKR_FUNCTION_FAILED"),
            (CK_RV(CKR_ARGUMENTS_BAD), "CKR_ARGUMENTS_BAD"),
            (CK_RV(CKR_CANT_LOCK), "CKR_CANT_LOCK"),
            (CK_RV(CKR_ATTRIBUTE_READ_ONLY), "CKR_ATTRIBUTE_READ_ONLY"),
            (CK_RV(CKR_ATTRIBUTE_SENSITIVE), "CKR_ATTRIBUTE_SENSITIVE"),
            (CK_RV(CKR_ATTRIBUTE_TYPE_INVALID), "CKR_ATTRIBUTE_TYPE_INVALID"),
            (CK_RV(CKR_ATTRIBUTE_VALUE_INVALID), "CKR_ATTRIBUTE_VALUE_INVALID"),
            (CK_RV(CKR_DATA_INVALID), "CKR_DATA_INVALID"),
            (CK_RV(CKR_DATA_LEN_RANGE), "CKR_DATA_LEN_RANGE"),
            (CK_RV(CKR_DEVICE_ERROR), "CKR_DEVICE_ERROR"),
            (CK_RV(CKR_DEVICE_MEMORY), "CKR_DEVICE_MEMORY"),
            (CK_RV(CKR_DEVICE_REMOVED), "CKR_DEVICE_REMOVED"),
            (CK_RV(CKR_ENCRYPTED_DATA_INVALID), "CKR_ENCRYPTED_DATA_INVALID"),
            (CK_RV(CKR_ENCRYPTED_DATA_LEN_RANGE), "CKR_ENCRYPTED_DATA_LEN_RANGE"),
            (CK_RV(CKR_FUNCTION_NOT_SUPPORTED), "CKR_FUNCTION_NOT_SUPPORTED"),
            (CK_RV(CKR_KEY_HANDLE_INVALID), "CKR_KEY_HANDLE_INVALID"),
            (CK_RV(CKR_KEY_SIZE_RANGE), "CKR_KEY_SIZE_RANGE"),
            (CK_RV(CKR_KEY_TYPE_INCONSISTENT), "CKR_KEY_TYPE_INCONSISTENT"),
            (CK_RV(CKR_KEY_FUNCTION_NOT_PERMITTED), "CKR_KEY_FUNCTION_NOT_PERMITTED"),
            (CK_RV(CKR_KEY_UNEXTRACTABLE), "CKR_KEY_UNEXTRACTABLE"),
            (CK_RV(CKR_MECHANISM_INVALID), "CKR_MECHANISM_INVALID"),
            (CK_RV(CKR_MECHANISM_PARAM_INVALID), "CKR_MECHANISM_PARAM_INVALID"),
            (CK_RV(CKR_OBJECT_HANDLE_INVALID), "CKR_OBJECT_HANDLE_INVALID"),
            (CK_RV(CKR_OPERATION_ACTIVE), "CKR_OPERATION_ACTIVE"),
            (CK_RV(CKR_OPERATION_NOT_INITIALIZED), "CKR_OPERATION_NOT_INITIALIZED"),
            (CK_RV(CKR_PIN_INCORRECT), "CKR_PIN_INCORRECT"),
            (CK_RV(CKR_PIN_INVALID), "CKR_PIN_INVALID"),
            (CK_RV(CKR_PIN_LEN_RANGE), "CKR_PIN_LEN_RANGE"),
            (CK_RV(CKR_PIN_EXPIRED), "CKR_PIN_EXPIRED"),
            (CK_RV(CKR_PIN_LOCKED), "CKR_PIN_LOCKED"),
            (CK_RV(CKR_SESSION_CLOSED), "CKR_SESSION_CLOSED"),
            (CK_RV(CKR_SESSION_COUNT), "CKR_SESSION_COUNT"),
            (CK_RV(CKR_SESSION_HANDLE_INVALID), "CKR_SESSION_HANDLE_INVALID"),
            (CK_RV(CKR_SESSION_PARALLEL_NOT_SUPPORTED), "CKR_SESSION_PARALLEL_NOT_SUPPORTED"),
            (CK_RV(CKR_SESSION_READ_ONLY), "CKR_SESSION_READ_ONLY"),
            (CK_RV(CKR_SESSION_EXISTS), "CKR_SESSION_EXISTS"),
            (CK_RV(CKR_TEMPLATE_INCOMPLETE), "CKR_TEMPLATE_INCOMPLETE"),
            (CK_RV(CKR_TEMPLATE_INCONSISTENT), "CKR_TEMPLATE_INCONSISTENT"),
            (CK_RV(CKR_TOKEN_NOT_PRESENT), "CKR_TOKEN_NOT_PRESENT"),
            (CK_RV(CKR_TOKEN_NOT_RECOGNIZED), "CKR_TOKEN_NOT_RECOGNIZED"),
            (CK_RV(CKR_TOKEN_WRITE_PROTECTED), "CKR_TOKEN_WRITE_PROTECTED"),
            (CK_RV(CKR_USER_ALREADY_LOGGED_IN), "CKR_USER_ALREADY_LOGGED_IN"),
            (CK_RV(CKR_USER_NOT_LOGGED_IN), "CKR_USER_NOT_LOGGED_IN"),
            (CK_RV(CKR_USER_PIN_NOT_INITIALIZED), "CKR_USER_PIN_NOT_INITIALIZED"),
            (CK_RV(CKR_USER_TYPE_INVALID), "CKR_USER_TYPE_INVALID"),
            (CK_RV(CKR_USER_ANOTHER_ALREADY_LOGGED_IN), "CKR_USER_ANOTHER_ALREADY_LOGGED_IN"),
            (CK_RV(CKR_USER_TOO_MANY_TYPES), "CKR_USER_TOO_MANY_TYPES"),
            (CK_RV(CKR_RANDOM_NO_RNG), "CKR_RANDOM_NO_RNG"),
            (CK_RV(CKR_DOMAIN_PARAMS_INVALID), "CKR_DOMAIN_PARAMS_INVALID"),
            (CK_RV(CKR_CURVE_NOT_SUPPORTED), "CKR_CURVE_NOT_SUPPORTED"),
            (CK_RV(CKR_BUFFER_TOO_SMALL), "CKR_BUFFER_TOO_SMALL"),
            (CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED), "CKR_CRYPTOKI_NOT_INITIALIZED"),
            (CK_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED), "CKR_CRYPTOKI_ALREADY_INITIALIZED"),
            (CK_RV(CKR_FUNCTION_REJECTED), "CKR_FUNCTION_REJECTED"),
        ]
        return Dictionary(table.map { (UInt($0.0), $0.1) }, uniquingKeysWith: { first, _ in first })
    }()

    /// `CKR_…` name of `code`, or `CKR_0x…` in hex for a code not in the table.
    public static func name(_ code: UInt) -> String {
        names[code] ?? "CKR_0x" + String(code, radix: 16, uppercase: true)
    }
}

/// Throws `PKCS11Error.call` unless `rv` is `CKR_OK`.
@inline(__always)
func checkRV(_ rv: CK_RV, _ function: String) throws {
    guard rv == CK_RV(CKR_OK) else { throw PKCS11Error.call(function: function, code: UInt(rv)) }
}
