#!/bin/sh
# xen-test/bench-report.sh: the table of `make xen-bench`, from the
# "GV-BENCH <row> <workload> <MiB/s> <bytes per request>" lines that
# bench.sh left in xen-test/out/serial.log (one boot). For each row and
# workload the median of its runs (rounds) counts; ratios are to the blkfront
# row (Linux's xen-blkfront/xen-blkback) and to dom0-local (dom0 reading its
# own ramdisk) of the same boot. Writes xen-test/out/xen-bench.json.
set -u
here=$(cd "$(dirname "$0")" && pwd)
log="$here/out/serial.log.clean"
json="$here/out/xen-bench.json"
[ -f "$log" ] || { echo "xen-bench: no $log: did the boot run?"; exit 1; }
grep -a '^\[xen_bench[a-z_]*\] GV-BENCH ' "$log" | sed 's/^\[xen_bench[a-z_]*\] //' >"$here/out/xen-bench.lines"
[ -s "$here/out/xen-bench.lines" ] || { echo "xen-bench: no GV-BENCH results in the serial log"; exit 1; }
date=$(date -u '+%Y-%m-%d %H:%M UTC')
echo "xen-bench: make xen-bench, $date; Xen 4.20 under QEMU TCG (2 vCPUs), guest PV 1 vCPU;"
echo "  every row reads the same dom0 ramdisk (brd, 256 MiB); *-qd1 rows at queue depth 1 (gv-rawread,"
echo "  gv-frontend bench, gv-dio), *-qd32 rows with 32 threads of gv-dio; median of the runs"
awk -v json="$json" -v date="$date" '
$4 == "-" { failed[$3, $2] = 1; if (!($3 in seenw)) { seenw[$3] = 1; wl[nw++] = $3 } }
$4 != "-" && $2 == "blkfront" { lastblk[$3] = $4 + 0 }
$4 != "-" && $2 ~ /^pair-grant-(copy|map)$/ && lastblk[$3] > 0 {
	# xen_bench_grant: each run over the blkfront run just before it in the
	# same guest (the two guests of the scenario may see different loads)
	pk = $3 SUBSEP $2
	pr[pk, np[pk]++] = ($4 + 0) / lastblk[$3]
}
$4 != "-" {
	k = $3 SUBSEP $2
	v[k, n[k]++] = $4 + 0
	bs[$3] = $5
	if (!($3 in seenw)) { seenw[$3] = 1; wl[nw++] = $3 }
}
END {
	# the median of the runs of each row: one run of a path can be off by 2x under TCG
	for (k in n) {
		for (i = 0; i < n[k]; i++)
			for (j = i + 1; j < n[k]; j++)
				if (v[k, j] < v[k, i]) { t = v[k, i]; v[k, i] = v[k, j]; v[k, j] = t }
		h = int(n[k] / 2)
		best[k] = n[k] % 2 ? v[k, h] : (v[k, h - 1] + v[k, h]) / 2
		runs[k] = v[k, 0]
		for (i = 1; i < n[k]; i++) runs[k] = runs[k] "," v[k, i]
	}
	nr = split("dom0-local blkfront pair-pool pair-grant pair-bounce kmod-grant kmod-bounce pair-grant-copy pair-grant-map", rows, " ")
	printf "\n%-16s %-12s %9s %9s %11s %11s  %s\n", "workload", "row", "MiB/s", "IOPS",
	       "x blkfront", "x dom0-local", "runs (MiB/s, sorted)"
	printf "{\n  \"command\": \"make xen-bench\",\n  \"date\": \"%s\",\n", date > json
	printf "  \"system\": \"Xen 4.20 under QEMU TCG, dom0 1536 MiB, PV guest 256 MiB 1 vCPU, brd /dev/ram0 256 MiB in dom0\",\n" > json
	printf "  \"note\": \"queue depth 1 everywhere; median of the runs; ratios from the same boot\",\n  \"results\": [" > json
	sep = ""
	for (i = 0; i < nw; i++) {
		w = wl[i]
		b = ((w, "blkfront") in best) ? best[w, "blkfront"] : 0
		l = ((w, "dom0-local") in best) ? best[w, "dom0-local"] : 0
		for (j = 1; j <= nr; j++) {
			r = rows[j]
			if (!((w, r) in best)) { if ((w, r) in failed) printf "%-16s %-12s %9s\n", w, r, "failed"; continue }
			m = best[w, r]; iops = m * 1048576 / bs[w]
			rb = b ? m / b : 0; rl = l ? m / l : 0
			printf "%-16s %-12s %9.1f %9.0f %11s %11s  %s\n", w, r, m, iops,
			       b ? sprintf("%.2f", rb) : "-", l ? sprintf("%.2f", rl) : "-", runs[w, r]
			printf "%s\n    {\"workload\": \"%s\", \"row\": \"%s\", \"mibs\": %.1f, \"iops\": %.0f, " \
			       "\"ratio_blkfront\": %.3f, \"ratio_dom0_local\": %.3f, \"runs_mibs\": [%s]}",
			       sep, w, r, m, iops, rb, rl, runs[w, r] > json
			sep = ","
		}
		printf "\n"
	}
	printf "\n  ]\n}\n" > json
	hdr = 0
	for (i = 0; i < nw; i++)
		for (j = 1; j <= 2; j++) {
			r = j == 1 ? "pair-grant-copy" : "pair-grant-map"
			pk = wl[i] SUBSEP r
			if (!np[pk]) continue
			if (!hdr++) printf "\nxen_bench_grant, each run over the blkfront run just before it (same guest):\n"
			s = ""
			for (q = 0; q < np[pk]; q++) s = s (q ? ", " : "") sprintf("%.2f", pr[pk, q])
			printf "%-16s %-16s %s\n", wl[i], r, s
		}
}' "$here/out/xen-bench.lines"
echo "xen-bench: written $json"
