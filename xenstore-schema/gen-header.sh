#!/bin/sh
# xenstore-schema/gen-header.sh SCHEMA: prints the C header of key names.
# Keys with <n> become printf formats taking the queue index (%u).
set -eu
awk -F '\t' '
BEGIN {
	print "/* Generated from xenstore-schema/virtio.tsv by gen-header.sh: do not edit. */"
	print "#ifndef GV_XS_KEYS_H"
	print "#define GV_XS_KEYS_H"
	print "#define GV_XS_BACKEND_DIR_FMT  \"/local/domain/%u/backend/virtio/%u/%u\"  /* be, fe, devid */"
	print "#define GV_XS_FRONTEND_DIR_FMT \"/local/domain/%u/device/virtio/%u\"       /* fe, devid */"
	print "#define GV_XS_DOMAIN_DIR_FMT   \"/local/domain/%u\""
}
/^#/ || NF < 9 { next }
{
	key = $2
	gsub(/<n>/, "%u", key)
	printf "#define %-24s \"%s\"\t/* %s %s, %s, %s */\n", $8, key, $1, $3, $5, $6
}
END { print "#endif" }
' "$1"
