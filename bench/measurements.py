"""What is measured: wrk runs, curl transfers, the proxies' CPU and memory from /proc, the
CPU other processes take meanwhile, RSS growth under bulk transfers, memory per idle tunnel."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import threading
import time

from common import (BIG_BYTES, BULK_EACH_WAY, EXIT_TIMEOUT, GIB, IDLE_READY_TIMEOUT, IDLE_TUNNELS, RUN,
                    START_TIMEOUT, TRANSFER_TIMEOUT, BenchError, say)
from pinhole import READY_HINT, idle_ready, idle_tunnels_argv, relay_argv
from processes import listening, process_table, process_tree, tcp_sockets, url_join, wait_until


def proc_status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def open_fds(pid):
    """How many file descriptors pid has open (sockets, files, pipes), or None once it is gone."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def connections_to(pid, port):
    """How many of pid's sockets are TCP connections to port on this machine (any state): the
    agent's pool of keep-alive connections to the app, for example."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[len("socket:[") : -1])
    except OSError:
        return None
    return sum(1 for fields in tcp_sockets() if fields[9] in inodes and int(fields[2].rsplit(":", 1)[1], 16) == port)


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
# Memory: RSS growth under bulk transfers, relay memory per idle tunnel
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
