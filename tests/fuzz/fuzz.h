/* fuzz: the libFuzzer entry point every target defines (and replay.c calls) */
#ifndef MTASTSD_FUZZ_H
#define MTASTSD_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
