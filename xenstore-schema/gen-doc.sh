#!/bin/sh
# xenstore-schema/gen-doc.sh SCHEMA: prints the human table (Markdown).
set -eu
echo "# xenstore keys of grant-virtio"
echo
echo "Generated from \`virtio.tsv\` by \`gen-doc.sh\` (\`make schema-doc\`): edit the TSV, not this file."
echo
echo "- **DOM** = \`/local/domain/<frontend-domid>\`"
echo "- **BE** = \`/local/domain/<backend-domid>/backend/virtio/<frontend-domid>/<devid>\`"
echo "- **FE** = \`/local/domain/<frontend-domid>/device/virtio/<devid>\`"
echo "- perms: Xen's list, owner first: n none, r read, w write, b both; BE/FE = the domain of that side."
echo
echo "| dir | key | writer | perms | format | written in | device | meaning |"
echo "|---|---|---|---|---|---|---|---|"
awk -F '\t' '/^#/ || NF < 9 { next } { printf "| %s | `%s` | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $9 }' "$1"
