#!/usr/bin/env bash
# End to end through the built executables, with curl as the client:
#   executables.sh BIN_DIR APP_PORT
# Starts `relay` and `agent` as processes (relay on ephemeral loopback ports), waits
# for the agent's tunnel_ready line, then checks a GET, a POST body, and a 503 once
# the agent has stopped. Every wait is for a line a process prints, bounded by timeout.
set -euo pipefail
bin="$1"
app_port="$2"
# shellcheck source=processes.sh
source "$(dirname "$0")/processes.sh"

"$bin/relay" --bind 127.0.0.1 --public-port 0 --agent-port 0 --domain tunnels.test --token script-token-0123456789 \
    >relay.out 2>relay.err &
pids+=($!)
wait_for relay.out "On your laptop"
agent_port="$(sed -n 's/^  agents   127\.0\.0\.1:\([0-9]*\).*/\1/p' relay.out)"
pin="$(sed -n 's/^  pin      \(sha256:[0-9a-f]*\)$/\1/p' relay.out)"
[ -n "$agent_port" ] && [ -n "$pin" ] || fail "could not read the agent port and pin from the relay's banner"

"$bin/agent" "$app_port" --relay "127.0.0.1:$agent_port" --token script-token-0123456789 --pin "$pin" --name script \
    --log-format json >agent.out 2>agent.err &
agent_pid=$!
pids+=("$agent_pid")
wait_for agent.out '"event":"tunnel_ready"'
public_port="$(sed -n 's/.*"event":"tunnel_ready".*"port":\([0-9]*\).*/\1/p' agent.out | head -n1)"
grep -q '"authority":"script.tunnels.test:'"$public_port"'"' agent.out || fail "tunnel_ready lacks the authority: $(cat agent.out)"

host="script.tunnels.test:$public_port"
reach=(--resolve "$host:127.0.0.1" -sS)
[ "$(curl "${reach[@]}" "http://$host/hello")" = "Hello, world!" ] || fail "GET through the tunnel"
[ "$(curl "${reach[@]}" --data-binary 'a posted body' "http://$host/echo")" = "a posted body" ] || fail "POST body through the tunnel"
wait_for agent.out '"path":"/echo"'

kill -INT "$agent_pid"
# The agent prints "stopped" after it has shut down; cleanup reaps the process.
wait_for agent.out '"event":"stopped"'
wait_for relay.err "agent disconnected"
status="$(curl "${reach[@]}" -o body.txt -w '%{http_code}' "http://$host/hello")"
[ "$status" = "503" ] || fail "expected 503 after the agent stopped, got $status"
grep -q "the agent for script.tunnels.test is not connected" body.txt || fail "503 body: $(cat body.txt)"
echo ok
