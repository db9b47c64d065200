#ifndef SHREDVAULT_CFUZZDRIVER_H
#define SHREDVAULT_CFUZZDRIVER_H
#include <stddef.h>
#include <stdint.h>

/// libFuzzer's entry point for programs that have their own main (clang's libFuzzer, linked by
/// `swiftc -sanitize=fuzzer`). Only the sanitized build of shredvault-fuzz (-DSHREDVAULT_LIBFUZZER) calls it;
/// SwiftPM gives executables their own main, so libFuzzer's is never linked.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
