/*
 * test/check.h: the test registry of every test program.
 *
 *   static int t_roundtrip(void) { CHECK(x == 1); CHECK_EQ(a, b); return 0; }
 *   static const struct gv_test tests[] = { TEST(t_roundtrip), { 0 } };
 *   int main(int argc, char **argv) { return gv_test_main(argc, argv, tests); }
 *
 * Each test prints "PASS name" or "FAIL name: file:line: what"; test/run-tests.sh
 * counts those lines. Checks never compile out (no NDEBUG dependence).
 * `prog NAME...` runs only the named tests; `prog -l` lists them.
 *
 * A test that needs a fixture: TEST_WITH(t_body, setup, teardown) runs setup
 * (non-zero = the test fails), then the body, then teardown whatever the body
 * did; the test's name is the body's.
 */
#ifndef GV_TEST_CHECK_H
#define GV_TEST_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gv_test {
	const char *name;
	int (*fn)(void);
	int (*setup)(void);
	void (*teardown)(void);
};
#define TEST(fn) { #fn, fn, NULL, NULL }
#define TEST_WITH(fn, setup, teardown) { #fn, fn, setup, teardown }

void gv_check_failed(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define CHECK(cond) do { \
	if (!(cond)) { gv_check_failed(__FILE__, __LINE__, "%s", #cond); return -1; } \
} while (0)
#define CHECK_EQ(a, b) do { \
	long long _a = (long long)(a), _b = (long long)(b); \
	if (_a != _b) { gv_check_failed(__FILE__, __LINE__, "%s == %s (%lld != %lld)", #a, #b, _a, _b); return -1; } \
} while (0)
#define CHECK_MSG(cond, ...) do { \
	if (!(cond)) { gv_check_failed(__FILE__, __LINE__, __VA_ARGS__); return -1; } \
} while (0)

int gv_test_main(int argc, char **argv, const struct gv_test *tests);

#endif
