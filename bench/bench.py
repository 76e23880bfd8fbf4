#!/usr/bin/env python3
"""Pinhole against its peers: direct, an nginx hop, ssh -R, and Pinhole itself.

Run it through bench/run (which checks the tools first); see bench/README.md.
Everything listens on 127.0.0.1; every process this script starts is stopped by PID
(its process group and its descendants) on exit, on error and on Ctrl-C. Standard
library only.
"""

from __future__ import annotations

import argparse
import atexit
import datetime
import grp
import http.client
import json
import math
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
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

PATHS = ("direct", "nginx", "ssh-n", "ssh-session", "pinhole", "pinhole-embedded")
LABELS = {
    "direct": "direct",
    "nginx": "nginx hop",
    "ssh-n": "ssh -R -N",
    "ssh-session": "ssh -R (session)",
    "pinhole": "pinhole",
    "pinhole-embedded": "pinhole embedded",
}
PINHOLE_PATHS = ("pinhole", "pinhole-embedded")

# Every wait is bounded; these are the bounds (seconds).
START_TIMEOUT = 20  # a server listening, a forwarded port answering
TUNNEL_READY_TIMEOUT = 30  # the agent's tunnel_ready line
IDLE_READY_TIMEOUT = 120  # `ready 500` from pinhole-idle-tunnels
EXIT_TIMEOUT = 5  # a process leaving after SIGTERM (then SIGKILL)
BUILD_TIMEOUT = 3600
TRANSFER_TIMEOUT = 300  # one curl transfer of 100 MiB
SSH_SESSION_SECONDS = 3600  # `sleep N` of the pty session; we stop it long before

# ---------------------------------------------------------------------------
# Pinhole's command lines -- the only place this script knows them.
# ---------------------------------------------------------------------------
TOKEN = "bench-token-0123456789"
PINHOLE_PRODUCTS = {"pinhole": ("relay", "agent"), "pinhole-embedded": ("agent",)}
IDLE_PRODUCT = "pinhole-idle-tunnels"


def relay_argv(bin_dir, public_port, agent_port, tunnel_ports, cert, key):
    first, last = tunnel_ports
    return [
        str(bin_dir / "relay"),
        "--bind", "127.0.0.1",
        "--public-port", str(public_port),
        "--agent-port", str(agent_port),
        "--tunnel-ports", f"{first}-{last}",
        "--public-host", "127.0.0.1",
        "--token", TOKEN,
        "--cert", str(cert),
        "--key", str(key),
    ]


def agent_argv(bin_dir, agent_port, pin):
    return [
        str(bin_dir / "agent"), f"http://127.0.0.1:{BACKEND_PORT}",
        "--relay", f"127.0.0.1:{agent_port}",
        "--token", TOKEN,
        "--pin", pin,
        "--name", "bench",
        "--log-format", "json",
        "--quiet",
    ]


def embedded_agent_argv(bin_dir, public_port):
    return [
        str(bin_dir / "agent"), f"http://127.0.0.1:{BACKEND_PORT}",
        "--bind", "127.0.0.1",
        "--public-port", str(public_port),
        "--log-format", "json",
        "--quiet",
    ]


def idle_tunnels_argv(bin_dir, agent_port, pin, count):
    return [
        str(bin_dir / IDLE_PRODUCT),
        "--relay", f"127.0.0.1:{agent_port}",
        "--token", TOKEN,
        "--pin", pin,
        "--count", str(count),
    ]


def idle_ready(line, count):
    return line.strip() == f"ready {count}"


def tunnel_ready(line):
    """The agent's `{"event":"tunnel_ready","url":...,"authority":...,"port":...}` line, or None."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if not isinstance(event, dict) or event.get("event") != "tunnel_ready":
        return None
    return event


def certificate_argv(cert, key):
    return [
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2",
        "-keyout", str(key), "-out", str(cert),
    ]


# ---------------------------------------------------------------------------
# Errors, signals, output
# ---------------------------------------------------------------------------
class BenchError(Exception):
    """Something a person can act on; the message says what and, when known, what to do."""


class Interrupted(BaseException):
    pass


def on_signal(signum, _frame):
    raise Interrupted(signal.Signals(signum).name)


def say(message=""):
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# Processes: started in their own process group, stopped by PID
# ---------------------------------------------------------------------------
def process_table():
    """{pid: (ppid, pgid, comm, user+system ticks, system ticks)} for every process we can see."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        comm = stat[stat.find("(") + 1 : stat.rfind(")")]
        fields = stat[stat.rfind(")") + 2 :].split()
        user, system = int(fields[11]), int(fields[12])
        table[int(entry)] = (int(fields[1]), int(fields[2]), comm, user + system, system)
    return table


def process_tree(pid, table=None):
    """pid and all its descendants (sshd's children start their own sessions, so a
    process group is not enough)."""
    table = table or process_table()
    children = {}
    for child, (parent, *_) in table.items():
        children.setdefault(parent, []).append(child)
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        if current in table or current == pid:
            tree.append(current)
        todo.extend(children.get(current, []))
    return tree


class Process:
    def __init__(self, name, argv, popen, log_path, capture):
        self.name, self.argv, self.popen, self.log_path = name, argv, popen, log_path
        self.pid = popen.pid
        self.lines = []
        self.eof = not capture
        self.changed = threading.Condition()
        if capture:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        with open(self.log_path, "ab", buffering=0) as log:
            for raw in iter(self.popen.stdout.readline, b""):
                log.write(raw)
                with self.changed:
                    self.lines.append(raw.decode("utf-8", "replace"))
                    self.changed.notify_all()
        self.popen.stdout.close()
        with self.changed:
            self.eof = True
            self.changed.notify_all()

    def alive(self):
        return self.popen.poll() is None

    def tail(self, count=15):
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        text = "\n".join("    " + line for line in lines[-count:])
        return text or "    (log is empty)"

    def died(self, waiting_for):
        return BenchError(
            f"{self.name} exited (code {self.popen.returncode}) while waiting for {waiting_for}.\n"
            f"  command: {' '.join(self.argv)}\n  last lines of {self.log_path}:\n{self.tail()}"
        )

    def wait_line(self, match, timeout, what, hint=""):
        """The first stdout line for which match(line) is truthy, and that value."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self.changed:
            while True:
                while seen < len(self.lines):
                    value = match(self.lines[seen])
                    seen += 1
                    if value:
                        return value
                if self.eof and not self.alive():
                    raise self.died(what)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(
                        f"{self.name}: no {what} within {timeout} s.{hint}\n"
                        f"  command: {' '.join(self.argv)}\n  last lines of {self.log_path}:\n{self.tail()}"
                    )
                self.changed.wait(min(left, 0.5))
                if self.eof and self.popen.poll() is not None and seen == len(self.lines):
                    raise self.died(what)


class Supervisor:
    """Owns every process the benchmark starts; stops them by PID, newest first."""

    def __init__(self):
        self.processes = []
        self.lock = threading.Lock()

    def start(self, name, argv, *, stdin=None, capture=False, log_name=None):
        log_path = RUN / f"{log_name or name}.log"
        log = open(log_path, "ab")
        try:
            popen = subprocess.Popen(
                argv,
                stdin=stdin if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE if capture else log,
                stderr=log,
                start_new_session=True,
                cwd=str(RUN),
            )
        except OSError as error:
            raise BenchError(f"cannot start {name} ({argv[0]}): {error}") from None
        finally:
            log.close()
        process = Process(name, argv, popen, log_path, capture)
        with self.lock:
            self.processes.append(process)
        return process

    def stop(self, process, timeout=EXIT_TIMEOUT):
        with self.lock:
            if process in self.processes:
                self.processes.remove(process)
        pids = process_tree(process.pid)
        if process.popen.poll() is None or len(pids) > 1:
            self._signal(process, pids, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if process.popen.poll() is not None and not any(_exists(p) for p in pids if p != process.pid):
                    break
                time.sleep(0.02)
            else:
                self._signal(process, process_tree(process.pid) + pids, signal.SIGKILL)
        try:
            process.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            say(f"warning: {process.name} (pid {process.pid}) did not exit after SIGKILL")
        if process.popen.stdin:  # stdout, when captured, is closed by its reader at EOF
            try:
                process.popen.stdin.close()
            except OSError:
                pass

    @staticmethod
    def _signal(process, pids, sig):
        if process.popen.poll() is None:
            try:
                os.killpg(process.pid, sig)  # the process group we created for it
            except (ProcessLookupError, PermissionError):
                pass
        for pid in pids:
            if pid == process.pid and process.popen.poll() is not None:
                continue  # reaped: the PID may belong to someone else now
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass

    def stop_all(self):
        while True:
            with self.lock:
                if not self.processes:
                    return
                process = self.processes[-1]
            self.stop(process)

    def wait(self, process, timeout):
        """Waits (bounded) for a started process to exit on its own; returns its exit code."""
        return self._finish(process, timeout)

    def _finish(self, process, timeout):
        try:
            process.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(process)
            command = " ".join(process.argv)
            raise BenchError(f"{process.name} did not finish within {timeout:.0f} s: {command}") from None
        self.stop(process)
        return process.popen.returncode

    def run_capture(self, name, argv, timeout, *, stdin=None):
        """Runs a tool to completion with stdout in a file; returns (code, stdout, stderr tail)."""
        out_path = RUN / f"{name}.out"
        err_path = RUN / f"{name}.err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                popen = subprocess.Popen(
                    argv,
                    stdin=stdin or subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                    cwd=str(RUN),
                )
            except OSError as error:
                raise BenchError(f"cannot start {argv[0]}: {error}") from None
        process = Process(name, argv, popen, err_path, capture=False)
        with self.lock:
            self.processes.append(process)
        code = self._finish(process, timeout)
        return code, out_path.read_text(errors="replace"), err_path.read_text(errors="replace").strip()


def _exists(pid):
    """True while pid runs (a zombie only waits for its parent to reap it: gone for us)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] != b"Z"


