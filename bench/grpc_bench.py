"""gRPC figures: unary p50/p99 at c=1 and 64 MiB streamed each way, direct and through
Pinhole (relay + agent, embedded). The server and clients are grpc_peer.py under Python
grpcio from PyPI, in a virtualenv made once in bench/out/grpc-venv."""

from __future__ import annotations

import json
import statistics
import sys

from common import BENCH, MIB, OUT, START_TIMEOUT, BenchError, say
from h2 import paired_order, start_all_pinhole_rows, with_baseline
from processes import free_ports, listening, wait_until

VENV = OUT / "grpc-venv"
PEER = BENCH / "grpc_peer.py"
STREAM_BYTES = 64 * MIB
GRPC_PATHS = ("grpc-direct", "grpc-pinhole", "grpc-embedded")
GRPC_LABELS = {"grpc-direct": "direct", "grpc-pinhole": "pinhole", "grpc-embedded": "pinhole embedded"}
INSTALL_TIMEOUT = 600


def venv_python(supervisor):
    """The virtualenv's python with grpcio importable; made (python3 -m venv, pip install grpcio) if needed."""
    python = VENV / "bin" / "python"
    if python.exists():
        code, _, _ = supervisor.run_capture("grpc-venv-check", [str(python), "-c", "import grpc"], 60)
        if code == 0:
            return python
    say(f"installing grpcio from PyPI into {VENV} (once)")
    code, out, err = supervisor.run_capture("grpc-venv", [sys.executable, "-m", "venv", str(VENV)], 120)
    if code != 0:
        raise BenchError(f"python3 -m venv {VENV} failed: {(err or out).strip()[-300:]} "
                         "(on Debian: apt-get install -y python3-venv)")
    code, out, err = supervisor.run_capture(
        "grpc-pip", [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", "grpcio"],
        INSTALL_TIMEOUT)
    if code != 0:
        raise BenchError(f"pip install grpcio failed: {(err or out).strip()[-300:]}")
    return python


def peer(supervisor, python, name, argv, timeout):
    code, out, err = supervisor.run_capture(name, [str(python), str(PEER)] + argv, timeout)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if code != 0 or not lines:
        raise BenchError(f"grpc_peer.py {' '.join(argv)} failed (code {code}): {(err or out).strip()[-300:]}")
    return json.loads(lines[-1])


def measure_grpc(supervisor, args, bin_dir, tls):
    """{path: {"status", "reason", "unary": [...], "streams": [...], medians}}."""
    paths, labels = with_baseline(GRPC_PATHS, GRPC_LABELS, args)
    rows = {path: {"label": labels[path], "status": "pending", "reason": "", "unary": [], "streams": []}
            for path in paths}
    say("gRPC: grpcio server and clients, direct and through Pinhole")
    try:
        python = venv_python(supervisor)
    except BenchError as error:
        for row in rows.values():
            row.update(status="failed", reason=str(error))
        say(f"  {error}")
        return rows
    server_port, public, agent_port, tunnel, embedded = free_ports(5)
    try:
        server = supervisor.start("grpc-server", [str(python), str(PEER), "server", str(server_port)])
        wait_until(lambda: listening(server_port), START_TIMEOUT, f"the gRPC server on port {server_port}", [server])
    except BenchError as error:
        for row in rows.values():
            row.update(status="failed", reason=str(error))
        say(f"  {error}")
        return rows
    targets = {"grpc-direct": f"127.0.0.1:{server_port}"}
    bases = start_all_pinhole_rows(supervisor, rows, {"grpc-pinhole": (public, agent_port, tunnel),
                                                      "grpc-embedded": (embedded,)}, args, bin_dir, tls, server_port)
    targets.update({path: base.split("://", 1)[1].rstrip("/") for path, base in bases.items()})
    live = [path for path in paths if path in targets]
    for path in live:
        rows[path]["status"] = "measured"
    for index in range(args.runs):
        for path in paired_order(live, index):
            row = rows[path]
            try:
                unary = peer(supervisor, python, f"grpc-unary-{path}-{index + 1}",
                             ["unary", targets[path], str(args.duration)], args.duration + 60)
                unary["round"] = index
                row["unary"].append(unary)
                streamed = peer(supervisor, python, f"grpc-stream-{path}-{index + 1}",
                                ["stream", targets[path], str(STREAM_BYTES)], 660)
                streamed["round"] = index
                row["streams"].append(streamed)
            except BenchError as error:
                row["problems"] = row.get("problems", []) + [str(error)]
                say(f"  gRPC {labels[path]}: {error}")
                continue
            say(f"grpc round {index + 1}/{args.runs}  {labels[path]:<17} unary p50 {unary['p50_ms']:.3f} ms  "
                f"p99 {unary['p99_ms']:.3f} ms ({unary['calls']:,} calls)  64 MiB down "
                f"{streamed['down_mbps']:,.0f} MB/s  up {streamed['up_mbps']:,.0f} MB/s")
    for row in rows.values():
        for key, runs, field in (("p50_ms", "unary", "p50_ms"), ("p99_ms", "unary", "p99_ms"),
                                 ("down_mbps", "streams", "down_mbps"), ("up_mbps", "streams", "up_mbps")):
            values = [run[field] for run in row[runs]]
            row[key] = statistics.median(values) if values else None
    return rows
