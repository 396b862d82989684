/* common/log.c: see log.h. Preserves errno. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "log.h"

enum gv_log_level gv_log_threshold = GV_LOG_INFO;
static const char *program = "grant-virtio";

void gv_log_set_program(const char *name)
{
	const char *slash = strrchr(name, '/');

	program = slash ? slash + 1 : name;
}

/* Under systemd, stderr is a journal stream and $JOURNAL_STREAM names it
 * ("device:inode"); then each line starts with the syslog priority in angle
 * brackets (sd-daemon's convention), so the journal stores real levels.
 * Checked once: the stream is inherited at start. */
static int journal_prefix(void)
{
	static int known = -1;
	const char *js;
	struct stat st;
	unsigned long long dev, ino;

	if (known >= 0)
		return known;
	known = 0;
	js = getenv("JOURNAL_STREAM");
	if (js && sscanf(js, "%llu:%llu", &dev, &ino) == 2 && fstat(2, &st) == 0 &&
	    (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino)
		known = 1;
	return known;
}

void gv_log(enum gv_log_level lvl, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	static const char prio[] = { '3', '4', '6', '7' };   /* LOG_ERR .. LOG_DEBUG */
	int saved = errno;
	char line[1024];
	va_list ap;

	if (lvl > gv_log_threshold)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (journal_prefix())
		fprintf(stderr, "<%c>%s: %s: %s\n", prio[lvl], program, names[lvl], line);
	else
		fprintf(stderr, "%s: %s: %s\n", program, names[lvl], line);
	errno = saved;
}
