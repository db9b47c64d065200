#if canImport(Glibc)
import Glibc
#endif
import Foundation
import ShredVault
#if SHREDVAULT_LIBFUZZER
import CFuzzDriver
#endif

/// `shredvault-fuzz`: runs the fuzz targets of `FuzzTargets` (see tools/fuzz).
///
/// - Built by `tools/fuzz` with `-sanitize=fuzzer,address -DSHREDVAULT_LIBFUZZER`, it is a libFuzzer binary (`main`
///   hands its arguments to libFuzzer's driver, which calls `LLVMFuzzerTestOneInput` below):
///   `SHREDVAULT_FUZZ_TARGET=<target> shredvault-fuzz [libFuzzer options] CORPUS_DIR…`.
/// - In the normal build it replays inputs: `shredvault-fuzz <target> FILE…` runs each file once and prints how many
///   ran and how many the code under test accepted (a crash is a failure); `shredvault-fuzz --list` prints the targets.
#if SHREDVAULT_LIBFUZZER
/// The target named by SHREDVAULT_FUZZ_TARGET, looked up once.
let selectedTarget: FuzzTargets.Target = {
    guard let name = getenv("SHREDVAULT_FUZZ_TARGET").map({ String(cString: $0) }), let target = FuzzTargets.named(name) else {
        ShredVaultFuzz.fail("set SHREDVAULT_FUZZ_TARGET to one of: " + FuzzTargets.all.map(\.name).joined(separator: " "))
    }
    return target
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    selectedTarget.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

func runLibFuzzer() -> Never {
    // One-time allocations (the fixture vault, lazily initialised statics) happen here, before libFuzzer's leak
    // checks start, so LeakSanitizer does not count them against the first input.
    for warmUp: [UInt8] in [[], [0], [1]] { selectedTarget.run(warmUp) }
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzerTestOneInput(data, size) }
    FuzzTargets.cleanUp()
    exit(status)
}
#endif

@main
struct ShredVaultFuzz {
    static func main() {
        if CommandLine.arguments.dropFirst() == ["--list"] {
            for t in FuzzTargets.all { print("\(t.name)\t\(t.maxLength)\t\(t.summary)") }
            return
        }
        #if SHREDVAULT_LIBFUZZER
        runLibFuzzer()
        #else
        replay()
        #endif
    }

    static func replay() {
        var arguments = CommandLine.arguments
        arguments.removeFirst()
        guard let name = arguments.first, let target = FuzzTargets.named(name) else {
            fail("usage: shredvault-fuzz TARGET FILE… | --list   (targets: " + FuzzTargets.all.map(\.name).joined(separator: " ") + ")")
        }
        var count = 0, accepted = 0
        for path in arguments.dropFirst() {
            guard let data = FileManager.default.contents(atPath: path) else { fail("cannot read \(path)") }
            if target.run(Array(data)) { accepted += 1 }
            count += 1
        }
        FuzzTargets.cleanUp()
        print("\(target.name): \(count) input\(count == 1 ? "" : "s") ran, \(accepted) accepted")
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("shredvault-fuzz: \(message)\n".utf8))
        exit(64)
    }
}
