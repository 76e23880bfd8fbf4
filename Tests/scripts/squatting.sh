# shellcheck shell=bash disable=SC2154 # bin, app_port and scripts are the suite's.
# Sourced by abuse_suite.sh after faults.sh: name, alias and port squatting, and a relay
# killed (-9) and started again with dedicated ports keeping their owners. Starts its own
# relay of dedicated ports (no --domain) with two tokens, in its own folder (so its
# certs/ and registry.json are fresh), and agents as processes; uses the suite's app
# ($app_port), $bin, $scripts and helpers. Runs in that folder, so `fail` shows this
# relay's log; goes back at the end.
mkdir squat
cd squat || fail "no folder squat in $PWD"
: >relay.out
: >relay.err
squat_started=$SECONDS
owner_token=squat-owner-token-0123456789
squatter_token=squat-other-token-0123456789

# Six free ports in a row below Linux's ephemeral range (32768-60999), so that nothing
# binding port 0 takes one while the relay is down: the agent port, the shared public
# port, then four tunnel ports.
base="$(python3 - <<'PY'
import random, socket
for _ in range(50):
    low, held = random.randrange(20000, 32000 - 6), []
    try:
        for port in range(low, low + 6):
            probe = socket.socket()
            held.append(probe)
            probe.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        for probe in held:
            probe.close()
    print(low)
    break
PY
)"
[ -n "$base" ] || fail "found no 6 free ports in a row below 32768"
squat_agent_port=$base
squat_public_port=$((base + 1))
range="$((base + 2))-$((base + 5))"

# start_squat_relay OUT: the relay, in this folder, with both tokens; each token may
# have 4 tunnels, as many as the range has ports.
start_squat_relay() {
    PINHOLE_TOKENS="$owner_token,$squatter_token" "$bin/relay" --bind 127.0.0.1 --public-host 127.0.0.1 \
        --agent-port "$squat_agent_port" --public-port "$squat_public_port" --tunnel-ports "$range" \
        --max-tunnels-per-token 4 >"$1" 2>>relay.err &
    squat_relay_pid=$!
    pids+=("$squat_relay_pid")
    wait_for "$1" "On your laptop"
}
start_squat_relay relay.out
squat_pin="$(sed -n 's/^  pin      \(sha256:[0-9a-f]*\)$/\1/p' relay.out)"

# agent_command TOKEN NAME [OPTION...]: sets `command` to an agent's command line, to
# the suite's app.
agent_command() {
    local token="$1" name="$2"
    shift 2
    command=(env PINHOLE_TOKEN="$token" "$bin/agent" "$app_port" --relay "127.0.0.1:$squat_agent_port"
        --pin "$squat_pin" --name "$name" --log-format json --inspect off "$@")
}
# start_agent LOG TOKEN NAME [OPTION...]: starts an agent that must get its tunnel; sets
# `agent_pid`, and `ready_port` to the port of its last tunnel_ready line.
start_agent() {
    local log="$1"
    shift
    agent_command "$@"
    : >"$log"
    "${command[@]}" >"$log" 2>&1 &
    agent_pid=$!
    pids+=("$agent_pid")
    wait_for "$log" '"event":"tunnel_ready"'
    ready_port="$(sed -n 's/.*"event":"tunnel_ready".*"port":\([0-9]*\).*/\1/p' "$log" | tail -n1)"
}
# stop_agent PID LOG: stops an agent (SIGTERM) and reaps it once it said "stopped".
stop_agent() {
    kill "$1"
    wait_for "$2" '"event":"stopped"'
    wait "$1" 2>/dev/null || true
}
# refused REASON SENTENCE TOKEN NAME [OPTION...]: the agent is refused for REASON (the
# relay logs it before it answers) and exits non-zero, printing SENTENCE (a fixed
# string); sets `refusal` to the relay's message, up to its advice (after ';').
refused() {
    local reason="$1" sentence="$2" status=0
    shift 2
    agent_command "$@"
    timeout 20 "${command[@]}" >refused.out 2>&1 || status=$?
    [ "$status" != 0 ] && [ "$status" != 124 ] || fail "agent $2 was not refused (exit $status): $(cat refused.out)"
    refusal="$(sed -n 's/^agent: the relay refused the tunnel: //p' refused.out)"
    grep -qF -- "$sentence" <<<"$refusal" || fail "agent $2: expected '$sentence', got: $(cat refused.out)"
    grep "agent refused" relay.err | tail -n1 | grep -qF "reason=$reason" ||
        fail "agent $2: not refused $reason: $(grep "agent refused" relay.err | tail -n1)"
    refusal="$reason: ${refusal%%;*}"
}
# answer PORT [CURL OPTION...]: sets `status` and `body` of a GET /hello on PORT.
answer() {
    local port="$1"
    shift
    status="$(curl -sS --max-time 10 -o answer.body -w '%{http_code}' "$@" "http://127.0.0.1:$port/hello")"
    body="$(cat answer.body)"
}
serves() {
    answer "$@"
    [ "$status" = 200 ] && [ "$body" = "Hello, world!" ]
}

# The owner's tunnel, with the alias checkout.shop (its --service, written into no
# Istio resources).
start_agent owner1.out "$owner_token" alpha --service checkout --namespace shop --istio none
owner_pid=$agent_pid
owner_port=$ready_port
serves "$owner_port" || fail "the owner's tunnel: $status $body"

