#!/usr/bin/env python3
"""Soak: millions of requests through Pinhole, watching each process's memory and file
descriptors for leaks.

Run it through bench/soak (which checks the tools first); see bench/README.md. For each of
relay + agent and the embedded relay, with the request log on (text, to a file) and off
(--quiet), fresh processes take a warm-up, then --requests more, in wrk runs of a few
seconds; after each run it prints every process's RSS and open fds. The growth is the RSS
after the load, settled, minus the RSS after the warm-up, settled. Everything on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from common import BACKEND_PORT, LABELS, BenchError, Target, say
from measurements import connections_to, describe_errors, open_fds, proc_status_kb, wrk
from peers import start_backend
from pinhole import make_certificate, prepare_pinhole, start_embedded, start_pinhole
from processes import free_ports, identity, prepare_run_dir, run_supervised, url_join
from report import fmt_mib, fmt_num

TARGET_REQUESTS = 5_000_000  # the figure: after warm-up, < 1 MiB growth over this many requests
GROWTH_LIMIT_KB = 1024
SOAK_PATHS = ("pinhole", "pinhole-embedded")  # relay + agent, embedded relay
# The request log on (the default text lines, to a file) or --quiet; the inspector off in
# both (its ring keeps up to 64 MiB by design, see pinhole.AGENT_OUTPUT).
LOGS = {"on": "text-no-inspector", "off": "quiet-no-inspector"}
SETTLE_TIMEOUT = 10  # seconds for fd counts to stop moving once wrk has stopped
SETTLE_STEADY = 1.0  # ... and how long they must hold still


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="bench/soak",
        description="Millions of requests through Pinhole; RSS and open fds of each process over time "
                    "(see bench/README.md).",
    )
    parser.add_argument("--requests", type=int, help=f"requests after the warm-up, per phase ({TARGET_REQUESTS:,})")
    parser.add_argument("--warmup", type=int, help="warm-up requests before growth is counted (500,000)")
    parser.add_argument("--quick", action="store_true",
                        help="300,000 requests after a 100,000 warm-up, runs of 3 s (unless given otherwise)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (50)")
    parser.add_argument("--chunk", type=int, help="seconds per wrk run, one sample after each (10; --quick 3)")
    parser.add_argument("--max-minutes", type=float, default=60,
                        help="stop a phase's load after this long even if short of its requests (60)")
    parser.add_argument("--only", default=",".join(SOAK_PATHS), help=f"paths: {','.join(SOAK_PATHS)}")
    parser.add_argument("--log", default="on,off", help="request log: on (text, to a file), off (--quiet), or both")
    parser.add_argument("--json", metavar="FILE", help="write every sample to FILE")
    parser.add_argument("--no-build", action="store_true", help="never run swift build")
    parser.add_argument("--bin-dir", help="take relay/agent from DIR instead of .build/release (implies no build)")
    args = parser.parse_args(argv)
    args.requests = args.requests if args.requests is not None else (300_000 if args.quick else TARGET_REQUESTS)
    args.warmup = args.warmup if args.warmup is not None else (100_000 if args.quick else 500_000)
    args.chunk = args.chunk or (3 if args.quick else 10)
    if args.requests < 1 or args.warmup < 0 or args.chunk < 1 or args.connections < 1 or args.max_minutes <= 0:
        parser.error("--requests, --chunk, --connections and --max-minutes must be positive, --warmup at least 0")
    args.paths = [p for p in SOAK_PATHS if p in {x.strip() for x in args.only.split(",")}]
    if not args.paths or set(x.strip() for x in args.only.split(",")) - set(SOAK_PATHS):
        parser.error(f"--only takes {','.join(SOAK_PATHS)}")
    args.logs = [log for log in LOGS if log in {x.strip() for x in args.log.split(",")}]
    if not args.logs or set(x.strip() for x in args.log.split(",")) - set(LOGS):
        parser.error("--log takes on, off or on,off")
    return args


def roles(target):
    """(role, Process) for each process of a path; the embedded relay's agent is named as such."""
    embedded = target.name == "pinhole-embedded"
    return [("embedded agent" if embedded else role, process) for role, process, _ in target.rss_processes]


def sample(processes):
    """{role: (RSS kB, open fds, of which connections to the app)}. The agent keeps idle
    keep-alive connections to the app for the next requests; they are counted apart."""
    return {role: (proc_status_kb(p.pid, "VmRSS"), open_fds(p.pid), connections_to(p.pid, BACKEND_PORT))
            for role, p in processes}


