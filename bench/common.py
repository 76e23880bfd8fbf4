"""What every part of the benchmark shares: where things go, sizes, the paths under test,
time bounds, the error a person acts on, and the row a path fills in."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
RUN = OUT / "run"  # configs, logs, pid files and temp dirs of this run (wiped at start)
DATA = OUT / "data"  # the 100 MiB file, kept between runs
SSH_DIR = OUT / "ssh"
TLS_DIR = OUT / "tls"

BACKEND_PORT = 3000  # the agent and ssh -R forward to 127.0.0.1:3000
HELLO = b"Hello, world!"
BIG_BYTES = 100 * 1024 * 1024
MIB = 1024 * 1024
GIB = 1024 * MIB
BULK_EACH_WAY = GIB  # moved each way through the tunnel for the RSS-growth figure
IDLE_TUNNELS = 500
CONCURRENT = 1000

# The Pinhole rows: `pinhole` and `pinhole-embedded` as users run them (the text request log,
# to a file); the -json and -quiet rows show what the log costs.
PINHOLE_PATHS = ("pinhole", "pinhole-json", "pinhole-quiet",
                 "pinhole-embedded", "pinhole-embedded-json", "pinhole-embedded-quiet")
PATHS = ("direct", "nginx", "ssh-n", "ssh-session") + PINHOLE_PATHS
SECTIONS = ("h2", "grpc")  # HTTP/2 (h2load, nghttpd, nghttpx) and gRPC (grpcio), after the table
LABELS = {
    "direct": "direct",
    "nginx": "nginx hop",
    "ssh-n": "ssh -R -N",
    "ssh-session": "ssh -R (session)",
    "pinhole": "pinhole",
    "pinhole-json": "pinhole json log",
    "pinhole-quiet": "pinhole --quiet",
    "pinhole-embedded": "pinhole embedded",
    "pinhole-embedded-json": "embedded json log",
    "pinhole-embedded-quiet": "embedded --quiet",
}

# Every wait is bounded; these are the bounds (seconds).
START_TIMEOUT = 20  # a server listening, a forwarded port answering
TUNNEL_READY_TIMEOUT = 30  # the agent printing its public URL (header or tunnel_ready line)
IDLE_READY_TIMEOUT = 120  # `ready 500` from pinhole-idle-tunnels
EXIT_TIMEOUT = 5  # a process leaving after SIGTERM (then SIGKILL)
BUILD_TIMEOUT = 3600
TRANSFER_TIMEOUT = 300  # one curl transfer of 100 MiB
SSH_SESSION_SECONDS = 3600  # `sleep N` of the pty session; we stop it long before


# ---------------------------------------------------------------------------
# Errors, signals, output
# ---------------------------------------------------------------------------
class BenchError(Exception):
    """Something a person can act on; the message says what and, when known, what to do."""


class Interrupted(BaseException):
    pass


def on_signal(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


def rotated(items, index):
    """items starting at index (mod their count): each round starts with the next path, to spread noise."""
    if not items:
        return []
    start = index % len(items)
    return items[start:] + items[:start]


def say(message=""):
    print(message, file=sys.stderr, flush=True)


class Target:
    """One path under test: a base URL and the processes whose memory we report."""

    def __init__(self, name):
        self.name = name
        self.label = LABELS[name]
        self.base = None
        self.status = "pending"  # measured | failed | skipped
        self.reason = ""
        self.rss_processes = []  # (role, Process, comm filter or None)
        self.c50, self.c1, self.downloads, self.uploads = [], [], [], []
        self.problems = []  # errors seen while measuring (flag the row)
        self.peak_rss_kb = {}
        self.concurrent = None
        self.noise = []  # (measurement, % of a CPU other processes took meanwhile)