# 14. Name squatting, while the owner is connected and after it left.
taken="the tunnel name 'alpha' belongs to another token"
refused name_taken "$taken" "$squatter_token" alpha
serves "$owner_port" || fail "the owner's tunnel after a squatter asked for its name: $status $body"
stop_agent "$owner_pid" owner1.out
wait_for relay.err "tunnel=alpha .*agent disconnected"
refused name_taken "$taken" "$squatter_token" alpha
answer "$owner_port"
[ "$status" = 503 ] && grep -qF "127.0.0.1:$owner_port" <<<"$body" ||
    fail "the away owner's port answered $status: $body"
echo "name squatting: another token asking for 'alpha' is refused with the owner connected (which kept serving) and away (its port answering 503): $refusal"

# 15. Port squatting: with the owner away, the other token's tunnels fill the range
# up to its quota and never get the owner's port.
squatter_ports=()
squatter_pids=()
for index in 1 2 3; do
    start_agent "squatter$index.out" "$squatter_token" "squatter$index"
    [ "$ready_port" != "$owner_port" ] || fail "squatter$index got the away owner's port $owner_port"
    squatter_ports+=("$ready_port")
    squatter_pids+=("$agent_pid")
done
refused no_free_port "held for other tokens' tunnel" "$squatter_token" squatter4
echo "port squatting: the owner away, the other token's tunnels got ports ${squatter_ports[*]} (the owner's: $owner_port), its 4th: $refusal"

# The owner comes back to its own port, and its alias.
start_agent owner2.out "$owner_token" alpha --service checkout --namespace shop --istio none
owner_pid=$agent_pid
[ "$ready_port" = "$owner_port" ] || fail "the owner came back on port $ready_port, not its own $owner_port"

# 16. Alias squatting: another token asking for checkout.shop is refused; anyone asking
# for checkout.billing (Host `checkout` would match both) too, naming the alias held;
# Host checkout.shop still reaches the owner's tunnel.
refused name_taken "service 'checkout.shop' is routed to another token's tunnel" "$squatter_token" beta \
    --service checkout --namespace shop --istio none
same="$refusal"
for token in "$squatter_token" "$owner_token"; do
    refused alias_taken "service 'checkout.billing' cannot be told apart from 'checkout.shop'" "$token" gamma \
        --service checkout --namespace billing --istio none
done
answer "$squat_public_port" -i -H "Host: checkout.shop"
[ "$status" = 200 ] && grep -qi "^x-pinhole-tunnel: alpha" answer.body || fail "Host checkout.shop: $status $body"
echo "alias squatting: checkout.shop from another token: $same; checkout.billing from either token: $refusal; Host checkout.shop reaches alpha"

# 17. The relay is killed (-9) and started again on its ports, in its folder. The
# owner's agent is stopped (SIGSTOP) meanwhile, so that "before it is back" is a state
# to test, not a race: its port answers 503 naming it, and the other token gets neither
# its name nor its port (nor its alias). Continued, the agent reconnects by itself, to
# its own port. The squatters' agents stop first: their ports stay their token's, so
# the range has no port left that nobody holds.
for index in 1 2 3; do stop_agent "${squatter_pids[$((index - 1))]}" "squatter$index.out"; done
kill -STOP "$owner_pid"
kill -9 "$squat_relay_pid"
wait "$squat_relay_pid" 2>/dev/null || true
start_squat_relay relay2.out
grep -qF "pin      $squat_pin" relay2.out || fail "the restarted relay has another certificate: $(cat relay2.out)"
answer "$owner_port"
[ "$status" = 503 ] && grep -qF "127.0.0.1:$owner_port" <<<"$body" ||
    fail "the owner's port after the restart, before it is back: $status $body"
away="$body"
refused name_taken "$taken" "$squatter_token" alpha
refused name_taken "service 'checkout.shop' is routed to another token's tunnel" "$squatter_token" beta \
    --service checkout --namespace shop --istio none
refused no_free_port "held for other tokens' tunnel" "$squatter_token" squatter5
kill -CONT "$owner_pid"
# The agent finds its connection cut and retries after its backoff (under 1 s at first).
wait_for owner2.out '"event":"reconnecting"'
# (Not into /dev/null: GNU grep then stops at the first match, as with -q.)
[ "$(timeout 30 grep -m2 '"event":"tunnel_ready"' <(tail -n +1 -f owner2.out) | wc -l)" = 2 ] ||
    fail "the owner's agent did not reconnect: $(tail -n 3 owner2.out)"
ports="$(sed -n 's/.*"event":"tunnel_ready".*"port":\([0-9]*\).*/\1/p' owner2.out | tr '\n' ' ')"
[ "$ports" = "$owner_port $owner_port " ] || fail "the owner's tunnel_ready ports: $ports, not $owner_port twice: $(cat owner2.out)"
serves "$owner_port" || fail "the owner's port after it reconnected: $status $body"
echo "relay kill -9 and restart: before the owner was back its port answered 503 ($away); the other token was refused its name, its alias and a port ($refusal); the owner reconnected by itself to port $owner_port"
echo "squatting scenarios: $((SECONDS - squat_started)) s"
cd .. || fail "cannot leave $PWD"
