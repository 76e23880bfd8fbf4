#!/usr/bin/env bash
# h2load against Pinhole's HTTP/2 server (PinholeHTTP2, h2c) and nghttpd serving the
# same 13-byte response, on 127.0.0.1, one thread each, in the same run:
#   bench/h2load.sh [REQUESTS] [RUNS]
# Prints requests/s for each (median of RUNS runs, interleaved) and any failures.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
requests="${1:-200000}"
runs="${2:-3}"
for tool in h2load nghttpd; do
    command -v "$tool" >/dev/null || { echo "needs $tool: sudo apt-get install -y nghttp2-client nghttp2-server" >&2; exit 1; }
done
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "building pinhole-h2-server (release)..." >&2
swift build -c release --product pinhole-h2-server >/dev/null
# Created before the server starts, so that tail never races a missing file.
: >"$work/pinhole.out"
.build/release/pinhole-h2-server --threads 1 >"$work/pinhole.out" &
pids+=($!)
timeout 10 grep -m1 -q listening <(tail -f "$work/pinhole.out") || {
    echo "pinhole-h2-server did not start:" >&2
    cat "$work/pinhole.out" >&2
    exit 1
}
pinhole_port="$(sed -n 's/^listening //p' "$work/pinhole.out")"

printf 'Hello, world!' >"$work/hello"
nghttpd_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
nghttpd --no-tls -a 127.0.0.1 -d "$work" "$nghttpd_port" >"$work/nghttpd.out" 2>&1 &
pids+=($!)
# nghttpd prints nothing when it is ready (without -v, which would log every frame),
# so poll its port, for 5 s at most.
nghttpd_up=no
for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$nghttpd_port") 2>/dev/null; then nghttpd_up=yes; break; fi
    sleep 0.1
done
[ "$nghttpd_up" = yes ] || { echo "nghttpd did not listen on $nghttpd_port within 5 s:" >&2; cat "$work/nghttpd.out" >&2; exit 1; }

run() {  # run NAME URL -> "req/s failed"
    local out
    out="$(h2load -n "$requests" -c 10 -m 100 "$2" 2>&1)"
    local rps failed
    rps="$(echo "$out" | sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p')"
    failed="$(echo "$out" | sed -n 's/^requests: .* \([0-9]*\) failed.*/\1/p')"
    echo "$rps $failed"
}
declare -a pinhole nghttpd
for i in $(seq "$runs"); do
    read -r rps failed < <(run pinhole "http://127.0.0.1:$pinhole_port/hello")
    pinhole+=("$rps"); [ "$failed" = "0" ] || echo "pinhole run $i: $failed failed" >&2
    read -r rps failed < <(run nghttpd "http://127.0.0.1:$nghttpd_port/hello")
    nghttpd+=("$rps"); [ "$failed" = "0" ] || echo "nghttpd run $i: $failed failed" >&2
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
p="$(median "${pinhole[@]}")"
n="$(median "${nghttpd[@]}")"
echo "h2load -n $requests -c 10 -m 100, h2c, one server thread each, median of $runs"
printf '  %-28s %12s req/s   (runs: %s)\n' "pinhole HTTP/2 server" "$p" "${pinhole[*]}"
printf '  %-28s %12s req/s   (runs: %s)\n' "nghttpd" "$n" "${nghttpd[*]}"
echo "  ratio pinhole / nghttpd: $(awk -v p="$p" -v n="$n" 'BEGIN {printf "%.2f", p/n}')"
