#!/usr/bin/env bash
# The fault and abuse suite (issue 15): what strangers on the public port, and token
# guessers on the agent port, can do to a relay and its tunnels. Relay, agent and app
# run as processes on loopback; every load is bounded in count and time.
#   abuse_suite.sh BIN_DIR [--short]
# --short (what CI runs) uses smaller counts where the count is not the point.
# Prints one line per scenario with its measurement, then "ok"; exits non-zero on the
# first failure.
set -euo pipefail
bin="$(cd "$1" && pwd)"
short="${2:-}"
scripts="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=processes.sh
source "$scripts/processes.sh"
: >app.out
token=suite-token-0123456789

python3 "$scripts/abuse_app.py" >app.out &
pids+=($!)
wait_for app.out '^[0-9]'
app_port="$(head -n1 app.out)"

# Short limits, so the stalled-upload scenario ends in seconds.
"$bin/relay" --bind 127.0.0.1 --public-port 0 --agent-port 0 --domain tunnels.test --token "$token" \
    --max-in-flight-per-address 64 --in-flight-wait 1 --stall-timeout 4 --max-connections-per-address 1000 \
    >relay.out 2>relay.err &
relay_pid=$!
pids+=($relay_pid)
wait_for relay.out "On your laptop"
agent_port="$(sed -n 's/^  agents   127\.0\.0\.1:\([0-9]*\).*/\1/p' relay.out)"
pin="$(sed -n 's/^  pin      \(sha256:[0-9a-f]*\)$/\1/p' relay.out)"
PINHOLE_TOKEN="$token" "$bin/agent" "$app_port" --relay "127.0.0.1:$agent_port" --pin "$pin" --name suite \
    --log-format json >agent.out 2>agent.err &
pids+=($!)
wait_for agent.out '"event":"tunnel_ready"'
public_port="$(sed -n 's/.*"event":"tunnel_ready".*"port":\([0-9]*\).*/\1/p' agent.out | head -n1)"
name="suite.tunnels.test"
host="$name:$public_port"
reach=(--resolve "$host:127.0.0.1" -sS --max-time 20)
get_hello() { [ "$(curl "${reach[@]}" "$@" "http://$host/hello")" = "Hello, world!" ]; }
get_hello || fail "GET through the tunnel"

# 1. Aborted uploads: each resets a stream the agent opened; the tunnel stays up.
count=1200
start=$(date +%s.%N)
answered="$(python3 "$scripts/aborted_uploads.py" "$public_port" "$name" "$count" 50)"
took=$(echo "$(date +%s.%N) - $start" | bc)
get_hello || fail "GET after $count aborted uploads"
ready="$(grep -c '"event":"tunnel_ready"' agent.out)"
[ "$ready" = 1 ] || fail "the tunnel was re-established after aborted uploads ($ready tunnel_ready lines)"
echo "aborted uploads: $answered of $count reached the app and were reset in ${took} s; the tunnel stayed up"

# 2. A 72 KiB head: 431 naming the limit, not 502.
python3 - "$public_port" "$name" >head.txt <<'PY'
import socket, sys
port, host = int(sys.argv[1]), sys.argv[2]
head = f"GET / HTTP/1.1\r\nHost: {host}\r\nX-Big: {'a' * 72 * 1024}\r\n\r\n".encode()
with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
    connection.sendall(head)
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
print(received.decode("latin-1"))
PY
head -n1 head.txt | grep -q "^HTTP/1.1 431 " || fail "72 KiB head: $(head -c 300 head.txt)"
grep -q "larger than 64 KiB" head.txt || fail "431 without the limit: $(cat head.txt)"
echo "72 KiB head: $(head -n1 head.txt | tr -d '\r')"

# 3. Connection naming thousands of options beside thousands of fields, under the limit:
# answered at once (linear parsing), the unnamed fields kept.
python3 - "$public_port" "$name" >options.txt <<'PY'
import socket, sys, time
port, host = int(sys.argv[1]), sys.argv[2]
named = ",".join([f"f{i}" for i in range(1000)] + [f"o{i}" for i in range(5000)])
fields = "".join(f"f{i}: v\r\n" for i in range(2000))
head = f"GET /hello HTTP/1.1\r\nHost: {host}\r\nConnection: {named}, close\r\n{fields}\r\n".encode()
started = time.monotonic()
with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
    connection.sendall(head)
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
print(f"{len(head)} {time.monotonic() - started:.3f} {received.decode('latin-1').splitlines()[0]}")
PY
read -r size seconds status_line <options.txt
case "$status_line" in "HTTP/1.1 200 "* | "HTTP/1.1 431 "*) ;; *) fail "Connection options head: $(cat options.txt)" ;; esac
echo "Connection naming 6,000 options beside 2,000 fields ($size bytes): $status_line in $seconds s"

# 4. Stalled uploads from one address: the per-address cap answers 503 fast, the
# stall timeout 408; another loopback address is served meanwhile. Past the relay's
# connection cap for one address (1,000 here), a connection is closed unread.
stalled=$([ "$short" = --short ] && echo 100 || echo 1100)
: >stalled.txt
python3 "$scripts/stalled_uploads.py" "$public_port" "$name" "$stalled" >stalled.txt &
stalled_pid=$!
wait_for stalled.txt "^sent" || fail "stalled uploads did not start"
get_hello --interface 127.0.0.2 || fail "GET from 127.0.0.2 while $stalled uploads stall"
wait "$stalled_pid"
result="$(tail -n1 stalled.txt)"
python3 - "$result" "$stalled" <<'PY' || fail "stalled uploads: $result"
import json, sys
result, count = json.loads(sys.argv[1]), int(sys.argv[2])
counts = result["counts"]
closed = max(count - 1000, 0)
assert counts.get("closed", 0) == closed, counts
assert counts.get("HTTP/1.1 408 Request Timeout") == 64, counts
assert counts.get("HTTP/1.1 503 Service Unavailable") == count - 64 - closed, counts
assert counts.get("unanswered") == 0, counts
PY
echo "stalled uploads: $stalled from 127.0.0.1 -> $(echo "$result" | python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"])'); 127.0.0.2 served"

# 5. Parallel token guessing from one address.
guesses="$(python3 "$scripts/token_guess.py" "$agent_port" 60)"
python3 - "$guesses" <<'PY' || fail "token guessing: $guesses"
import json, sys
counts = json.loads(sys.argv[1])["counts"]
assert 1 <= counts.get("bad_token", 0) <= 10 and counts.get("bad_token", 0) + counts.get("slow_down", 0) == 60, counts
PY
echo "token guessing: 60 parallel wrong-token hellos -> $(echo "$guesses" | python3 -c 'import json,sys; print(json.load(sys.stdin)["counts"])')"

# 6-12: faults and abuse of processes and connections (faults.sh, sourced: it shares
# this script's relay, tunnel and helpers).
# shellcheck source=faults.sh
source "$scripts/faults.sh"

get_hello || fail "GET at the end"
# Once before the relay's restart (faults.sh, last), once after it.
[ "$(grep -c '"event":"tunnel_ready"' agent.out)" = 2 ] || fail "the tunnel was re-established during the suite"

# 14-17: name, alias and port squatting, and a relay restart keeping owners
# (squatting.sh, sourced: a relay of dedicated ports of its own, with two tokens).
# shellcheck source=squatting.sh
source "$scripts/squatting.sh"
echo ok
