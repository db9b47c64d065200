// Declarations only (include/cfuzzdriver.h); libFuzzer itself is linked by `swiftc -sanitize=fuzzer`.
#include "cfuzzdriver.h"
