#!/usr/bin/env python3
"""Pinhole against its peers: direct, an nginx hop, ssh -R, and Pinhole itself.

Run it through bench/run (which checks the tools first); see bench/README.md.
Everything listens on 127.0.0.1; every process this script starts is stopped by PID
(its process group and its descendants) on exit, on error and on Ctrl-C. Standard
library only.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from common import (BACKEND_PORT, BIG_BYTES, CONCURRENT, DATA, IDLE_TUNNELS, LABELS, MIB, PATHS, PINHOLE_PATHS,
                    SECTIONS, BenchError, Target, say)
from measurements import NOISY_PERCENT, CpuMeter
from peers import ensure_privsep_dir, ssh_keys, start_backend, start_hop, start_ssh, tool
from pinhole import make_certificate, ports_needed, prepare_pinhole, start_variant
from processes import free_port_range, free_ports, identity, prepare_run_dir, run_supervised, version_of
from grpc_bench import measure_grpc
from h2 import measure_h2
from report import report, write_json
from rounds import measure, measure_concurrent, measure_pinhole_extras


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------
def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description="Pinhole against direct, an nginx hop and ssh -R on 127.0.0.1 (see bench/README.md).",
    )
    parser.add_argument("--runs", type=int, help="wrk runs per path and connection count; the median is shown (3)")
    parser.add_argument("--duration", type=int, help="seconds per wrk run (10)")
    parser.add_argument("--quick", action="store_true", help="1 run of 3 s (unless --runs/--duration say otherwise)")
    parser.add_argument("--only", default=",".join(PATHS + SECTIONS),
                        help=f"comma-separated paths: {','.join(PATHS)}, and the sections {','.join(SECTIONS)}")
    parser.add_argument("--json", metavar="FILE", help="write every raw figure to FILE")
    parser.add_argument("--no-build", action="store_true", help="never run swift build; skip Pinhole rows if not built")
    parser.add_argument("--bin-dir", help="take relay/agent from DIR instead of .build/release (implies no build)")
    parser.add_argument("--baseline-dir", metavar="DIR",
                        help="HTTP/2 and gRPC sections: also run relay/agent from DIR (another build), each row "
                             "beside this build's, taking turns to go first, and give the ratio of the two "
                             "(an odd --runs is rounded up, so that each goes first as often)")
    args = parser.parse_args(argv)
    args.runs = args.runs or (1 if args.quick else 3)
    args.duration = args.duration or (3 if args.quick else 10)
    if args.runs < 1 or args.duration < 1:
        parser.error("--runs and --duration must be at least 1")
    names = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in names if p not in PATHS + SECTIONS]
    if unknown or not names:
        parser.error(f"unknown path(s) {', '.join(unknown) or '(none)'}; choose from {','.join(PATHS + SECTIONS)}")
    args.paths = [p for p in PATHS if p in names]
    args.sections = [s for s in SECTIONS if s in names]
    if args.baseline_dir:
        args.baseline_dir = Path(args.baseline_dir).resolve()
        if not all(os.access(args.baseline_dir / p, os.X_OK) for p in ("relay", "agent")):
            parser.error(f"--baseline-dir {args.baseline_dir}: no executable relay and agent there")
        # A build and its baseline take turns to go first (h2.paired_order): with an odd
        # number of rounds, one of them would go first once more, and the median ratio
        # could be that slot's.
        args.runs += args.runs % 2
    return args


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536
    try:
        if hard != resource.RLIM_INFINITY and hard < want and os.geteuid() == 0:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
        else:
            limit = want if hard == resource.RLIM_INFINITY else min(want, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, limit), hard))
    except (ValueError, OSError):
        pass
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < 4 * CONCURRENT:
        say(f"warning: open-file limit is {soft}; {CONCURRENT} concurrent connections need ~{3 * CONCURRENT} "
            f"in the relay. Raise the hard limit (ulimit -Hn) to avoid false errors.")
    return soft


def environment():
    return dict(
        identity(),
        nginx=version_of([tool("nginx"), "-v"]),
        openssh=version_of([tool("ssh"), "-V"]),
        wrk=version_of(["wrk", "--version"]),
        curl=version_of(["curl", "--version"]),
    )


def prepare_out():
    prepare_run_dir()
    DATA.mkdir(parents=True, exist_ok=True)
    big = DATA / "big"
    if not big.exists() or big.stat().st_size != BIG_BYTES:
        say(f"generating {big} ({BIG_BYTES // MIB} MiB of random bytes)")
        with open(big, "wb") as f:
            for _ in range(BIG_BYTES // MIB):
                f.write(os.urandom(MIB))
    return big


def main(argv):
    args = parse_args(argv)
    return run_supervised(lambda supervisor: run(supervisor, args))


def run(supervisor, args):
    """Sets the paths up, measures, reports; returns the exit code."""
    exit_code = 0
    started = time.monotonic()
    meter = CpuMeter(supervisor)
    setup_cpu = meter.snapshot()
    big = prepare_out()
    fd_limit = raise_fd_limit()
    env = environment()
    targets = {name: Target(name) for name in args.paths}
    wanted_pinhole = [p for p in PINHOLE_PATHS if p in targets]
    # The HTTP/2 and gRPC sections run relay + agent and the embedded relay of their own.
    to_build = wanted_pinhole + [p for p in ("pinhole", "pinhole-embedded") if args.sections and p not in targets]
    bin_dir, section_bin_dir, idle_available = None, None, False
    if to_build:
        bin_dir, cannot, idle_available = prepare_pinhole(supervisor, args, to_build, idle_tool="pinhole" in targets)
        for path, (status, reason) in cannot.items():
            if path in targets:
                targets[path].status, targets[path].reason = status, reason
            say(f"{LABELS[path]}: {status} -- {reason}")
        section_bin_dir = None if "pinhole" in cannot or "pinhole-embedded" in cannot else bin_dir

    # All ports are picked now, before anything starts.
    names = ["hop", "sshd-n", "fwd-n", "sshd-s", "fwd-s", "idle-pub", "idle-agent"]
    picked = free_ports(len(names) + sum(ports_needed(p) for p in PINHOLE_PATHS))
    unused = iter(picked)
    ports = {name: next(unused) for name in names}
    for path in PINHOLE_PATHS:
        ports[path] = tuple(next(unused) for _ in range(ports_needed(path)))
    idle_range = free_port_range(IDLE_TUNNELS + 16, set(picked))

    say("starting the backend (nginx on 127.0.0.1:3000 + upload sink)")
    start_backend(supervisor)
    if "direct" in targets:
        targets["direct"].base = f"http://127.0.0.1:{BACKEND_PORT}"
    tls = None

    def bring_up(name, action):
        target = targets.get(name)
        if not target or target.status != "pending":
            return
        say(f"starting {target.label}")
        try:
            action(target)
            target.status = "measured"
        except BenchError as error:
            target.status, target.reason = "failed", str(error)
            say(f"{target.label}: failed to start: {error}")

    if "direct" in targets:
        targets["direct"].status = "measured"
    bring_up("nginx", lambda t: start_hop(supervisor, t, ports["hop"]))
    if "ssh-n" in targets or "ssh-session" in targets:
        try:
            ssh_keys()
            created_privsep = ensure_privsep_dir()
            if created_privsep:
                supervisor.cleanups.append(created_privsep.rmdir)
        except (BenchError, subprocess.CalledProcessError, OSError) as error:
            for name in ("ssh-n", "ssh-session"):
                if name in targets:
                    targets[name].status, targets[name].reason = "failed", f"ssh setup: {error}"
    bring_up("ssh-n", lambda t: start_ssh(supervisor, t, ports["sshd-n"], ports["fwd-n"], session=False))
    bring_up("ssh-session", lambda t: start_ssh(supervisor, t, ports["sshd-s"], ports["fwd-s"], session=True))
    if any(targets[p].status == "pending" for p in wanted_pinhole) or section_bin_dir:
        try:
            tls = make_certificate()
        except BenchError as error:
            for p in wanted_pinhole:
                targets[p].status, targets[p].reason = "failed", str(error)
    for path in PINHOLE_PATHS:
        bring_up(path, lambda t: start_variant(supervisor, t, bin_dir, ports[t.name], tls))
    if any(t.status == "failed" for t in targets.values()):
        exit_code = 1

    ordered = [targets[p] for p in args.paths]
    if not any(t.status == "measured" for t in ordered) and not args.sections:
        raise BenchError("no path could be set up; nothing to measure")
    setup_end = meter.snapshot()
    other = CpuMeter.other_percent(setup_cpu, setup_end)
    env["other_cpu_percent_during_setup"] = other
    if other is not None and other > NOISY_PERCENT and setup_end[0] - setup_cpu[0] >= 1:
        say(f"note: other processes took {other:.0f}% of a CPU while the paths started; "
            "figures will be noisy (rows marked ~ show where)")
    extras = {}
    if any(t.status == "measured" for t in ordered):
        measure(supervisor, meter, ordered, args, big)
        measure_concurrent(supervisor, meter, ordered, args)
        extras = measure_pinhole_extras(supervisor, targets, big, bin_dir, tls,
                                        (ports["idle-pub"], ports["idle-agent"]), idle_range, idle_available)
    if "h2" in args.sections:
        extras["h2"] = measure_h2(supervisor, args, section_bin_dir, tls)
    if "grpc" in args.sections:
        extras["grpc"] = measure_grpc(supervisor, args, section_bin_dir, tls)

    report(ordered, extras, args, env, fd_limit, time.monotonic() - started)
    if any(t.status == "measured" and (t.downloads == [] or t.uploads == [] or not t.c50 or not t.c1)
           for t in ordered):
        exit_code = 1
    if args.json:
        write_json(args, ordered, extras, env, fd_limit)
    return exit_code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
