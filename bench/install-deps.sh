#!/bin/sh
# bench/install-deps.sh: what `make bench` needs beyond the build: gnuplot
# (Debian's gnuplot-nox, no X) for bench/out/chart.png. A no-op when present;
# otherwise apt-get update first, then install (as root).
command -v gnuplot >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "bench: gnuplot is missing; as root: apt-get update && apt-get install gnuplot-nox"
	exit 1
fi
apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox
