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
/// - Built by `tools/fuzz` with `-sanitize=fuzzer,address -DSHREDVAULT_LIBFUZZER`, it is a libFuzzer binary:
///   `SHREDVAULT_FUZZ_TARGET=<target> shredvault-fuzz [libFuzzer options] CORPUS_DIR…`.
/// - In the normal build it replays inputs: `shredvault-fuzz <target> FILE…` runs each file once and prints how many
///   ran (a crash is a failure); `shredvault-fuzz --list` prints the targets.
@main
struct ShredVaultFuzz {
    nonisolated(unsafe) static var target: FuzzTargets.Target?

    static func main() {
        var arguments = CommandLine.arguments
        #if SHREDVAULT_LIBFUZZER
        guard let name = getenv("SHREDVAULT_FUZZ_TARGET").map({ String(cString: $0) }), let target = FuzzTargets.named(name) else {
            fail("set SHREDVAULT_FUZZ_TARGET to one of: " + FuzzTargets.all.map(\.name).joined(separator: " "))
        }
        Self.target = target
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        _ = arguments
        let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            ShredVaultFuzz.target!.run(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        }
        FuzzTargets.cleanUp()
        exit(status)
        #else
        arguments.removeFirst()
        if arguments == ["--list"] {
            for t in FuzzTargets.all { print("\(t.name)\t\(t.maxLength)\t\(t.summary)") }
            return
        }
        guard let name = arguments.first, let target = FuzzTargets.named(name) else {
            fail("usage: shredvault-fuzz TARGET FILE… | --list   (targets: " + FuzzTargets.all.map(\.name).joined(separator: " ") + ")")
        }
        var count = 0
        for path in arguments.dropFirst() {
            guard let file = fopen(path, "rb") else { fail("cannot open \(path)") }
            var bytes = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = fread(&buffer, 1, buffer.count, file)
                if n == 0 { break }
                bytes += buffer[0..<n]
            }
            let failed = ferror(file) != 0
            fclose(file)
            if failed { fail("cannot read \(path)") }
            target.run(bytes)
            count += 1
        }
        FuzzTargets.cleanUp()
        print("\(target.name): \(count) input\(count == 1 ? "" : "s") ran")
        #endif
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("shredvault-fuzz: \(message)\n".utf8))
        exit(64)
    }
}
