#!/bin/sh
# test/test_status_json.sh: `gv-backend --status --json` and the control
# socket's protocol, on the simulated Xen. The JSON parses (python3's json)
# before any I/O and the counters are zero; a guest writes and reads 1 MiB
# and holds the device (gv-frontend --hold): per queue and per device the
# requests, bytes read and written, latency percentiles and map-cache pages
# moved, no error, nothing in flight, and the queues add up to the device;
# after the guest detaches the device's totals stay. The socket answers
# "status json", "status", a client that says nothing (the table), and an
# unknown request (one error line). Prints PASS/FAIL lines for
# test/run-tests.sh; every wait is bounded (tail -f and timeouts).
set -u
B=${GV_BUILD:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/test/lib.sh"
gv_test_init status
test_cleanup() { exec 7>&- 2>/dev/null; }
# json NAME PYTHON-EXPRESSION...: fetches --status --json into $work/s.json,
# and checks each expression (d: the parsed object, blk: the blk device,
# q: its queues) is true; a false one is printed
json() {
	name=$1; shift
	if ! "$B/gv-backend" --status --json >"$work/s.json" 2>"$work/s.err"; then
		echo "FAIL $name (--status --json failed: $(cat "$work/s.err"))"; return
	fi
	python3 - "$work/s.json" "$@" <<'EOF' && echo "PASS $name" || echo "FAIL $name"
import json, sys
d = json.load(open(sys.argv[1]))
blk = [x for x in d["devices"] if x["type"] == "blk"][0]
rng = [x for x in d["devices"] if x["type"] == "rng"][0]
q = blk["queues"]
bad = [e for e in sys.argv[2:] if not eval(e)]
for e in bad:
    print("  false:", e, file=sys.stderr)
if bad:
    print(json.dumps(blk, indent=1), file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}
. "$top/tools/lib.sh"

truncate -s 8M "$work/disk.img"
start_daemon gv-simxen "$work/sim.log" --dir "$GV_SIM_DIR"; simpid=$pid
start_daemon gv-backend "$work/be.log" --disk "guest1:0=$work/disk.img"; bepid=$pid
"$B/gv-xl" create "$top/examples/guest.cfg" >/dev/null

json "json before any I/O: format 1, two devices, nothing counted" \
	'd["format"] == 1 and d["pid"] > 0 and len(d["devices"]) == 2' \
	'blk["guest"] == "guest1" and blk["domid"] == 1 and blk["devid"] == 0' \
	'blk["backing"]["path"].endswith("/disk.img") and blk["backing"]["read_only"] is False' \
	'rng["backing"] == "getrandom" and rng["devid"] == 1' \
	'blk["total"]["requests"] == 0 and blk["total"]["latency_us"]["p50"] == 0'
check "--json without --status is refused" sh -c '! "$1/gv-backend" --json 2>/dev/null' sh "$B"

# a guest writes and reads back 1 MiB (bounce: a persistent pool, so the
# backend's map cache is used), then stays attached
mkfifo "$work/hold"
GV_DOMID=1 timeout 60 "$B/gv-frontend" --devid 0 --hold verify --size 1M --io-size 64K --depth 4 \
	<"$work/hold" >"$work/fe.log" 2>&1 &
fepid=$!
exec 7>"$work/hold"
check "the guest did its I/O and holds the device" wait_log 30 "$work/fe.log" "holding the device"

json "json with the guest connected: queues and counters moved" \
	'blk["state"] == "Connected" and blk["features"].startswith("0x") and len(q) >= 1' \
	'blk["total"]["writes"] >= 16 and blk["total"]["reads"] >= 16' \
	'blk["total"]["bytes_written"] == 1 << 20 and blk["total"]["bytes_read"] == 1 << 20' \
	'blk["total"]["errors"] == 0 and blk["in_flight"] == 0' \
	'blk["total"]["requests"] == sum(x["requests"] for x in q)' \
	'blk["total"]["bytes_read"] == sum(x["bytes_read"] for x in q)' \
	'all(x["in_flight"] == 0 and x["size"] > 0 for x in q)' \
	'0 < blk["total"]["latency_us"]["p50"] <= blk["total"]["latency_us"]["p99"] <= blk["total"]["latency_us"]["max"]' \
	'all(x["latency_us"]["p99"] <= x["latency_us"]["max"] for x in q if x["requests"])' \
	'blk["map_cache_pages"] > 0 and blk["map_cache_pages"] == sum(x["map_cache"]["pages"] for x in q)' \
	'blk["io"] in ("io_uring", "synchronous") and blk["capacity_sectors"] == 16384' \
	'blk["config_generation"] == 0' \
	'd["grants"]["mapped_now"] >= blk["map_cache_pages"]'
check "text status has the queue latency" sh -c \
	'"$1/gv-backend" --status | grep -Eq "^    queue 0: [1-9][0-9]* requests, .*; latency p50 [0-9.]+ us, p99 [0-9.]+ us$"' sh "$B"

# online resize while the guest holds the device: gv-frontend prints it
truncate -s 16M "$work/disk.img"
check "gv-backend --resize guest1:0 publishes the grown image" sh -c \
	'"$1/gv-backend" --resize guest1:0 | grep -q "resized from 16384 to 32768 sectors (config-generation 1)"' sh "$B"
check "gv-frontend --hold prints the config change" wait_log 30 "$work/fe.log" \
	"^config change 1: capacity 32768 sectors (16.0 MiB)"
json "json after the resize: the new capacity and generation" \
	'blk["capacity_sectors"] == 32768 and blk["config_generation"] == 1'

exec 7>&-
wait_bounded "$fepid" 30; rc=$?; fepid=
check "the guest detached cleanly" [ "$rc" -eq 0 ]
json "json after the guest detached: the device's totals stay" \
	'blk["state"] in ("Closed", "InitWait") and blk["queues"] == [] and blk["in_flight"] == 0' \
	'blk["total"]["bytes_written"] == 1 << 20 and blk["total"]["bytes_read"] == 1 << 20' \
	'blk["total"]["latency_us"]["p50"] > 0 and d["grants"]["mapped_now"] == 0'

# the socket's protocol, as a monitor speaks it
sock=$GV_SIM_DIR/gv-backend.sock
talk() { # talk REQUEST: what the daemon answers; an empty REQUEST sends nothing but EOF
	python3 - "$sock" "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(sys.argv[1])
if sys.argv[2] not in ("-", ""):
    s.sendall(sys.argv[2].encode().decode("unicode_escape").encode())
if sys.argv[2] == "":
    s.shutdown(socket.SHUT_WR)
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
sys.stdout.write(out.decode())
EOF
}
check "socket: 'status json' answers JSON" sh -c \
	'printf "%s" "$1" | python3 -c "import json,sys; json.load(sys.stdin)"' sh "$(talk 'status json\n')"
check "socket: 'status' answers the table" sh -c 'echo "$1" | grep -q "^gv-backend pid "' sh "$(talk 'status\n')"
check "socket: EOF without a request answers the table" sh -c 'echo "$1" | grep -q "^gv-backend pid "' \
	sh "$(talk '')"
check "socket: silence answers the table (after the wait)" sh -c 'echo "$1" | grep -q "^gv-backend pid "' \
	sh "$(talk '-')"
check "socket: an unknown request gets one error line" sh -c \
	'[ "$1" = "error: unknown request '"'"'frobnicate'"'"' (expected: status, status json, resize, resize GUEST DEVID)" ]' \
	sh "$(talk 'frobnicate\n')"
check "socket: a request line too long is refused" sh -c '[ "$1" = "error: request line too long" ]' \
	sh "$(talk "$(printf '%0100d' 0)")"
check "the daemon is still serving" sh -c '"$1/gv-backend" --status | grep -q "^serving "' sh "$B"