def settled(processes):
    """A sample once the fd counts have held still for SETTLE_STEADY s (connections closing
    after wrk stops), or the last one after SETTLE_TIMEOUT s."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    last, since = sample(processes), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = sample(processes)
        if {r: v[1:] for r, v in now.items()} != {r: v[1:] for r, v in last.items()}:
            since = time.monotonic()
        last = now
        if time.monotonic() - since >= SETTLE_STEADY:
            break
    for role, process in processes:
        if not process.alive():
            raise process.died("the soak")
    return last


class Phase:
    """One path with the log on or off: fresh processes, their samples and the verdicts."""

    def __init__(self, path, log):
        self.path, self.log = path, log
        self.name = f"{LABELS[path]}, log {log}"
        self.target = Target(path)
        self.rows = []  # one dict per sample, as printed (for --json)
        self.requests = {"warm-up": 0, "load": 0}
        self.errors = {}
        self.stopped_early = None
        self.idle = self.warm = self.end = None
        self.peak_kb = {}


def print_row(phase, processes, stage, seconds, requests, rps, values):
    cells = "".join(f"  {fmt_mib(values[role][0]):>9} {fmt_num(values[role][1]):>5} {fmt_num(values[role][2]):>5}"
                    for role, _ in processes)
    line = f"  {stage:<8} {seconds:>7.0f} {requests:>11,} {fmt_num(rps):>8}{cells}"
    phase.rows.append({"stage": stage, "seconds": round(seconds, 1), "requests": requests, "rps": rps,
                       "processes": {role: {"rss_kb": v[0], "fds": v[1], "app_connections": v[2]}
                                     for role, v in values.items()}})
    print(line, flush=True)


def load(supervisor, phase, processes, stage, count, args, started):
    """wrk runs of --chunk seconds until count more requests went through (or --max-minutes)."""
    url = url_join(phase.target.base, "/hello")
    done, rps, index = 0, None, 0
    deadline = time.monotonic() + args.max_minutes * 60
    while done < count:
        if time.monotonic() >= deadline:
            phase.stopped_early = f"{stage}: stopped after {args.max_minutes:g} min at {done:,} of {count:,} requests"
            say(f"  {phase.stopped_early}")
            return
        seconds = args.chunk if not rps else max(1, min(args.chunk, round((count - done) / rps + 0.5)))
        index += 1
        run = wrk(supervisor, f"soak-{phase.path}-{phase.log}-{stage}-{index}", url, args.connections, seconds)
        done += run["requests"]
        phase.requests[stage] += run["requests"]
        rps = run["rps"]
        for kind, errors in run["errors"].items():
            phase.errors[kind] = phase.errors.get(kind, 0) + errors
        print_row(phase, processes, stage, time.monotonic() - started, sum(phase.requests.values()), rps,
                  sample(processes))


def soak(supervisor, phase, args, bin_dir, tls):
    public, agent_port, tunnel_port, embedded_port = free_ports(4)
    output, tag = LOGS[phase.log], f"-soak-log-{phase.log}"
    say(f"starting {phase.name}")
    if phase.path == "pinhole":
        start_pinhole(supervisor, phase.target, bin_dir, (public, agent_port, tunnel_port), tls, output, tag)
    else:
        start_embedded(supervisor, phase.target, bin_dir, embedded_port, output, tag)
    processes = roles(phase.target)
    print(f"\n{phase.name}: wrk -t1 -c{args.connections} /hello, {args.warmup:,} warm-up + {args.requests:,} "
          f"requests; RSS in MiB", flush=True)
    print(f"  {'stage':<8} {'seconds':>7} {'requests':>11} {'req/s':>8}"
          + "".join(f"  {role + ' RSS':>9} {'fds':>5} {'→app':>5}" for role, _ in processes), flush=True)
    started = time.monotonic()
    phase.idle = settled(processes)
    print_row(phase, processes, "idle", 0, 0, None, phase.idle)
    if args.warmup:
        load(supervisor, phase, processes, "warm-up", args.warmup, args, started)
    phase.warm = settled(processes)
    print_row(phase, processes, "settled", time.monotonic() - started, phase.requests["warm-up"], None, phase.warm)
    load(supervisor, phase, processes, "load", args.requests, args, started)
    phase.end = settled(processes)
    print_row(phase, processes, "settled", time.monotonic() - started, sum(phase.requests.values()), None, phase.end)
    phase.peak_kb = {role: proc_status_kb(p.pid, "VmHWM") for role, p in processes}
    for _, process, _ in reversed(phase.target.rss_processes):
        supervisor.stop(process)


def verdicts(phase, args):
    """[(what, verdict, detail)]: growth after warm-up, fds back to their idle count, errors."""
    results = []
    load_requests = phase.requests["load"]
    for role in phase.end:
        warm_kb, end_kb = phase.warm[role][0], phase.end[role][0]
        if warm_kb is None or end_kb is None:
            results.append((f"{role}: RSS growth < 1 MiB", "n/a", "no figure"))
            continue
        growth = end_kb - warm_kb
        per_million = growth / load_requests * 1e6 if load_requests else 0
        results.append((f"{role}: RSS growth < 1 MiB", "met" if growth < GROWTH_LIMIT_KB else "not met",
                        f"{growth / 1024:+.2f} MiB ({growth / GROWTH_LIMIT_KB:.2f}×; {per_million:+,.0f} kB per "
                        f"million requests)"))
    for role in phase.end:
        (_, idle_fds, idle_app), (_, warm_fds, warm_app), (_, end_fds, end_app) = (phase.idle[role], phase.warm[role],
                                                                                 phase.end[role])
        if None in (warm_fds, end_fds, warm_app, end_app):
            results.append((f"{role}: fds back to idle", "n/a", "no figure"))
            continue
        # Idle keep-alive connections to the app are kept for reuse, up to one per concurrent request.
        back = end_fds - end_app <= warm_fds - warm_app and end_app <= args.connections
        results.append((f"{role}: fds back to idle", "yes" if back else "no",
                        f"{end_fds} after the load ({end_app} to the app), {warm_fds} after the warm-up "
                        f"({warm_app}), {idle_fds} at start ({idle_app})"))
    errors = sum(phase.errors.values())
    if errors or phase.stopped_early:
        detail = "; ".join(x for x in (describe_errors(phase.errors), phase.stopped_early) if x)
        results.append(("the load itself", "not met", detail))
    return results


def report(phases, args, env):
    out = [f"Pinhole soak  {env['date']}  commit {env['commit']}  {env['cpus']} CPUs  Linux {env['kernel']}",
           f"wrk -t1 -c{args.connections} /hello in runs of {args.chunk} s; {args.warmup:,} warm-up + "
           f"{args.requests:,} requests per phase; request log on = the default text lines to a file",
           "RSS MiB (settled: fds still for 1 s after wrk stopped); growth = after the load - after the warm-up;",
           "→app: the agent's idle keep-alive connections to the app, kept for reuse (one per connection at most)",
           ""]
    out.append(f"  {'phase':<26} {'process':<15} {'idle':>6} {'warm':>6} {'end':>6} {'growth':>7} {'peak':>6}"
               f"  {'fds idle':>8} {'warm':>5} {'end':>5} {'→app':>5}")
    for phase in phases:
        if phase.end is None:
            continue
        for role in phase.end:
            (idle_kb, idle_fd, _), (warm_kb, warm_fd, _), (end_kb, end_fd, end_app) = (
                phase.idle[role], phase.warm[role], phase.end[role])
            growth = None if warm_kb is None or end_kb is None else f"{(end_kb - warm_kb) / 1024:+.2f}"
            memory = " ".join(f"{fmt_mib(kb):>6}" for kb in (idle_kb, warm_kb, end_kb))
            fds = " ".join(f"{fmt_num(count):>5}" for count in (warm_fd, end_fd, end_app))
            out.append(f"  {phase.name:<26} {role:<15} {memory} {growth or '-':>7} "
                       f"{fmt_mib(phase.peak_kb.get(role)):>6}  {fmt_num(idle_fd):>8} {fds}")
    out += ["", f"Targets (after the warm-up, each process grows < 1 MiB over {TARGET_REQUESTS:,} requests; "
                "fds return to their idle count, the app connections apart)"]
    rows = [(phase.name, *result) for phase in phases if phase.end for result in verdicts(phase, args)]
    width = max((len(what) for _, what, _, _ in rows), default=0)
    for name, what, verdict, detail in rows:
        out.append(f"  {name:<26} {what:<{width}}  {verdict:<7}  {detail}")
    for phase in phases:
        if phase.end is None:
            out.append(f"  {phase.name}: not measured")
        elif phase.requests["load"] < TARGET_REQUESTS:
            out.append(f"  ({phase.name}: {phase.requests['load']:,} requests after the warm-up; the target counts "
                       f"{TARGET_REQUESTS:,})")
    print("\n".join(out), flush=True)


def run(supervisor, args):
    prepare_run_dir()
    env = identity()
    bin_dir, cannot, _ = prepare_pinhole(supervisor, args, args.paths, idle_tool=False)
    if cannot:
        raise BenchError("; ".join(f"{LABELS[path]}: {reason}" for path, (_, reason) in cannot.items()))
    tls = make_certificate() if "pinhole" in args.paths else None
    say("starting the backend (nginx on 127.0.0.1:3000 + upload sink)")
    start_backend(supervisor)
    phases = [Phase(path, log) for path in args.paths for log in args.logs]
    exit_code = 0
    try:
        for phase in phases:
            soak(supervisor, phase, args, bin_dir, tls)
    except BenchError as error:
        say(f"error: {error}")
        exit_code = 1
    print("", flush=True)
    report(phases, args, env)
    if args.json:
        data = {"environment": env, "options": {k: v for k, v in vars(args).items() if k != "json"},
                "phases": [{"path": p.path, "log": p.log, "requests": p.requests, "errors": p.errors,
                            "stopped_early": p.stopped_early, "rows": p.rows, "peak_kb": p.peak_kb,
                            "targets": [{"target": w, "verdict": v, "detail": d} for w, v, d in verdicts(p, args)]
                            if p.end else None} for p in phases]}
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
        say(f"samples: {args.json}")
    return exit_code


def main(argv):
    args = parse_args(argv)
    return run_supervised(lambda supervisor: run(supervisor, args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
