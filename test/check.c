/* test/check.c: see check.h. */
#include <stdarg.h>
#include "check.h"

static char failure[512];

void gv_check_failed(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(failure, sizeof(failure), "%s:%d: ", file, line);

	va_start(ap, fmt);
	vsnprintf(failure + n, sizeof(failure) - (size_t)n, fmt, ap);
	va_end(ap);
}

/* setup, the body, teardown whatever the body did */
static int run_one(const struct gv_test *t)
{
	int rc = t->setup ? t->setup() : 0;

	if (rc == 0)
		rc = t->fn();
	if (t->teardown)
		t->teardown();
	return rc;
}

static int wanted(int argc, char **argv, const char *name)
{
	if (argc < 2)
		return 1;
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], name))
			return 1;
	return 0;
}

int gv_test_main(int argc, char **argv, const struct gv_test *tests)
{
	int failed = 0;

	if (argc == 2 && !strcmp(argv[1], "-l")) {
		for (const struct gv_test *t = tests; t->name; t++)
			puts(t->name);
		return 0;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (const struct gv_test *t = tests; t->name; t++) {
		if (!wanted(argc, argv, t->name))
			continue;
		failure[0] = 0;
		if (run_one(t) == 0) {
			printf("PASS %s\n", t->name);
		} else {
			printf("FAIL %s: %s\n", t->name, failure[0] ? failure : "returned failure");
			failed++;
		}
	}
	return failed ? 1 : 0;
}
