# Sourced by abuse_suite.sh after its own scenarios: faults of the processes around a
# tunnel (an agent or app that dies mid-transfer), and loads on the relay's connections
# (idle, stalled, mutated, a hostile agent). Uses the suite's relay ($relay_pid,
# $public_port, $agent_port, $pin, $token), its tunnel (get_hello) and helpers.

# The relay's open descriptors and resident memory, from /proc.
relay_fds() { find "/proc/$relay_pid/fd" -mindepth 1 -maxdepth 1 | wc -l; }
relay_rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$relay_pid/status"; }
relay_alive() { kill -0 "$relay_pid" 2>/dev/null || fail "the relay died: $1"; }
# wait_fds_back BASELINE WHAT: the relay's descriptors drop to BASELINE (+2: a
# connection the agent opens or closes to the app meanwhile) within 30 s. Polled:
# nothing announces a descriptor closing.
wait_fds_back() {
    local deadline=$((SECONDS + 30))
    while [ "$(relay_fds)" -gt $(($1 + 2)) ]; do
        [ $SECONDS -lt $deadline ] || fail "$2: the relay holds $(relay_fds) descriptors, $1 before"
        sleep 0.2
    done
}
# json_field JSON EXPRESSION: a value from a JSON line, by a Python expression on `r`.
json_field() { python3 -c 'import json, sys; r = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"; }

# A second tunnel, "victim", with its own app: its agent and app are the ones killed.
victim_runs=0
start_victim_app() {
    : >victim_app.out
    python3 "$scripts/abuse_app.py" >victim_app.out &
    victim_app_pid=$!
    pids+=("$victim_app_pid")
    wait_for victim_app.out '^[0-9]'
    victim_app_port="$(head -n1 victim_app.out)"
}
start_victim_agent() {
    victim_runs=$((victim_runs + 1))
    victim_log="victim$victim_runs.out"
    : >"$victim_log"
    PINHOLE_TOKEN="$token" "$bin/agent" "$victim_app_port" --relay "127.0.0.1:$agent_port" --pin "$pin" \
        --name victim --log-format json --inspect off >"$victim_log" 2>>victim.err &
    victim_pid=$!
    pids+=("$victim_pid")
    wait_for "$victim_log" '"event":"tunnel_ready"'
}
# kill_victim [SIGNAL]: stops the victim agent and reaps it (quietly: bash would
# report a job killed by a signal).
kill_victim() {
    kill "${1:--TERM}" "$victim_pid"
    wait "$victim_pid" 2>/dev/null || true
}
victim=victim.tunnels.test
victim_reach=(--resolve "$victim:$public_port:127.0.0.1" -sS --max-time 20)
start_victim_app
start_victim_agent

# kill_mid_transfer upload|download: moves $big bytes through the victim tunnel, kills
# its agent (-9) once under way, and sets `result` to how the transfer ended (see
# mid_transfer.py); the relay and the other tunnel must carry on, and a new agent
# must serve the name again.
big=$((1 << 30))
kill_mid_transfer() {
    : >transfer.out
    python3 "$scripts/mid_transfer.py" "$public_port" "$victim" "$1" "$big" >transfer.out &
    local transfer_pid=$!
    wait_for transfer.out '^started'
    kill_victim -9
    wait "$transfer_pid" || fail "mid_transfer.py $1 failed"
    result="$(tail -n1 transfer.out)"
    relay_alive "agent killed mid-$1"
    get_hello || fail "GET through the other tunnel after an agent was killed mid-$1"
    start_victim_agent
    [ "$(curl "${victim_reach[@]}" "http://$victim:$public_port/hello")" = "Hello, world!" ] ||
        fail "a new agent does not serve the name after the $1"
}

# 6. The agent is killed mid-download: the client sees the answer cut.
kill_mid_transfer download
[ "$(json_field "$result" 'r["status"]')" = "HTTP/1.1 200 OK" ] || fail "download: $result"
[ "$(json_field "$result" 'r["ended"] != "complete" and r["moved"] < r["expected"]')" = True ] ||
    fail "the download was not cut: $result"
echo "agent kill -9 mid-download: the client's answer cut after $(json_field "$result" 'r["moved"]') of $big bytes ($(json_field "$result" 'r["ended"]')); a new agent serves"

# 7. The agent is killed mid-upload, before the app answered: the client gets 502.
kill_mid_transfer upload
[ "$(json_field "$result" 'r["status"]')" = "HTTP/1.1 502 Bad Gateway" ] || fail "upload: $result"
echo "agent kill -9 mid-upload: $(json_field "$result" 'r["status"]') after $(json_field "$result" 'r["moved"]') bytes sent; a new agent serves"

# 8. The app crashes mid-body: the client sees the answer cut; the agent's log says so.
crashed=$((8 << 20))
set +e
curl "${victim_reach[@]}" -o crash.body "http://$victim:$public_port/crash?bytes=$crashed" 2>crash.err
curl_status=$?
set -e
[ "$curl_status" = 18 ] || fail "the client did not see the cut (curl exit $curl_status: $(cat crash.err))"
wait_for "$victim_log" '"path":"/crash?bytes='"$crashed"'"'
crash_line="$(grep '"path":"/crash' "$victim_log")"
echo "$crash_line" | grep -q '"error":"cut short after [0-9]* of '"$crashed"' bytes' ||
    fail "the agent's log does not say the answer was cut short: $crash_line"
relay_alive "app crashed mid-body"
echo "app crash mid-body: curl exit 18 after $(stat -c %s crash.body) of $crashed bytes; agent log: $(json_field "$crash_line" 'r["error"]')"
kill_victim

# 9. 3,000 idle connections (1,000 from each of three addresses, the cap per address in
# this suite); one more from a full address is closed at once; the relay serves all the
# while, and gives every descriptor back.
baseline=$(relay_fds)
mkfifo idle.hold
: >idle.out
python3 "$scripts/idle_connections.py" "$public_port" 3000 127.0.0.2 127.0.0.3 127.0.0.4 <idle.hold >idle.out &
idle_pid=$!
exec 7>idle.hold
wait_for idle.out '^open'
[ "$(cat idle.out)" = "open 0" ] || fail "idle connections within the caps were closed: $(cat idle.out)"
# The clients' connects complete in the kernel before the relay accepts them: polled
# until it has (nothing announces an accept), for at most 30 s.
deadline=$((SECONDS + 30))
while held=$(relay_fds) && [ "$held" -lt $((baseline + 3000)) ]; do
    [ $SECONDS -lt $deadline ] || fail "3,000 idle connections hold only $((held - baseline)) descriptors"
    sleep 0.2
done
over="$(python3 "$scripts/idle_connections.py" "$public_port" 1 127.0.0.2 </dev/null)"
[ "$over" = "open 1" ] || fail "a connection over the per-address cap was kept: $over"
get_hello || fail "GET while 3,000 connections idle"
exec 7>&-
wait "$idle_pid"
wait_fds_back "$baseline" "3,000 idle connections closed"
echo "3,000 idle connections: relay descriptors $baseline -> $held -> $(relay_fds); the 1,001st from one address closed at once; served meanwhile"

# 10. 64 stalled readers of large downloads, from one address: the relay holds little
# for them, and cuts them off after --stall-timeout (4 s here).
baseline=$(relay_fds)
rss_before=$(relay_rss_kib)
mkfifo stalled.hold
: >readers.out
python3 "$scripts/stalled_readers.py" "$public_port" "$name" 64 $((64 << 20)) 127.0.0.6 <stalled.hold >readers.out &
readers_pid=$!
exec 8>stalled.hold
wait_for readers.out '^stalled'
rss_peak=$(relay_rss_kib)
deadline=$((SECONDS + 30))
while [ "$(relay_fds)" -gt $((baseline + 2)) ]; do
    [ $SECONDS -lt $deadline ] || fail "64 stalled readers were not cut off within 30 s ($(relay_fds) descriptors, $baseline before)"
    rss=$(relay_rss_kib)
    [ "$rss" -le "$rss_peak" ] || rss_peak=$rss
    sleep 0.2
done
exec 8>&-
wait "$readers_pid"
growth=$(((rss_peak - rss_before) / 1024))
# Each may hold its tunnel stream's window (1 MiB) and its connection's write buffer
# (256 KiB): 80 MiB for 64, where the downloads themselves are 4 GiB. Allow the
# allocator a sixth more.
[ "$growth" -lt 96 ] || fail "the relay grew by $growth MiB for 64 stalled readers"
get_hello || fail "GET after the stalled readers"
echo "64 stalled readers of 64 MiB each: relay RSS $((rss_before / 1024)) -> peak $((rss_peak / 1024)) MiB (+$growth), all cut off by --stall-timeout"

# 11. Mutated requests: every connection answered or closed, no crash, descriptors back.
mutations=$([ "$short" = --short ] && echo 1000 || echo 10000)
baseline=$(relay_fds)
counts="$(python3 "$scripts/mutated_requests.py" "$public_port" "$name" "$mutations" 128 127.0.0.7)"
[ "$(json_field "$counts" 'r.get("unanswered", 0)')" = 0 ] || fail "mutated requests left unanswered: $counts"
relay_alive "after $mutations mutated requests"
wait_fds_back "$baseline" "$mutations mutated requests"
get_hello || fail "GET after mutated requests"
echo "$mutations mutated requests: $counts; relay descriptors back to $(relay_fds) ($baseline before)"

# 12. A hostile agent with a valid token: PING and SETTINGS floods, a 1 MiB header
# block. The relay ends its tunnel, and only its: the suite's tunnel serves throughout.
for mode in ping settings headers; do
    : >hostile.out
    python3 "$scripts/hostile_agent.py" "$agent_port" "$token" "hostile-$mode" "$mode" >hostile.out &
    hostile_pid=$!
    wait_for hostile.out '^ready'
    if [ "$mode" = headers ]; then
        hostile="hostile-headers.tunnels.test"
        answer="$(curl --resolve "$hostile:$public_port:127.0.0.1" -s --max-time 20 -o /dev/null -w '%{http_code}' \
            "http://$hostile:$public_port/" || true)"
        [ "$answer" = 502 ] || fail "a request to the hostile agent got $answer, not 502"
    fi
    get_hello || fail "GET during the hostile agent's $mode"
    wait "$hostile_pid" || fail "hostile_agent.py $mode failed: $(cat hostile.out)"
    result="$(tail -n1 hostile.out)"
    [ "$(json_field "$result" 'r["ended"]')" != timeout ] || fail "the relay let a $mode flood run 30 s: $result"
    relay_alive "hostile agent, $mode"
    get_hello || fail "GET after the hostile agent's $mode"
    echo "hostile agent, $mode: ended ($(json_field "$result" 'r["ended"]') after $(json_field "$result" 'r["sent"]') frames); the other tunnel served"
done

# 13. The relay is killed (-9) and started again on its ports, with its certificate:
# the agent reconnects by itself and the tunnel serves again. (Who owns a name or a
# dedicated port after the restart is the registry's to keep; see the README.)
kill -9 "$relay_pid"
wait "$relay_pid" 2>/dev/null || true
: >relay2.out
"$bin/relay" --bind 127.0.0.1 --public-port "$public_port" --agent-port "$agent_port" --domain tunnels.test \
    --token "$token" >relay2.out 2>relay.err &
relay_pid=$!
pids+=("$relay_pid")
wait_for relay2.out "On your laptop"
grep -q "pin      $pin" relay2.out || fail "the restarted relay has another certificate: $(cat relay2.out)"
wait_for agent.out '"event":"reconnecting"'
wait_for agent.out '"event":"tunnel_ready"' 2
get_hello || fail "GET after the relay's restart"
echo "relay kill -9 and restart: the agent reconnected by itself and serves again"
