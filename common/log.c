/* common/log.c: see log.h. Preserves errno. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "log.h"

enum gv_log_level gv_log_threshold = GV_LOG_INFO;
static const char *program = "grant-virtio";

void gv_log_set_program(const char *name)
{
	const char *slash = strrchr(name, '/');

	program = slash ? slash + 1 : name;
}

void gv_log(enum gv_log_level lvl, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	int saved = errno;
	char line[1024];
	va_list ap;

	if (lvl > gv_log_threshold)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s: %s\n", program, names[lvl], line);
	errno = saved;
}
