/*
 * fuzz/replay.c: runs each file of a corpus through a fuzz target without
 * libFuzzer, so that make test (the ordinary build, or make asan) replays
 * every committed seed and regression input. Usage: replay_<target>
 * FILE|DIR...; prints "PASS replay <target> (N inputs)"; a broken invariant
 * or a sanitizer report aborts, and the test script counts that as FAIL.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "fuzz.h"

static unsigned count;

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long len;

	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc(len > 0 ? (size_t)len : 1);
	if (!buf || (len > 0 && fread(buf, 1, (size_t)len, f) != (size_t)len)) {
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)len);
	free(buf);
	count++;
	return 0;
}

int main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/');

	name = name ? name + 1 : argv[0];
	for (int i = 1; i < argc; i++) {
		struct stat st;
		DIR *d;
		struct dirent *e;

		if (stat(argv[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
			if (run_file(argv[i]) < 0) {
				printf("FAIL %s: cannot read %s\n", name, argv[i]);
				return 1;
			}
			continue;
		}
		d = opendir(argv[i]);
		while (d && (e = readdir(d))) {
			char path[4096];

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			if (run_file(path) < 0) {
				printf("FAIL %s: cannot read %s\n", name, path);
				return 1;
			}
		}
		if (d)
			closedir(d);
	}
	printf("PASS %s (%u inputs)\n", name, count);
	return count ? 0 : 1;
}
