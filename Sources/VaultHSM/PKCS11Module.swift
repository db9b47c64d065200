import CPKCS11
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A PKCS#11 module (a token's shared library, such as SoftHSM2's `libsofthsm2.so`), loaded at run time
/// with `dlopen` and entered through `C_GetFunctionList`; it is never linked.
///
/// PKCS#11 allows one `C_Initialize` per process and library, so every `PKCS11Module` for the same file
/// (after resolving symbolic links) shares one loaded, initialized library: the first instance calls
/// `C_Initialize` (with `CKF_OS_LOCKING_OK`: the library may be called from several threads), the last one
/// released calls `C_Finalize` and `dlclose`. A library that something else in the process had already
/// initialized (`CKR_CRYPTOKI_ALREADY_INITIALIZED`) is used but never finalized by VaultHSM.
///
/// `@unchecked Sendable`: its state is immutable after `init`; the shared reference counts live under a lock.
public final class PKCS11Module: @unchecked Sendable {
    /// The path as given.
    public let path: String
    let library: LoadedLibrary

    /// Loads and initializes the module at `path`.
    /// - Throws: `PKCS11Error.moduleNotFound` if no file is there, `.moduleLoadFailed` with `dlerror()`'s text,
    ///   `.missingFunction` without `C_GetFunctionList`, `.call` for a failing `C_GetFunctionList` or `C_Initialize`.
    public init(path: String) throws {
        self.path = path
        library = try LoadedLibrary.acquire(path: path)
    }

    deinit {
        library.release()
    }

    /// The function list entry `keyPath`, or `PKCS11Error.missingFunction` if the module left it empty.
    func function<F>(_ keyPath: KeyPath<CK_FUNCTION_LIST, F?>, _ name: String) throws -> F {
        guard let function = library.functions.pointee[keyPath: keyPath] else {
            throw PKCS11Error.missingFunction(path: path, function: name)
        }
        return function
    }

    /// Slots with a token present whose token label (blank-padded to 32 bytes in `CK_TOKEN_INFO`) is `label`.
    func slots(withTokenLabel label: String) throws -> [CK_SLOT_ID] {
        let getSlotList = try function(\.C_GetSlotList, "C_GetSlotList")
        let getTokenInfo = try function(\.C_GetTokenInfo, "C_GetTokenInfo")
        var slots: [CK_SLOT_ID] = []
        while true {
            var count: CK_ULONG = 0
            try checkRV(getSlotList(CK_BBOOL(CK_TRUE), nil, &count), "C_GetSlotList")
            slots = [CK_SLOT_ID](repeating: 0, count: Int(count))
            let rv = slots.withUnsafeMutableBufferPointer { getSlotList(CK_BBOOL(CK_TRUE), $0.baseAddress, &count) }
            if rv == CK_RV(CKR_BUFFER_TOO_SMALL) { continue }  // a token appeared between the two calls
            try checkRV(rv, "C_GetSlotList")
            slots.removeSubrange(Int(count)...)
            break
        }
        var matching: [CK_SLOT_ID] = []
        for slot in slots {
            var info = CK_TOKEN_INFO()
            let rv = getTokenInfo(slot, &info)
            // A token removed since C_GetSlotList is simply not a candidate.
            if rv == CK_RV(CKR_TOKEN_NOT_PRESENT) || rv == CK_RV(CKR_TOKEN_NOT_RECOGNIZED) { continue }
            try checkRV(rv, "C_GetTokenInfo")
            let tokenLabel = withUnsafeBytes(of: info.label) { PKCS11Label.decodePadded($0) }
            if tokenLabel == label { matching.append(slot) }
        }
        return matching
    }
}

/// Blank-padded PKCS#11 label fields (`CK_TOKEN_INFO.label`: 32 bytes of UTF-8, padded with spaces).
enum PKCS11Label {
    static let tokenLabelSize = 32

    static func decodePadded(_ bytes: UnsafeRawBufferPointer) -> String {
        var end = bytes.count
        while end > 0, bytes[end - 1] == UInt8(ascii: " ") || bytes[end - 1] == 0 { end -= 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<end]), as: UTF8.self)
    }
}

/// One loaded and initialized library, shared by all `PKCS11Module`s for the same file.
final class LoadedLibrary: @unchecked Sendable {
    /// Guards `loaded` and every instance's `references` and `sessions`.
    nonisolated(unsafe) private static var loaded: [String: LoadedLibrary] = [:]
    static let lock = NSLock()

