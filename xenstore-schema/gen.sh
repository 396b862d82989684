#!/bin/sh
# xenstore-schema/gen.sh MODE SCHEMA: the one reader of virtio.tsv. It checks
# every line (a malformed one is reported as SCHEMA:LINE: reason, exit 2,
# nothing printed on stdout) and prints, by MODE:
#   header  the C names of the keys (build/gen/xs_keys.h): keys with <n>
#           become printf formats taking the queue index (%u)
#   rules   the rule table gv-schema checks a store against
#           (build/gen/xs_rules.h, included by tools/gv-schema.c)
#   doc     the Markdown table (xenstore-schema/README.md: make schema-doc)
set -eu
[ $# -eq 2 ] || { echo "usage: sh gen.sh header|rules|doc SCHEMA" >&2; exit 2; }
case $1 in header|rules|doc) ;; *) echo "gen.sh: unknown mode '$1'" >&2; exit 2 ;; esac
[ -r "$2" ] || { echo "gen.sh: $2: cannot read" >&2; exit 2; }
exec awk -F '\t' -v q="'" -v mode="$1" -v file="$2" '
function fail(msg) {
	printf "%s:%d: %s\n", file, NR, msg > "/dev/stderr"
	bad = 1
	exit 2
}
function one_of(v, list,    n, a, i) {
	n = split(list, a, " ")
	for (i = 1; i <= n; i++)
		if (a[i] == v)
			return 1
	return 0
}
# "nBE,rFE" into the C initialiser of its perm list; fails on a bad one
function perms_c(s,    n, a, i, k, who, out) {
	n = split(s, a, ",")
	if (n < 1 || n > 4 || s ~ /^,|,$|,,/)
		fail("perms " q s q ": expected a list like nBE,rFE (n r w b, then BE, FE or a domain id; at most 4)")
	out = ""
	for (i = 1; i <= n; i++) {
		k = index("nrwb", substr(a[i], 1, 1)) - 1
		who = substr(a[i], 2)
		if (k < 0 || !(who == "BE" || who == "FE" || (who ~ /^[0-9]+$/ && length(who) <= 5 && who + 0 < 32752)))
			fail("perms " q s q ": expected a list like nBE,rFE (n r w b, then BE, FE or a domain id; at most 4)")
		out = out (i > 1 ? ", " : "") "{ " (who == "BE" ? "SIDE_BE, 0" : who == "FE" ? "SIDE_FE, 0" : "SIDE_ID, " (who + 0)) ", " k " }"
	}
	nperms = n
	return out
}
function key_ok(k, allow_n,    rest) {
	if (k == "" || k ~ /^\// || k ~ /\/$/ || k ~ /\/\//)
		return 0
	rest = k
	if (index(rest, "<n>")) {
		if (!allow_n)
			return 0
		sub(/<n>/, "", rest)
		if (index(rest, "<n>"))
			return 0
	}
	return rest ~ /^[-a-z0-9_\/]+$/
}
BEGIN {
	states = "Unknown Initialising InitWait Initialised Connected Closing Closed Reconfiguring Reconfigured"
	formats = "path domid uint bool hex64 state string text ref ref-list port"
	n = 0
}
/^#/ || /^$/ { next }
{
	if (NF != 9)
		fail("expected 9 tab-separated fields, found " NF)
	for (i = 1; i <= 9; i++)
		if ($i == "")
			fail("field " i " is empty")
	if (!one_of($1, "DOM BE FE DBE DFE"))
		fail("dir " q $1 q " is not DOM, BE, FE, DBE or DFE")
	if (!key_ok($2, $1 == "FE" || $1 == "DFE"))
		fail("key " q $2 q ": lower-case letters, digits, - _ /, and one <n> in FE and DFE keys only")
	if (!one_of($3, "toolstack backend frontend"))
		fail("writer " q $3 q " is not toolstack, backend or frontend")
	pc = perms_c($4)
	if (!one_of($5, formats))
		fail("unknown format " q $5 q "")
	if (!one_of($6, "create any " states))
		fail("when " q $6 q " is not create, any or a xenbus state name")
	if (($6 == "create") != ($3 == "toolstack"))
		fail("when " q "create" q " goes with writer toolstack and only with it")
	if (!one_of($7, "all blk rng"))
		fail("device " q $7 q " is not all, blk or rng")
	if ($8 !~ /^GV_XS_[A-Z0-9_]+$/ || ($8 ~ /_FMT$/) != (index($2, "<n>") > 0))
		fail("cname " q $8 q ": GV_XS_ and upper-case letters, digits, _; ending in _FMT exactly when the key has <n>")
	if (($1 SUBSEP $2) in line_of)
		fail("key " $1 " " $2 " already defined on line " line_of[$1, $2])
	if (($8 in cname_line) && cname_key[$8] != $2)
		fail("cname " $8 " already used on line " cname_line[$8] " for another key")
	line_of[$1, $2] = NR
	if (!($8 in cname_line)) {
		cname_line[$8] = NR
		cname_key[$8] = $2
		first_use[n + 1] = 1
	}
	n++
	row[n] = $0
	perms[n] = pc
	nperm[n] = nperms
}
END {
	if (bad)
		exit 2
	if (n == 0) {
		printf "%s: no keys\n", file > "/dev/stderr"
		exit 2
	}
	if (mode == "header") {
		print "/* Generated from xenstore-schema/virtio.tsv by gen.sh: do not edit. */"
		print "#ifndef GV_XS_KEYS_H"
		print "#define GV_XS_KEYS_H"
		print "#define GV_XS_BACKEND_DIR_FMT  \"/local/domain/%u/backend/virtio/%u/%u\"  /* be, fe, devid */"
		print "#define GV_XS_FRONTEND_DIR_FMT \"/local/domain/%u/device/virtio/%u\"       /* fe, devid */"
		print "#define GV_XS_DOMAIN_DIR_FMT   \"/local/domain/%u\""
		print "#define GV_XS_DISK_BACKEND_DIR_FMT  \"/local/domain/%u/backend/virtio_disk/%u/%u\"  /* be, fe, vdev */"
		print "#define GV_XS_DISK_FRONTEND_DIR_FMT \"/local/domain/%u/device/virtio_disk/%u\"       /* fe, vdev */"
		for (i = 1; i <= n; i++) {
			if (!first_use[i])
				continue
			split(row[i], f, "\t")
			key = f[2]
			gsub(/<n>/, "%u", key)
			printf "#define %-24s \"%s\"\t/* %s %s, %s, %s */\n", f[8], key, f[1], f[3], f[5], f[6]
		}
		print "#endif"
	} else if (mode == "rules") {
		print "/* Generated from xenstore-schema/virtio.tsv by gen.sh: do not edit."
		print " * The rows of struct rule (tools/gv-schema.c), in the order of the file. */"
		print "static const struct rule schema_rules[] = {"
		for (i = 1; i <= n; i++) {
			split(row[i], f, "\t")
			w = f[6] == "create" ? "WHEN_CREATE" : f[6] == "any" ? "WHEN_ANY" : "XenbusState" f[6]
			fmt = f[5]
			gsub(/-/, "_", fmt)
			printf "\t{ DIR_%s, \"%s\", W_%s, { %s }, %d, F_%s, %s, DEV_%s },\n", f[1], f[2], toupper(f[3]), perms[i], nperm[i], toupper(fmt), w, toupper(f[7])
		}
		print "};"
	} else {
		print "# xenstore keys of grant-virtio"
		print ""
		print "Generated from `virtio.tsv` by `gen.sh doc` (`make schema-doc`): edit the TSV, not this file."
		print ""
		print "- **DOM** = `/local/domain/<frontend-domid>`"
		print "- **BE** = `/local/domain/<backend-domid>/backend/virtio/<frontend-domid>/<devid>`"
		print "- **FE** = `/local/domain/<frontend-domid>/device/virtio/<devid>`"
		print "- **DBE** = `/local/domain/<backend-domid>/backend/virtio_disk/<frontend-domid>/<vdev>` (a disk from xl" q "s `disk = [\"...,specification=virtio,backendtype=standalone,grant_usage=1,target=PATH\"]`)"
		print "- **DFE** = `/local/domain/<frontend-domid>/device/virtio_disk/<vdev>`"
		print "- perms: Xen" q "s list, owner first: n none, r read, w write, b both; BE/FE = the domain of that side."
		print ""
		print "| dir | key | writer | perms | format | written in | device | meaning |"
		print "|---|---|---|---|---|---|---|---|"
		for (i = 1; i <= n; i++) {
			split(row[i], f, "\t")
			printf "| %s | `%s` | %s | %s | %s | %s | %s | %s |\n", f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[9]
		}
	}
}
' "$2"
