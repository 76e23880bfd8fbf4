"""Processes the benchmark starts (own process group, stopped by PID), ports, and waits
that are always bounded."""

from __future__ import annotations

import atexit
import datetime
import http.client
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse

from common import BACKEND_PORT, EXIT_TIMEOUT, HELLO, OUT, REPO, RUN, BenchError, Interrupted, on_signal, say


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

    def wait_log_line(self, match, timeout, what, hint=""):
        """The first line of the log (stdout and stderr, when they go to the file) for which
        match(line) is truthy, and that value. The log is a file here, as it is for a user who
        redirects the output, so it is read as it grows (bounded by timeout)."""
        deadline = time.monotonic() + timeout
        offset, partial, pause = 0, b"", 0.01
        while True:
            try:
                with open(self.log_path, "rb") as f:
                    f.seek(offset)
                    chunk = f.read()
            except OSError:
                chunk = b""
            offset += len(chunk)
            *lines, partial = (partial + chunk).split(b"\n")
            for raw in lines:
                value = match(raw.decode("utf-8", "replace"))
                if value:
                    return value
            if not self.alive():
                raise self.died(what)
            if time.monotonic() >= deadline:
                raise BenchError(
                    f"{self.name}: no {what} within {timeout} s.{hint}\n"
                    f"  command: {' '.join(self.argv)}\n  last lines of {self.log_path}:\n{self.tail()}"
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.1)

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
        self.cleanups = []  # called after stop_all at the end of run_supervised (errors ignored)

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


def run_supervised(body):
    """Runs body(supervisor) and returns its exit code; on an error, Ctrl-C or SIGTERM it says
    why, and in every case stops every process started and runs the cleanups."""
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    supervisor = Supervisor()
    atexit.register(supervisor.stop_all)
    try:
        return body(supervisor)
    except BenchError as error:
        say(f"error: {error}")
        return 1
    except Interrupted as why:
        say(f"\ninterrupted ({why}); stopping everything this run started")
        return 130
    finally:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
        supervisor.stop_all()
        for cleanup in supervisor.cleanups:
            try:
                cleanup()
            except OSError:
                pass
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def version_of(argv):
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=5)
        return (done.stdout + done.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return None


def identity():
    """When, where and which commit a run measured."""
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
        "user": pwd.getpwuid(os.getuid()).pw_name,
    }


def prepare_run_dir():
    """An empty RUN directory: configs, logs and pid files of this run only."""
    OUT.mkdir(parents=True, exist_ok=True)
    if RUN.exists():
        shutil.rmtree(RUN)
    RUN.mkdir(parents=True)


def _exists(pid):
    """True while pid runs (a zombie only waits for its parent to reap it: gone for us)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] != b"Z"


# ---------------------------------------------------------------------------
# Ports, readiness, tools
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


def tcp_sockets():
    """The fields of every row of /proc/net/tcp and tcp6: [1] local address:port, [2] remote,
    [3] state (0A = listening), [9] inode; ports in hex."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            yield row.split()


def listening(port):
    """True when some socket listens on port (read from /proc: no connection is made)."""
    for fields in tcp_sockets():
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

