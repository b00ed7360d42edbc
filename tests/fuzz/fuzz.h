/*
 * tests/fuzz/fuzz.h - what every fuzzer here shares: libFuzzer's entry point
 * (declared, since -Wmissing-prototypes wants one) and CHECK, which stops the
 * run on a broken property the way a sanitizer stops it on a memory error
 * (assert would vanish under NDEBUG).
 */
#ifndef LARK_FUZZ_H
#define LARK_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#endif