    let key: String
    let handle: UnsafeMutableRawPointer
    let functions: UnsafeMutablePointer<CK_FUNCTION_LIST>
    /// False when the library was already initialized by other code in the process: then it is not finalized.
    let ownsInitialization: Bool
    private var references = 1
    /// Open logged-in `PKCS11Session`s per slot: PKCS#11 login state is per application and token, so only the
    /// last session of a slot logs out.
    private var sessions: [CK_SLOT_ID: Int] = [:]

    private init(
        key: String, handle: UnsafeMutableRawPointer, functions: UnsafeMutablePointer<CK_FUNCTION_LIST>,
        ownsInitialization: Bool
    ) {
        self.key = key
        self.handle = handle
        self.functions = functions
        self.ownsInitialization = ownsInitialization
    }

    static func acquire(path: String) throws -> LoadedLibrary {
        guard let resolved = realpath(path, nil) else {
            let error = errno
            if error == ENOENT || error == ENOTDIR { throw PKCS11Error.moduleNotFound(path: path) }
            throw PKCS11Error.moduleLoadFailed(path: path, detail: String(cString: strerror(error)))
        }
        let key = String(cString: resolved)
        free(resolved)
        lock.lock()
        defer { lock.unlock() }
        if let library = loaded[key] {
            library.references += 1
            return library
        }
        let library = try load(key: key, path: path)
        loaded[key] = library
        return library
    }

    private static func load(key: String, path: String) throws -> LoadedLibrary {
        _ = dlerror()
        guard let handle = dlopen(key, RTLD_NOW | RTLD_LOCAL) else {
            let detail = dlerror().map { String(cString: $0) } ?? "dlopen failed"
            throw PKCS11Error.moduleLoadFailed(path: path, detail: detail)
        }
        var keepHandle = false
        defer { if !keepHandle { dlclose(handle) } }
        guard let symbol = dlsym(handle, "C_GetFunctionList") else {
            throw PKCS11Error.missingFunction(path: path, function: "C_GetFunctionList")
        }
        typealias GetFunctionList = @convention(c) (
            UnsafeMutablePointer<UnsafeMutablePointer<CK_FUNCTION_LIST>?>?
        ) -> CK_RV
        let getFunctionList = unsafeBitCast(symbol, to: GetFunctionList.self)
        var list: UnsafeMutablePointer<CK_FUNCTION_LIST>?
        try checkRV(getFunctionList(&list), "C_GetFunctionList")
        guard let functions = list else {
            throw PKCS11Error.unexpectedResponse(function: "C_GetFunctionList", detail: "no function list")
        }
        guard let initialize = functions.pointee.C_Initialize else {
            throw PKCS11Error.missingFunction(path: path, function: "C_Initialize")
        }
        var arguments = CK_C_INITIALIZE_ARGS()
        arguments.flags = CK_FLAGS(CKF_OS_LOCKING_OK)
        let rv = withUnsafeMutablePointer(to: &arguments) { initialize(UnsafeMutableRawPointer($0)) }
        let owns: Bool
        if rv == CK_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED) {
            owns = false
        } else {
            try checkRV(rv, "C_Initialize")
            owns = true
        }
        keepHandle = true
        return LoadedLibrary(key: key, handle: handle, functions: functions, ownsInitialization: owns)
    }

    /// Whether the library at `path` is loaded by VaultHSM now (tests check that the last release finalized it).
    static func isLoaded(path: String) -> Bool {
        guard let resolved = realpath(path, nil) else { return false }
        let key = String(cString: resolved)
        free(resolved)
        lock.lock()
        defer { lock.unlock() }
        return loaded[key] != nil
    }

    /// Drops one reference; the last one finalizes (if this process initialized it) and unloads the library.
    /// Failures here cannot be reported (called from `deinit`) and leave nothing to undo.
    func release() {
        Self.lock.lock()
        defer { Self.lock.unlock() }
        references -= 1
        guard references == 0 else { return }
        Self.loaded[key] = nil
        if ownsInitialization, let finalize = functions.pointee.C_Finalize {
            _ = finalize(nil)
        }
        dlclose(handle)
    }

    /// Runs `body` under the registry lock with this library's per-slot session count.
    func withSessions<R>(_ body: (inout [CK_SLOT_ID: Int]) throws -> R) rethrows -> R {
        Self.lock.lock()
        defer { Self.lock.unlock() }
        return try body(&sessions)
    }
}
