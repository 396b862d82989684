/*
 * fuzz/fuzz_xs_parse.c: the parsers of xenstore values that a guest writes
 * (common/xs_util.c: gv_parse_u64 behind every number, state, port and ref
 * the backend reads; gv_parse_refs behind the vring ref lists), and the
 * simulated xenstored's path and permission parsers (sim/xenstored_tree.c),
 * which see every client's paths.
 *
 * Input: [selector][max: 8 bytes][value...]. Checks: an accepted number is
 * at most max and prints back to itself; an accepted ref list has 1..max
 * refs; a canonical path is absolute, has no "//" and no trailing "/".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "fuzz.h"
#include "../sim/xenstored.h"

/* From common/xs_util.h, which cannot be included beside xenstored.h: both
 * it (through <xenstore.h>) and the simulated daemon define XS_PERM_*. */
#define GV_XS_VALUE_MAX 4096
int gv_parse_u64(const char *s, uint64_t max, uint64_t *out);
int gv_parse_refs(char *buf, grant_ref_t *refs, unsigned max, unsigned *n);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[GV_XS_VALUE_MAX + 1], again[32];
	uint64_t max = 0, v;
	grant_ref_t refs[16];
	unsigned n;
	size_t len;
	int rc;

	if (size < 9)
		return 0;
	memcpy(&max, data + 1, 8);
	len = size - 9 < GV_XS_VALUE_MAX ? size - 9 : GV_XS_VALUE_MAX;
	memcpy(buf, data + 9, len);
	buf[len] = 0;           /* xenstore values reach the parsers NUL-terminated */

	switch (data[0] % 4) {
	case 0:
		rc = gv_parse_u64(buf, max, &v);
		if (rc == 0) {
			uint64_t w;

			FUZZ_ASSERT(v <= max);
			snprintf(again, sizeof(again), "%" PRIu64, v);
			FUZZ_ASSERT(gv_parse_u64(again, max, &w) == 0 && w == v);
		} else {
			FUZZ_ASSERT(rc == -EINVAL || rc == -ERANGE);
		}
		break;
	case 1:
		rc = gv_parse_refs(buf, refs, (unsigned)(max % 17), &n);
		if (rc == 0)
			FUZZ_ASSERT(n >= 1 && n <= max % 17);
		else
			FUZZ_ASSERT(rc == -EINVAL || rc == -ERANGE);
		break;
	case 2: {
		char out[3100];

		rc = xs_canonical_path((domid_t)max, buf, out, sizeof(out));
		if (rc == 0) {
			size_t l = strlen(out);

			FUZZ_ASSERT(out[0] == '/' || out[0] == '@');
			FUZZ_ASSERT(out[0] == '@' || !strstr(out, "//"));
			FUZZ_ASSERT(l == 1 || out[0] == '@' || out[l - 1] != '/');
			FUZZ_ASSERT(xs_is_child(out, out));
		}
		break;
	}
	case 3: {
		struct xs_perm p;

		rc = xs_parse_perm(buf, &p);
		if (rc == 0)
			FUZZ_ASSERT(p.perm <= 3);
		break;
	}
	}
	return 0;
}

/* xenstored_tree.c pulls in xenstored_conn.c, which wants the daemon's globals;
 * nothing here serves a socket */
const char *sim_dir = "/nonexistent";
bool sim_scatter_refs;
char *sim_path(char *buf, size_t len, domid_t domid, const char *leaf)
{
	(void)buf; (void)len; (void)domid; (void)leaf;
	return NULL;
}
