/*
 * fuzz/fuzz.h: what every fuzz target shares: the libFuzzer entry point and
 * an assertion that holds in every build (a failed invariant is a finding,
 * the same under libFuzzer and under the corpus replay of make test).
 */
#ifndef GV_FUZZ_H
#define GV_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(c) do { \
	if (!(c)) { \
		fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #c); \
		abort(); \
	} \
} while (0)

#endif