# ---------------------------------------------------------------------------
# Ports, readiness, memory
# ---------------------------------------------------------------------------
def free_ports(count):
    """Distinct free loopback ports (bind to 0, all held at once, then released)."""
    sockets = []
    try:
        while len(sockets) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            if s.getsockname()[1] == BACKEND_PORT:
                s.close()
                continue
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def bindable(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port_range(count, avoid, start=20000, stop=32000):
    """count contiguous free ports below the ephemeral range (so client sockets never take them)."""
    first = start
    while first + count <= stop:
        for port in range(first, first + count):
            if port in avoid or port == BACKEND_PORT or not bindable(port):
                first = port + 1
                break
        else:
            return first, first + count - 1
    return None


def listening(port):
    """True when some socket listens on port (read from /proc: no connection is made)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def wait_until(predicate, timeout, what, watch=()):
    """Polls predicate (bounded); fails early when a watched process exits."""
    deadline = time.monotonic() + timeout
    pause = 0.01
    while True:
        if predicate():
            return
        for process in watch:
            if not process.alive():
                raise process.died(what)
        if time.monotonic() >= deadline:
            logs = "".join(f"\n  last lines of {p.log_path}:\n{p.tail()}" for p in watch)
            raise BenchError(f"timed out after {timeout} s waiting for {what}{logs}")
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


def url_join(base, path):
    return base.rstrip("/") + path


def hello_ok(base):
    parts = urllib.parse.urlsplit(url_join(base, "/hello"))
    try:
        conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=2)
        try:
            conn.request("GET", parts.path)
            response = conn.getresponse()
            return response.status == 200 and response.read() == HELLO
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        return False


def proc_status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def tree_kb(pid, field, comm=None):
    """Sum of field over pid and its descendants (only those named comm, when given)."""
    table = process_table()
    total, found = 0, False
    for member in process_tree(pid, table):
        if comm and table.get(member, (0, 0, "", 0, 0))[2] != comm:
            continue
        value = proc_status_kb(member, field)
        if value is not None:
            total, found = total + value, True
    return total if found else None


def proxy_cpu_seconds(target):
    """(user + system, system) CPU, in seconds, of the processes that make up a path's
    proxy (the ones whose memory the table reports), or None for a path without any."""
    if not target.rss_processes:
        return None
    table = process_table()
    ticks = system = 0
    for _, process, comm in target.rss_processes:
        for member in process_tree(process.pid, table):
            entry = table.get(member)
            if entry and (not comm or entry[2] == comm):
                ticks += entry[3]
                system += entry[4]
    hertz = os.sysconf("SC_CLK_TCK")
    return ticks / hertz, system / hertz


def reset_peak_rss(pid):
    """Resets VmHWM (Linux >= 4.0) so the next read is the peak from now on."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class CpuMeter:
    """How much CPU processes other than ours took during a measurement (a shared machine
    makes figures low and latencies long; this says when). Percent of one CPU."""

    TICKS = os.sysconf("SC_CLK_TCK")

    def __init__(self, supervisor):
        self.supervisor = supervisor

    def snapshot(self):
        with open("/proc/stat") as f:
            user, nice, system = (int(v) for v in f.readline().split()[1:4])
        table = process_table()
        with self.supervisor.lock:
            roots = [p.pid for p in self.supervisor.processes]
        live = sum(table[pid][3] for root in roots for pid in process_tree(root, table) if pid in table)
        mine = os.times()
        ours = mine.user + mine.system + mine.children_user + mine.children_system
        # irq/softirq time is left out on both sides: loopback traffic is mostly softirq work.
        return time.monotonic(), (user + nice + system) / self.TICKS, ours + live / self.TICKS

    @staticmethod
    def other_percent(before, after):
        wall = after[0] - before[0]
        if wall <= 0:
            return None
        other = (after[1] - before[1]) - (after[2] - before[2])
        return max(0.0, other) / wall * 100


NOISY_PERCENT = 15  # other processes above this share of a CPU during a run: say so


# ---------------------------------------------------------------------------
# Measuring tools: wrk and curl
# ---------------------------------------------------------------------------
WRK_REPORT = r"""
-- Prints wrk's summary as one JSON line (latencies in microseconds).
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%.0f,"duration_us":%.0f,"bytes":%.0f,"connect":%.0f,"read":%.0f,' ..
    '"write":%.0f,"status":%.0f,"timeout":%.0f,"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,' ..
    '"max_us":%.1f,"mean_us":%.2f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""
ERROR_KINDS = ("connect", "read", "write", "timeout", "status")


def wrk(supervisor, name, url, connections, duration, timeout=None):
    script = RUN / "wrk-report.lua"
    if not script.exists():
        script.write_text(WRK_REPORT)
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script)]
    if timeout:
        argv.append(f"--timeout={timeout}s")
    argv.append(url)
    code, out, err = supervisor.run_capture(name, argv, duration + 60)
    match = re.search(r"^WRK_JSON (\{.*\})$", out, re.M)
    if code != 0 or not match:
        detail = (err or out).strip().splitlines()[-3:]
        raise BenchError(f"wrk failed (code {code}) on {url}: {' / '.join(detail) or 'no output'}")
    raw = json.loads(match.group(1))
    seconds = raw["duration_us"] / 1e6
    errors = {kind: int(raw[kind]) for kind in ERROR_KINDS}
    return {
        "connections": connections,
        "requests": int(raw["requests"]),
        "seconds": seconds,
        "rps": raw["requests"] / seconds if seconds else 0.0,
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "mean_ms": raw["mean_us"] / 1000,
        "bytes": int(raw["bytes"]),
        "errors": errors,
        "error_total": sum(errors.values()),
    }


def describe_errors(errors):
    names = {"status": "non-2xx/3xx", "connect": "connect", "read": "read", "write": "write", "timeout": "timeout"}
    return ", ".join(f"{count} {names[kind]}" for kind, count in errors.items() if count)


def download(supervisor, name, base):
    argv = ["curl", "-sS", "--max-time", str(TRANSFER_TIMEOUT), "-o", "/dev/null",
            "-w", "%{http_code} %{size_download} %{time_total}", url_join(base, "/big")]
    code, out, err = supervisor.run_capture(name, argv, TRANSFER_TIMEOUT + 30)
    fields = out.split()
    if code != 0 or len(fields) != 3:
        raise BenchError(f"download failed (curl exit {code}): {err or out}")
    status, size, seconds = int(fields[0]), int(fields[1]), float(fields[2])
    if status != 200 or size != BIG_BYTES:
        raise BenchError(f"download: HTTP {status}, {size} bytes instead of {BIG_BYTES}")
    return {"bytes": size, "seconds": seconds, "mbps": size / seconds / 1e6}


def upload(supervisor, name, base, path):
    size = path.stat().st_size
    argv = ["curl", "-sS", "--max-time", str(TRANSFER_TIMEOUT), "-X", "POST", "-T", str(path),
            "-H", "Expect:", "-H", "Content-Type: application/octet-stream",
            "-w", "\n%{http_code} %{size_upload} %{time_total}\n", url_join(base, "/upload")]
    code, out, err = supervisor.run_capture(name, argv, TRANSFER_TIMEOUT + 30)
    lines = [line for line in out.splitlines() if line.strip()]
    if code != 0 or not lines or len(lines[-1].split()) != 3:
        raise BenchError(f"upload failed (curl exit {code}): {err or out.strip()[-200:]}")
    status, sent, seconds = lines[-1].split()
    status, sent, seconds = int(status), int(sent), float(seconds)
    received = re.search(r"received=(\d+)", out)
    received = int(received.group(1)) if received else None
    if status != 200 or sent != size or received != size:
        raise BenchError(f"upload: HTTP {status}, curl sent {sent} bytes, the backend received {received} of {size}")
    return {"bytes": size, "seconds": seconds, "mbps": size / seconds / 1e6}


# ---------------------------------------------------------------------------
# Setting up the paths
# ---------------------------------------------------------------------------
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


def render(template, destination, values):
    text = template.read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise BenchError(f"{template}: placeholders left unreplaced: {', '.join(sorted(set(left)))}")
    destination.write_text(text)
    return destination


def nginx_user_line():
    if os.geteuid() != 0:
        return "# not root: workers run as the current user"
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    return f"user {user} {group};  # root runs the workers as itself: they read and write bench/out"


def tool(name):
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")
    if not found:
        raise BenchError(f"{name} not found; bench/run lists the packages to install")
    return found


def start_backend(supervisor):
    if not bindable(BACKEND_PORT) or listening(BACKEND_PORT):
        raise BenchError(
            f"port {BACKEND_PORT} is in use. The backend must listen there (the agent and ssh -R forward to "
            f"127.0.0.1:{BACKEND_PORT}); stop whatever listens on it (`ss -ltnp 'sport = :{BACKEND_PORT}'`)."
        )
    sink_address = f"unix:{RUN / 'sink.sock'}"
    if len(str(RUN / "sink.sock")) > 100:  # sun_path is 108 bytes
        sink_address = f"127.0.0.1:{free_ports(1)[0]}"
    sink = supervisor.start("sink", [sys.executable, str(BENCH / "sink.py"), sink_address])

    def sink_accepts():
        if sink_address.startswith("unix:"):
            probe, where = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), sink_address[len("unix:") :]
        else:
            host, _, port = sink_address.rpartition(":")
            probe, where = socket.socket(socket.AF_INET, socket.SOCK_STREAM), (host, int(port))
        try:
            probe.connect(where)
            return True
        except OSError:
            return False
        finally:
            probe.close()

    wait_until(sink_accepts, START_TIMEOUT, "the upload sink to accept connections", [sink])
    conf = render(
        BENCH / "nginx" / "backend.conf",
        RUN / "backend.conf",
        {"PORT": BACKEND_PORT, "RUN": RUN, "DATA": DATA, "USER": nginx_user_line(),
         "SINK": sink_address[len("unix:"):] if sink_address.startswith("unix:") else sink_address},
    )
    if not sink_address.startswith("unix:"):
        conf.write_text(conf.read_text().replace("server unix:", "server "))
    (RUN / "backend-temp").mkdir(exist_ok=True)
    nginx = supervisor.start(
        "nginx-backend", [tool("nginx"), "-p", str(RUN), "-c", str(conf), "-e", str(RUN / "backend.error.log")]
    )
    wait_until(lambda: hello_ok(f"http://127.0.0.1:{BACKEND_PORT}"), START_TIMEOUT, "the backend nginx", [nginx, sink])
    return nginx


def start_hop(supervisor, target, port):
    conf = render(
        BENCH / "nginx" / "hop.conf",
        RUN / "hop.conf",
        {"PORT": port, "BACKEND_PORT": BACKEND_PORT, "RUN": RUN, "USER": nginx_user_line()},
    )
    (RUN / "hop-temp").mkdir(exist_ok=True)
    nginx = supervisor.start(
        "nginx-hop", [tool("nginx"), "-p", str(RUN), "-c", str(conf), "-e", str(RUN / "hop.error.log")]
    )
    target.base = f"http://127.0.0.1:{port}"
    wait_until(lambda: hello_ok(target.base), START_TIMEOUT, "the nginx hop", [nginx])
    target.rss_processes = [("nginx", nginx, "nginx")]


def ssh_keys():
    SSH_DIR.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        for suffix in ("", ".pub"):
            path = SSH_DIR / (name + suffix)
            if path.exists():
                path.unlink()
        subprocess.run(
            [tool("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "pinhole-bench", "-f", str(SSH_DIR / name)],
            check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        )
    (SSH_DIR / "authorized_keys").write_text((SSH_DIR / "client_key.pub").read_text())
    os.chmod(SSH_DIR / "authorized_keys", 0o600)


def start_ssh(supervisor, target, sshd_port, forward_port, session):
    """A private sshd (one per path, so memory is per path) and `ssh -R` into it."""
    user = pwd.getpwuid(os.getuid()).pw_name
    conf = render(
        BENCH / "sshd" / "sshd_config",
        RUN / f"sshd-{target.name}.conf",
        {"PORT": sshd_port, "HOST_KEY": SSH_DIR / "host_key", "PID_FILE": RUN / f"sshd-{target.name}.pid",
         "AUTHORIZED_KEYS": SSH_DIR / "authorized_keys", "USER": user},
    )
    sshd_path = tool("sshd")
    check = subprocess.run([sshd_path, "-t", "-f", str(conf)], capture_output=True, text=True)
    if check.returncode != 0:
        raise BenchError(f"sshd rejects {conf}: {check.stderr.strip()}")
    sshd = supervisor.start(f"sshd-{target.name}", [sshd_path, "-D", "-e", "-f", str(conf)])
    wait_until(lambda: listening(sshd_port), START_TIMEOUT, f"sshd on port {sshd_port}", [sshd])
    argv = [
        tool("ssh"), "-F", "/dev/null", "-i", str(SSH_DIR / "client_key"), "-p", str(sshd_port),
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
        "-o", "ControlMaster=no", "-o", "ControlPath=none", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
        "-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=ERROR",
        "-R", f"{forward_port}:127.0.0.1:{BACKEND_PORT}",
    ]
    if session:
        # A pty session: sshd (and ssh) then set TCP_NODELAY on the connection.
        argv += ["-tt", f"{user}@127.0.0.1", "sleep", str(SSH_SESSION_SECONDS)]
        client = supervisor.start(f"ssh-{target.name}", argv, stdin=subprocess.PIPE)  # stdin held open
    else:
        argv += ["-N", f"{user}@127.0.0.1"]  # the usual guide: no pty, sshd never sets TCP_NODELAY
        client = supervisor.start(f"ssh-{target.name}", argv)
    target.base = f"http://127.0.0.1:{forward_port}"
    wait_until(lambda: hello_ok(target.base), START_TIMEOUT, f"ssh -R port {forward_port} to answer", [client, sshd])
    target.rss_processes = [("sshd", sshd, "sshd"), ("ssh", client, None)]


def make_certificate():
    TLS_DIR.mkdir(parents=True, exist_ok=True)
    cert, key = TLS_DIR / "relay.crt", TLS_DIR / "relay.key"
    for path in (cert, key):
        if path.exists():
            path.unlink()
    made = subprocess.run(certificate_argv(cert, key), capture_output=True, text=True)
    if made.returncode != 0:
        raise BenchError(f"openssl req failed: {made.stderr.strip()}")
    os.chmod(key, 0o600)
    fingerprint = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(cert)], capture_output=True, text=True
    )
    if fingerprint.returncode != 0 or "=" not in fingerprint.stdout:
        raise BenchError(f"openssl x509 -fingerprint failed: {fingerprint.stderr.strip()}")
    pin = "sha256:" + fingerprint.stdout.strip().split("=", 1)[1].replace(":", "").lower()
    return cert, key, pin


READY_HINT = (
    " If the agent did print it, check that stdout is flushed after each line: here it is a pipe, not a terminal."
)


def ready_url(event):
    url = event.get("url")
    if not url and event.get("port"):
        url = f"http://127.0.0.1:{event['port']}"
    if not url:
        raise BenchError(f"tunnel_ready has neither url nor port: {json.dumps(event)}")
    return url.rstrip("/")


def start_pinhole(supervisor, target, bin_dir, ports, tls):
    cert, key, pin = tls
    public, agent_port, tunnel_port = ports
    relay = supervisor.start("relay", relay_argv(bin_dir, public, agent_port, (tunnel_port, tunnel_port), cert, key))
    wait_until(lambda: listening(agent_port), START_TIMEOUT, f"the relay to listen on agent port {agent_port}", [relay])
    agent = supervisor.start("agent", agent_argv(bin_dir, agent_port, pin), capture=True)
    event = agent.wait_line(tunnel_ready, TUNNEL_READY_TIMEOUT, 'tunnel_ready line ({"event":"tunnel_ready",...})',
                            READY_HINT)
    target.base = ready_url(event)
    target.ready_event = event
    if target.base != f"http://127.0.0.1:{tunnel_port}":
        say(f"  note: the agent's url is {target.base}, not http://127.0.0.1:{tunnel_port}; using its url")
    wait_until(lambda: hello_ok(target.base), START_TIMEOUT, f"{target.base}/hello through the tunnel", [relay, agent])
    target.rss_processes = [("relay", relay, None), ("agent", agent, None)]


def start_embedded(supervisor, target, bin_dir, port):
    agent = supervisor.start("agent-embedded", embedded_agent_argv(bin_dir, port), capture=True)
    event = agent.wait_line(tunnel_ready, TUNNEL_READY_TIMEOUT, "tunnel_ready line", READY_HINT)
    target.base = ready_url(event)
    target.ready_event = event
    wait_until(lambda: hello_ok(target.base), START_TIMEOUT, f"{target.base}/hello (embedded relay)", [agent])
    target.rss_processes = [("agent", agent, None)]


# ---------------------------------------------------------------------------
# Building Pinhole
# ---------------------------------------------------------------------------
def newest_source_mtime():
    newest = (REPO / "Package.swift").stat().st_mtime if (REPO / "Package.swift").exists() else 0
    for root, _, files in os.walk(REPO / "Sources"):
        for name in files:
            try:
                newest = max(newest, os.stat(os.path.join(root, name)).st_mtime)
            except OSError:
                pass
    return newest


def executable(path):
    return path.is_file() and os.access(path, os.X_OK)


def prepare_pinhole(supervisor, args, wanted):
    """Builds what is missing or older than Sources/ (unless told not to).

    Returns (bin_dir, {path: (status, reason)} for paths that cannot run, idle tool available)."""
    bin_dir = Path(args.bin_dir).resolve() if args.bin_dir else REPO / ".build" / "release"
    products = sorted({p for path in wanted for p in PINHOLE_PRODUCTS[path]})
    missing = [p for p in products if not executable(bin_dir / p)]
    newest = newest_source_mtime()
    stale = [p for p in products if p not in missing and (bin_dir / p).stat().st_mtime < newest]
    to_build = list(products) if (missing or stale) else []
    if "pinhole" in wanted and (to_build or not executable(bin_dir / IDLE_PRODUCT)):
        to_build.append(IDLE_PRODUCT)
    why_not = "--no-build given" if args.no_build else ("--bin-dir given" if args.bin_dir else None)
    swift = shutil.which("swift")
    if to_build and not why_not and not swift:
        why_not = "no `swift` on PATH"
    if to_build and not why_not:
        log = OUT / "build.log"
        log.write_text("")
        for product in to_build:
            # One product per invocation: given --product twice, `swift build` builds only the last one.
            argv = [swift, "build", "-c", "release", "--product", product]
            say(f"building {product}: swift {' '.join(argv[1:])}  (log: {log})")
            with open(log, "ab") as f:
                f.write(f"\n$ {' '.join(argv)}\n".encode())
            build = supervisor.start(f"build-{product}", argv, log_name="../build")
            try:
                code = supervisor.wait(build, BUILD_TIMEOUT)
            except BenchError as error:
                return bin_dir, {path: ("failed", str(error)) for path in wanted}, False
            if code != 0:
                tail = "\n".join("    " + line for line in log.read_text(errors="replace").splitlines()[-25:])
                if product == IDLE_PRODUCT:
                    say(f"warning: building {IDLE_PRODUCT} failed; the idle-tunnel figure is skipped.\n{tail}")
                    continue
                reason = f"swift build --product {product} failed (exit {code}; full log: {log}):\n{tail}"
                return bin_dir, {path: ("failed", reason) for path in wanted}, False
    elif stale:
        say(f"warning: {', '.join(str(bin_dir / p) for p in stale)} older than Sources/ ({why_not}): "
            "the figures are for the old code")
    cannot = {}
    for path in wanted:
        absent = [str(bin_dir / p) for p in PINHOLE_PRODUCTS[path] if not executable(bin_dir / p)]
        if absent and why_not:
            cannot[path] = ("skipped", f"{', '.join(absent)} not found ({why_not})")
        elif absent:
            cannot[path] = ("failed", f"{', '.join(absent)} still missing after swift build")
    return bin_dir, cannot, executable(bin_dir / IDLE_PRODUCT)


# ---------------------------------------------------------------------------
# Extra measurements
# ---------------------------------------------------------------------------
def measure_idle_tunnels(supervisor, bin_dir, tls, ports, tunnel_range):
    """A fresh relay (its allocator not warmed by the benchmarks), RSS before and after 500 idle tunnels."""
    cert, key, pin = tls
    public, agent_port = ports
    relay = supervisor.start("relay-idle", relay_argv(bin_dir, public, agent_port, tunnel_range, cert, key))
    try:
        wait_until(lambda: listening(agent_port), START_TIMEOUT, f"the idle-test relay on port {agent_port}", [relay])
        before = proc_status_kb(relay.pid, "VmRSS")
        idle = supervisor.start("idle-tunnels", idle_tunnels_argv(bin_dir, agent_port, pin, IDLE_TUNNELS),
                                stdin=subprocess.PIPE, capture=True)
        started = time.monotonic()
        idle.wait_line(lambda line: idle_ready(line, IDLE_TUNNELS), IDLE_READY_TIMEOUT, f"`ready {IDLE_TUNNELS}` line",
                       READY_HINT)
        seconds = time.monotonic() - started
        after = proc_status_kb(relay.pid, "VmRSS")
        if not relay.alive():
            raise relay.died("the idle tunnels")
        idle.popen.stdin.close()  # the tool exits when its stdin closes
        try:
            idle.popen.wait(timeout=EXIT_TIMEOUT * 2)
        except subprocess.TimeoutExpired:
            say("  note: pinhole-idle-tunnels did not exit after its stdin closed; stopped it")
        supervisor.stop(idle)
        return {
            "tunnels": IDLE_TUNNELS,
            "relay_rss_before_kb": before,
            "relay_rss_after_kb": after,
            "kb_per_tunnel": (after - before) / IDLE_TUNNELS,
            "seconds_to_ready": seconds,
        }
    finally:
        supervisor.stop(relay)


def measure_bulk_growth(supervisor, target, big):
    """RSS growth of relay and agent while >= 1 GiB moves each way at once."""
    count = math.ceil(BULK_EACH_WAY / BIG_BYTES)
    processes = [(role, process) for role, process, _ in target.rss_processes]
    reset = {role: reset_peak_rss(p.pid) for role, p in processes}
    before = {role: proc_status_kb(p.pid, "VmRSS") for role, p in processes}
    sampled = dict(before)
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            for role, process in processes:
                value = proc_status_kb(process.pid, "VmRSS")
                if value is not None and value > (sampled[role] or 0):
                    sampled[role] = value
            stop.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    down_argv = ["curl", "-sS", "--max-time", str(TRANSFER_TIMEOUT * count),
                 "-w", "%{http_code} %{size_download}\n"]
    up_argv = ["curl", "-sS", "--max-time", str(TRANSFER_TIMEOUT * count), "-X", "POST", "-H", "Expect:",
               "-H", "Content-Type: application/octet-stream", "-w", "\n%{http_code} %{size_upload}\n"]
    for _ in range(count):
        down_argv += ["-o", "/dev/null", url_join(target.base, "/big")]
        up_argv += ["-T", str(big), url_join(target.base, "/upload")]
    results = {}

    def transfer(name, argv):
        started = time.monotonic()
        try:
            results[name] = supervisor.run_capture(f"bulk-{name}", argv, TRANSFER_TIMEOUT * count + 30)
        except BenchError as error:
            results[name] = (-1, "", str(error))
        results[name + "_seconds"] = time.monotonic() - started

    sampler.start()
    threads = [threading.Thread(target=transfer, args=(n, a), daemon=True) for n, a in (("down", down_argv),
                                                                                         ("up", up_argv))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    sampler.join()
    for role, process in processes:
        if not process.alive() or before[role] is None:
            raise process.died(f"the {BULK_EACH_WAY // GIB} GiB transfers")
    peak = {}
    for role, process in processes:
        hwm = proc_status_kb(process.pid, "VmHWM") if reset[role] else None
        peak[role] = max(v for v in (hwm, sampled[role]) if v is not None)
    problems = []
    code, out, err = results["down"]
    ok_down = re.findall(r"^200 (\d+)$", out, re.M)
    if code != 0 or len(ok_down) != count or any(int(size) != BIG_BYTES for size in ok_down):
        problems.append(f"download: curl exit {code}, {len(ok_down)}/{count} complete ({err[-200:]})")
    code, out, err = results["up"]
    received = [int(n) for n in re.findall(r"received=(\d+)", out)]
    ok_up = re.findall(r"^200 (\d+)$", out, re.M)
    if code != 0 or len(ok_up) != count or received != [BIG_BYTES] * count:
        problems.append(f"upload: curl exit {code}, {len(ok_up)}/{count} answered, backend received {received} "
                        f"({err[-200:]})")
    moved = count * BIG_BYTES
    return {
        "bytes_each_way": moved,
        "transfers_each_way": count,
        "rss_before_kb": before,
        "rss_peak_kb": peak,
        "growth_kb": {role: peak[role] - before[role] for role in peak},
        "peak_from": {role: "VmHWM after reset + 10 ms samples" if reset[role] else "10 ms samples" for role in peak},
        "download_mbps": moved / results["down_seconds"] / 1e6,
        "upload_mbps": moved / results["up_seconds"] / 1e6,
        "problems": problems,
    }


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summary(target):
    return {
        "rps": median(r["rps"] for r in target.c50),
        "c50_p50_ms": median(r["p50_ms"] for r in target.c50),
        "c50_p99_ms": median(r["p99_ms"] for r in target.c50),
        "c1_p50_ms": median(r["p50_ms"] for r in target.c1),
        "c1_p99_ms": median(r["p99_ms"] for r in target.c1),
        "download_mbps": median(r["mbps"] for r in target.downloads),
        "upload_mbps": median(r["mbps"] for r in target.uploads),
        "cpu_us_per_request_c50": median(r.get("proxy_cpu_us_per_request") for r in target.c50),
        "cpu_us_per_request_c1": median(r.get("proxy_cpu_us_per_request") for r in target.c1),
        "cpu_ms_per_100mib_down": median(r.get("proxy_cpu_ms_per_100mib") for r in target.downloads),
        "cpu_ms_per_100mib_up": median(r.get("proxy_cpu_ms_per_100mib") for r in target.uploads),
        "cpu_system_share_c50": median(r.get("proxy_cpu_system_share") for r in target.c50),
        "cpu_system_share_c1": median(r.get("proxy_cpu_system_share") for r in target.c1),
        "cpu_system_share_down": median(r.get("proxy_cpu_system_share") for r in target.downloads),
        "cpu_system_share_up": median(r.get("proxy_cpu_system_share") for r in target.uploads),
    }


def ratio(value, reference):
    if value is None or not reference:
        return None
    return value / reference


def fmt_ms(ms):
    if ms is None:
        return "-"
    if ms >= 100:
        return f"{ms:.0f}"
    return f"{ms:.3g}" if ms >= 0.01 else f"{ms:.3f}"


def fmt_num(value):
    return "-" if value is None else f"{value:,.0f}"


def fmt_ratio(value):
    return "-" if value is None else f"{value:.2f}"


def fmt_mib(kb):
    return "-" if kb is None else f"{kb / 1024:.1f}"


def table(targets):
    shown = [t for t in targets if t.status == "measured"]
    by_name = {t.name: summary(t) for t in shown}
    direct, ssh = by_name.get("direct", {}), by_name.get("ssh-session", {})
    header1 = ["", "c=50", "", "", "", "", "c=1", "", "download", "", "", "upload", "", "", ""]
    header2 = ["path", "req/s", "×dir", "×ssh", "p50 ms", "p99 ms", "p50 ms", "p99 ms",
               "MB/s", "×dir", "×ssh", "MB/s", "×dir", "×ssh", "peak RSS MiB"]
    rows = []
    for target in shown:
        s = by_name[target.name]
        rss = ", ".join(f"{role} {fmt_mib(kb)}" for role, kb in target.peak_rss_kb.items()) or "-"
        rows.append([
            target.label + (" !" if target.problems else "") + (" ~" if target.noise else ""),
            fmt_num(s["rps"]),
            fmt_ratio(ratio(s["rps"], direct.get("rps"))),
            fmt_ratio(ratio(s["rps"], ssh.get("rps"))),
            fmt_ms(s["c50_p50_ms"]), fmt_ms(s["c50_p99_ms"]), fmt_ms(s["c1_p50_ms"]), fmt_ms(s["c1_p99_ms"]),
            fmt_num(s["download_mbps"]), fmt_ratio(ratio(s["download_mbps"], direct.get("download_mbps"))),
            fmt_ratio(ratio(s["download_mbps"], ssh.get("download_mbps"))),
            fmt_num(s["upload_mbps"]), fmt_ratio(ratio(s["upload_mbps"], direct.get("upload_mbps"))),
            fmt_ratio(ratio(s["upload_mbps"], ssh.get("upload_mbps"))),
            rss,
        ])
    widths = [max(len(r[i]) for r in [header2] + rows) for i in range(len(header2))]
    groups = [(1, 5, "c=50 connections"), (6, 7, "c=1"), (8, 10, "download /big"), (11, 13, "upload")]
    line1 = [" " * widths[0]]
    column = 1
    for first, last, title in groups:
        while column < first:
            line1.append(" " * widths[column])
            column += 1
        span = sum(widths[first : last + 1]) + 2 * (last - first)
        line1.append(f" {title} ".center(span, "-") if span > len(title) + 4 else title.ljust(span))
        column = last + 1
    lines = ["  ".join(line1).rstrip()]
    for row in [header2] + rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(widths[i]) for i, cell in enumerate(row[1:-1], 1)]
        cells.append(row[-1])
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def evaluate_targets(targets, extras):
    """[(what, verdict, detail)] for each Pinhole target."""
    by_name = {t.name: t for t in targets if t.status == "measured"}
    s = {name: summary(t) for name, t in by_name.items()}
    results = []

    def compare(what, path, value_key, reference, ref_key, limit, at_least):
        if path not in s:
            return
        if reference not in s:
            results.append((what, "n/a", f"{LABELS[reference]} not measured"))
            return
        value = ratio(s[path][value_key], s[reference][ref_key])
        if value is None:
            results.append((what, "n/a", "no figure"))
            return
        met = value >= limit if at_least else value <= limit
        results.append((what, "met" if met else "not met", f"{value:.2f}×"))

    for path in PINHOLE_PATHS:
        if path not in s:
            continue
        tag = "" if path == "pinhole" else " [embedded]"
        compare(f"req/s ≥ 1.0× ssh -R session{tag}", path, "rps", "ssh-session", "rps", 1.0, True)
        compare(f"p99 at c=1 ≤ 2× nginx hop{tag}", path, "c1_p99_ms", "nginx", "c1_p99_ms", 2.0, False)
        compare(f"p99 at c=50 ≤ ssh -R session{tag}", path, "c50_p99_ms", "ssh-session", "c50_p99_ms", 1.0, False)
        compare(f"download ≥ 2× ssh -R session{tag}", path, "download_mbps", "ssh-session", "download_mbps", 2, True)
        compare(f"upload ≥ 2× ssh -R session{tag}", path, "upload_mbps", "ssh-session", "upload_mbps", 2.0, True)
        if by_name[path].problems:
            results.append((f"no errors in the table runs{tag}", "not met", "; ".join(by_name[path].problems)[:120]))
    if "pinhole" in by_name:
        idle = extras.get("idle_tunnels")
        if isinstance(idle, dict):
            kb = idle["kb_per_tunnel"]
            results.append(("relay RSS per idle tunnel ≤ 40 KB", "met" if kb <= 40 else "not met",
                            f"{kb:.1f} KB ({kb / 40:.2f}× the limit)"))
        else:
            results.append(("relay RSS per idle tunnel ≤ 40 KB", "n/a", str(idle or "not measured")))
        growth = extras.get("bulk_rss_growth")
        if isinstance(growth, dict):
            worst = max(growth["growth_kb"].values()) / 1024
            detail = ", ".join(f"{role} +{kb / 1024:.1f} MiB" for role, kb in growth["growth_kb"].items())
            verdict = "met" if worst <= 64 and not growth["problems"] else "not met"
            if growth["problems"]:
                detail += "; transfers failed"
            results.append(("RSS growth during 1 GiB each way ≤ 64 MiB", verdict, f"{detail} ({worst / 64:.2f}×)"))
        else:
            results.append(("RSS growth during 1 GiB each way ≤ 64 MiB", "n/a", str(growth or "not measured")))
        run = by_name["pinhole"].concurrent
        if isinstance(run, dict):
            errors = run["error_total"]
            verdict = "met" if errors == 0 and run["requests"] else "not met"
            detail = f"{errors} errors" + (f" ({describe_errors(run['errors'])})" if errors else "")
            results.append((f"{CONCURRENT} concurrent, zero errors", verdict, f"{detail}, {run['rps']:,.0f} req/s"))
        else:
            results.append((f"{CONCURRENT} concurrent, zero errors", "n/a", str(run or "not measured")))
    return results


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
    parser.add_argument("--only", default=",".join(PATHS), help=f"comma-separated paths: {','.join(PATHS)}")
    parser.add_argument("--json", metavar="FILE", help="write every raw figure to FILE")
    parser.add_argument("--no-build", action="store_true", help="never run swift build; skip Pinhole rows if not built")
    parser.add_argument("--bin-dir", help="take relay/agent from DIR instead of .build/release (implies no build)")
    args = parser.parse_args(argv)
    args.runs = args.runs or (1 if args.quick else 3)
    args.duration = args.duration or (3 if args.quick else 10)
    if args.runs < 1 or args.duration < 1:
        parser.error("--runs and --duration must be at least 1")
    args.paths = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in args.paths if p not in PATHS]
    if unknown or not args.paths:
        parser.error(f"unknown path(s) {', '.join(unknown) or '(none)'}; choose from {','.join(PATHS)}")
    args.paths = [p for p in PATHS if p in args.paths]
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


def version_of(argv):
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=5)
        return (done.stdout + done.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return None


def environment():
    git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True)
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "kernel": os.uname().release,
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "commit": git.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "") if git.returncode == 0 else None,
        "nginx": version_of([tool("nginx"), "-v"]),
        "openssh": version_of([tool("ssh"), "-V"]),
        "wrk": version_of(["wrk", "--version"]),
        "curl": version_of(["curl", "--version"]),
        "user": pwd.getpwuid(os.getuid()).pw_name,
    }


def prepare_out():
    OUT.mkdir(parents=True, exist_ok=True)
    if RUN.exists():
        shutil.rmtree(RUN)
    RUN.mkdir(parents=True)
    DATA.mkdir(parents=True, exist_ok=True)
    big = DATA / "big"
    if not big.exists() or big.stat().st_size != BIG_BYTES:
        say(f"generating {big} ({BIG_BYTES // MIB} MiB of random bytes)")
        with open(big, "wb") as f:
            for _ in range(BIG_BYTES // MIB):
                f.write(os.urandom(MIB))
    return big


def ensure_privsep_dir():
    """sshd started as root insists on /run/sshd; create it (and remove it afterwards) if missing."""
    path = Path("/run/sshd")
    if os.geteuid() != 0 or path.is_dir():
        return None
    path.mkdir(mode=0o755)
    say("note: created /run/sshd (sshd's privilege-separation directory, needed when root runs sshd); "
        "it is removed at exit")
    return path


def measure(supervisor, meter, targets, args, big):
    """The table figures, interleaving paths within each round to spread noise."""
    live = [t for t in targets if t.status == "measured"]

    def attempt(target, what, action):
        """Runs one measurement; notes failures on the row and the CPU others took meanwhile."""
        if target.status != "measured":
            return None
        before = meter.snapshot()
        cpu_before = proxy_cpu_seconds(target)
        try:
            result = action()
        except BenchError as error:
            target.problems.append(f"{what}: {error}")
            say(f"  {target.label}: {what} failed: {error}")
            return None
        other = CpuMeter.other_percent(before, meter.snapshot())
        result["other_cpu_percent"] = other
        # The proxy's own CPU per unit of work: unlike req/s and MB/s, it barely moves
        # when the machine is shared, so it compares paths across runs too.
        if cpu_before is not None:
            cpu_after = proxy_cpu_seconds(target)
            cpu = cpu_after[0] - cpu_before[0]
            if cpu > 0:
                # The kernel's part (syscalls, and the loopback TCP work done in them).
                result["proxy_cpu_system_share"] = (cpu_after[1] - cpu_before[1]) / cpu
            if result.get("requests"):
                result["proxy_cpu_us_per_request"] = cpu / result["requests"] * 1e6
            elif result.get("bytes"):
                result["proxy_cpu_ms_per_100mib"] = cpu / result["bytes"] * BIG_BYTES * 1e3
        if other is not None and other > NOISY_PERCENT:
            target.noise.append((what, other))
        return result

    say("warm-up: 1 s at c=50 on each path")
    for target in live:
        attempt(target, "warm-up", lambda: wrk(supervisor, f"wrk-warmup-{target.name}",
                                               url_join(target.base, "/hello"), 50, 1))
    for target in live:
        target.noise.clear()  # the warm-up does not count
    for round_index in range(args.runs):
        order = live[round_index % len(live) :] + live[: round_index % len(live)]
        for target in order:
            for connections, results in ((50, target.c50), (1, target.c1)):
                run = f"c={connections} run {round_index + 1}"
                name = f"wrk-{target.name}-c{connections}-{round_index + 1}"
                hello = url_join(target.base, "/hello")
                result = attempt(target, run, lambda: wrk(supervisor, name, hello, connections, args.duration))
                if result is None:
                    continue
                results.append(result)
                if result["error_total"]:
                    target.problems.append(f"{run}: {describe_errors(result['errors'])}")
                noisy = result["other_cpu_percent"] or 0
                say(f"round {round_index + 1}/{args.runs}  {target.label:<17} c={connections:<3} "
                    f"{result['rps']:>9,.0f} req/s  "
                    f"p50 {fmt_ms(result['p50_ms'])} ms  p99 {fmt_ms(result['p99_ms'])} ms"
                    + (f"  ERRORS: {describe_errors(result['errors'])}" if result["error_total"] else "")
                    + (f"  (other processes: {noisy:.0f}% CPU)" if noisy > NOISY_PERCENT else ""))
    transfers = max(3, args.runs)
    for index in range(transfers):
        for target in live:
            down = attempt(target, f"download {index + 1}",
                           lambda: download(supervisor, f"down-{target.name}-{index + 1}", target.base))
            if down:
                target.downloads.append(down)
            up = attempt(target, f"upload {index + 1}",
                         lambda: upload(supervisor, f"up-{target.name}-{index + 1}", target.base, big))
            if up:
                target.uploads.append(up)
            say(f"bulk {index + 1}/{transfers}  {target.label:<17} down "
                f"{(down or {}).get('mbps', 0):>6,.0f} MB/s  up {(up or {}).get('mbps', 0):>6,.0f} MB/s")
    for target in live:
        for role, process, comm in target.rss_processes:
            target.peak_rss_kb[role] = tree_kb(process.pid, "VmHWM", comm)


def main(argv):
    args = parse_args(argv)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    supervisor = Supervisor()
    atexit.register(supervisor.stop_all)
    created_privsep = None
    exit_code = 0
    started = time.monotonic()
    meter = CpuMeter(supervisor)
    setup_cpu = meter.snapshot()
    try:
        big = prepare_out()
        fd_limit = raise_fd_limit()
        env = environment()
        targets = {name: Target(name) for name in args.paths}
        wanted_pinhole = [p for p in PINHOLE_PATHS if p in targets]
        bin_dir, idle_available = None, False
        if wanted_pinhole:
            bin_dir, cannot, idle_available = prepare_pinhole(supervisor, args, wanted_pinhole)
            for path, (status, reason) in cannot.items():
                targets[path].status, targets[path].reason = status, reason
                say(f"{LABELS[path]}: {status} -- {reason}")

        # All ports are picked now, before anything starts.
        ports = dict(zip(["hop", "sshd-n", "fwd-n", "sshd-s", "fwd-s", "relay-pub", "relay-agent", "tunnel",
                          "embedded", "idle-pub", "idle-agent"], free_ports(11)))
        idle_range = free_port_range(IDLE_TUNNELS + 16, set(ports.values()))

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
            except (BenchError, subprocess.CalledProcessError, OSError) as error:
                for name in ("ssh-n", "ssh-session"):
                    if name in targets:
                        targets[name].status, targets[name].reason = "failed", f"ssh setup: {error}"
        bring_up("ssh-n", lambda t: start_ssh(supervisor, t, ports["sshd-n"], ports["fwd-n"], session=False))
        bring_up("ssh-session", lambda t: start_ssh(supervisor, t, ports["sshd-s"], ports["fwd-s"], session=True))
        if any(targets[p].status == "pending" for p in wanted_pinhole):
            try:
                tls = make_certificate()
            except BenchError as error:
                for p in wanted_pinhole:
                    targets[p].status, targets[p].reason = "failed", str(error)
        bring_up("pinhole", lambda t: start_pinhole(
            supervisor, t, bin_dir, (ports["relay-pub"], ports["relay-agent"], ports["tunnel"]), tls))
        bring_up("pinhole-embedded", lambda t: start_embedded(supervisor, t, bin_dir, ports["embedded"]))
        if any(t.status == "failed" for t in targets.values()):
            exit_code = 1

        ordered = [targets[p] for p in args.paths]
        if not any(t.status == "measured" for t in ordered):
            raise BenchError("no path could be set up; nothing to measure")
        setup_end = meter.snapshot()
        other = CpuMeter.other_percent(setup_cpu, setup_end)
        env["other_cpu_percent_during_setup"] = other
        if other is not None and other > NOISY_PERCENT and setup_end[0] - setup_cpu[0] >= 1:
            say(f"note: other processes took {other:.0f}% of a CPU while the paths started; "
                "figures will be noisy (rows marked ~ show where)")
        measure(supervisor, meter, ordered, args, big)

        extras = {}
        say(f"{CONCURRENT} concurrent connections (wrk -t1 -c{CONCURRENT} -d{args.duration}s) on each path")
        for target in ordered:
            if target.status != "measured":
                continue
            try:
                before = meter.snapshot()
                target.concurrent = wrk(supervisor, f"wrk-{target.name}-c{CONCURRENT}", url_join(target.base, "/hello"),
                                        CONCURRENT, args.duration, timeout=10)
                target.concurrent["other_cpu_percent"] = CpuMeter.other_percent(before, meter.snapshot())
                say(f"  {target.label:<17} {target.concurrent['rps']:>9,.0f} req/s  errors: "
                    f"{describe_errors(target.concurrent['errors']) or 'none'}")
            except BenchError as error:
                target.concurrent = f"failed: {error}"
                say(f"  {target.label}: {error}")
        pinhole = targets.get("pinhole")
        if pinhole and pinhole.status == "measured":
            say(f"RSS growth while {BULK_EACH_WAY // GIB} GiB moves each way through pinhole")
            try:
                extras["bulk_rss_growth"] = measure_bulk_growth(supervisor, pinhole, big)
            except BenchError as error:
                extras["bulk_rss_growth"] = f"failed: {error}"
            if not idle_available:
                extras["idle_tunnels"] = (f"skipped: {bin_dir / IDLE_PRODUCT} not found "
                                          f"(swift build -c release --product {IDLE_PRODUCT})")
                say(f"idle tunnels: {extras['idle_tunnels']}")
            elif not idle_range:
                extras["idle_tunnels"] = f"skipped: no {IDLE_TUNNELS + 16} contiguous free ports in 20000-32000"
            else:
                say(f"relay memory per idle tunnel ({IDLE_TUNNELS} tunnels, fresh relay)")
                try:
                    extras["idle_tunnels"] = measure_idle_tunnels(
                        supervisor, bin_dir, tls, (ports["idle-pub"], ports["idle-agent"]), idle_range)
                except BenchError as error:
                    extras["idle_tunnels"] = f"failed: {error}"
                    say(f"  {error}")
        elif "pinhole" in targets:
            extras["bulk_rss_growth"] = extras["idle_tunnels"] = f"skipped: pinhole {targets['pinhole'].status}"

        report(ordered, extras, args, env, fd_limit, time.monotonic() - started)
        if any(t.status == "measured" and (t.downloads == [] or t.uploads == [] or not t.c50 or not t.c1)
               for t in ordered):
            exit_code = 1
        if args.json:
            write_json(args, ordered, extras, env, fd_limit)
    except BenchError as error:
        say(f"error: {error}")
        exit_code = 1
    except Interrupted as why:
        say(f"\ninterrupted ({why}); stopping everything this run started")
        exit_code = 130
    finally:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
        supervisor.stop_all()
        if created_privsep:
            try:
                created_privsep.rmdir()
            except OSError:
                pass
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return exit_code


def cpu_table(targets):
    """What each proxy's processes spent (user + system CPU, all of them together) per
    request and per 100 MiB, and the kernel's share of it: the cost behind the figures
    above, and how much of it any proxy would pay in syscalls."""
    lines = ["CPU of the proxy's processes (user+system, medians; in brackets the kernel's share;"
             " the processes are those in the last column above)",
             f"  {'path':<18} {'us/req c=50':>11} {'us/req c=1':>14} {'ms/100MiB down':>15} {'ms/100MiB up':>14}"]
    for target in targets:
        if target.status != "measured" or not target.rss_processes:
            continue
        figures = summary(target)
        cells = []
        for kind in ("us_per_request_c50", "us_per_request_c1", "ms_per_100mib_down", "ms_per_100mib_up"):
            value, share = figures["cpu_" + kind], figures["cpu_system_share_" + kind.rsplit("_", 1)[1]]
            text = "-" if value is None else f"{value:,.0f}"
            cells.append(text if share is None or value is None else f"{text} ({share:.0%})")
        lines.append(f"  {target.label:<18} {cells[0]:>11} {cells[1]:>14} {cells[2]:>15} {cells[3]:>14}")
    return "\n".join(lines)


def report(targets, extras, args, env, fd_limit, seconds):
    out = []
    out.append(f"Pinhole benchmark  {env['date']}  commit {env['commit']}  {env['cpus']} CPUs  Linux {env['kernel']}")
    out.append(f"wrk -t1 -d{args.duration}s, median of {args.runs} run(s); bulk: median of {max(3, args.runs)} "
               f"transfers of {BIG_BYTES // MIB} MiB; MB = 10^6 bytes")
    out.append("")
    out.append(table(targets))
    out.append("")
    out.append("×dir / ×ssh: ratio to direct / to ssh -R (session).  ! = errors (below).  "
               f"~ = other processes took > {NOISY_PERCENT}% of a CPU during some runs (below).")
    for target in targets:
        if target.status == "measured" and target.problems:
            out.append(f"  ! {target.label}: " + "; ".join(target.problems))
        if target.status == "measured" and target.noise:
            out.append(f"  ~ {target.label}: " + ", ".join(f"{what} ({pct:.0f}%)" for what, pct in target.noise))
        elif target.status in ("skipped", "failed"):
            reason = target.reason.splitlines()[0] if target.reason else ""
            out.append(f"  {target.label}: {target.status} -- {reason}")
    out.append("")
    out.append(cpu_table(targets))
    out.append("")
    out.append(f"{CONCURRENT} concurrent connections (wrk -t1 -c{CONCURRENT} -d{args.duration}s --timeout 10s, /hello)")
    for target in targets:
        run = target.concurrent
        if isinstance(run, dict):
            out.append(f"  {target.label:<18} {run['rps']:>9,.0f} req/s  p99 {fmt_ms(run['p99_ms'])} ms  errors: "
                       f"{describe_errors(run['errors']) or 'none'}")
        elif run:
            out.append(f"  {target.label:<18} {run}")
    if "pinhole" in [t.name for t in targets]:
        idle = extras.get("idle_tunnels")
        if isinstance(idle, dict):
            out.append(f"Relay memory per idle tunnel: {idle['kb_per_tunnel']:.1f} KB  (fresh relay: RSS "
                       f"{idle['relay_rss_before_kb'] / 1024:.1f} MiB -> {idle['relay_rss_after_kb'] / 1024:.1f} MiB "
                       f"with {idle['tunnels']} tunnels, ready in {idle['seconds_to_ready']:.1f} s)")
        else:
            out.append(f"Relay memory per idle tunnel: {idle}")
        growth = extras.get("bulk_rss_growth")
        if isinstance(growth, dict):
            parts = ", ".join(
                f"{role} +{fmt_mib(growth['growth_kb'][role])} MiB "
                f"({fmt_mib(growth['rss_before_kb'][role])} -> {fmt_mib(growth['rss_peak_kb'][role])})"
                for role in growth["growth_kb"]
            )
            out.append(
                f"RSS growth, {growth['transfers_each_way']}x{BIG_BYTES // MIB} MiB down and up at once through "
                f"pinhole: {parts}; down {growth['download_mbps']:,.0f} MB/s, up {growth['upload_mbps']:,.0f} MB/s"
            )
            for problem in growth["problems"]:
                out.append(f"  ! {problem}")
        else:
            out.append(f"RSS growth during 1 GiB each way: {growth}")
    verdicts = evaluate_targets(targets, extras)
    out.append("")
    if verdicts:
        out.append("Targets")
        width = max(len(what) for what, _, _ in verdicts)
        for what, verdict, detail in verdicts:
            out.append(f"  {what:<{width}}  {verdict:<7}  {detail}")
    else:
        out.append("Targets: no pinhole rows measured")
    out.append("")
    out.append(f"({seconds:.0f} s; logs in {RUN})")
    print("\n".join(out), flush=True)


def write_json(args, targets, extras, env, fd_limit):
    data = {
        "environment": dict(env, loadavg_end=os.getloadavg(), open_file_limit=fd_limit),
        "options": {"runs": args.runs, "duration_s": args.duration, "paths": args.paths, "quick": args.quick},
        "units": {"latency": "ms", "throughput": "MB/s (10^6 bytes)", "memory": "kB (/proc, 1024 bytes)"},
        "paths": {},
        "extras": extras,
        "targets": [{"target": w, "verdict": v, "detail": d} for w, v, d in evaluate_targets(targets, extras)],
    }
    for target in targets:
        data["paths"][target.name] = {
            "label": target.label,
            "status": target.status,
            "reason": target.reason or None,
            "base_url": target.base,
            "summary": summary(target) if target.status == "measured" else None,
            "c50_runs": target.c50,
            "c1_runs": target.c1,
            "downloads": target.downloads,
            "uploads": target.uploads,
            "peak_rss_kb": target.peak_rss_kb,
            f"c{CONCURRENT}": target.concurrent,
            "problems": target.problems,
            "noisy_runs": [{"run": what, "other_cpu_percent": pct} for what, pct in target.noise],
            "tunnel_ready": getattr(target, "ready_event", None),
        }
    path = Path(args.json)
    path.write_text(json.dumps(data, indent=2) + "\n")
    say(f"raw figures: {path}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
