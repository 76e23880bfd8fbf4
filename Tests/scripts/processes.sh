# Sourced by the scripts that run relay and agent as processes: a fresh work directory
# (the current one from here on), removed on exit with every process in `pids`; the
# output files, made here so that wait_for never races a redirection that has not
# created its file yet; wait_for and fail.
work="$(mktemp -d)"
pids=()
cleanup() {
    # CONT: a process stopped (SIGSTOP) by a scenario that failed meanwhile gets the TERM.
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && kill -CONT "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
: >relay.out
: >relay.err
: >agent.out
: >agent.err

# wait_for FILE PATTERN [COUNT]: block until COUNT lines (1) matching PATTERN are in FILE
# (30 s at most).
wait_for() {
    # The count, not -q or output to /dev/null: with either, grep stops at the first match.
    if [ "$(timeout 30 grep -c -m "${3:-1}" -- "$2" <(tail -n +1 -f "$1"))" != "${3:-1}" ]; then
        echo "timed out waiting for ${3:-1} line(s) matching '$2' in $1:" >&2
        cat "$1" >&2
        exit 1
    fi
}

# fail MESSAGE: says what failed, with the last log lines of the relay and the agent,
# and exits.
fail() {
    echo "FAIL: $*" >&2
    for log in relay.err agent.err agent.out; do
        [ -s "$log" ] || continue
        echo "--- $log (last lines):" >&2
        tail -n 20 "$log" | cut -c1-400 >&2
    done
    exit 1
}
