"""HTTP/2 rows: h2load -c10 -m10 for the 13-byte /hello from nghttpd, direct, through one
nghttpx hop (h2c in and out), through Pinhole relay + agent and through the embedded relay.

Pinhole rows need a public side that speaks HTTP/2 with prior knowledge (h2c) and an agent
that speaks h2c to the app (--app-protocol h2c). A build without either gets its rows
marked "not supported by this build", with what it answered."""

from __future__ import annotations

import re
import socket
import statistics
from types import SimpleNamespace

from common import HELLO, RUN, START_TIMEOUT, BenchError, Target, rotated, say
from measurements import proxy_cpu_seconds
from peers import tool
from pinhole import BACKEND_APP, agent_supports_h2c_apps, h2c_app, start_embedded, start_pinhole
from processes import free_ports, listening, wait_until

H2_PATHS = ("h2-direct", "h2-nghttpx", "h2-pinhole", "h2-embedded")
H2_LABELS = {"h2-direct": "direct (nghttpd)", "h2-nghttpx": "nghttpx hop", "h2-pinhole": "pinhole",
             "h2-embedded": "pinhole embedded"}
# With --baseline-dir, each Pinhole row gets a twin run from the other build, its path
# ending in BASELINE_SUFFIX, measured in the same rounds.
BASELINE_SUFFIX = "-base"
H2LOAD_CLIENTS, H2LOAD_STREAMS = 10, 10
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # length 0, type SETTINGS, no flags, stream 0
SETTINGS = 4


class Unsupported(BenchError):
    """This build cannot carry the row (no h2c on the public side, or none to the app)."""


def h2c_answer(port, timeout=5.0):
    """None when 127.0.0.1:port answers the HTTP/2 preface with a SETTINGS frame (h2c with prior
    knowledge); otherwise what it did instead, in words."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(PREFACE + EMPTY_SETTINGS)
            data = b""
            while len(data) < 9:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError as error:
        return f"the connection failed ({error})"
    if len(data) >= 9 and data[3] == SETTINGS:
        return None
    if not data:
        return "it closed the connection without a frame"
    first = data.split(b"\r\n", 1)[0].decode("latin-1")[:60]
    return f"it answered the HTTP/2 preface with {first!r}"


def h2c_ready(base, watch):
    """Waits for the public port to listen, then raises Unsupported unless it speaks h2c."""
    port = int(base.rsplit(":", 1)[1].split("/")[0])
    wait_until(lambda: listening(port), START_TIMEOUT, f"port {port} to listen", watch)
    answer = h2c_answer(port)
    if answer:
        raise Unsupported(f"not supported by this build: the public port does not speak h2c ({answer})")


def start_nghttpd(supervisor, port):
    docroot = RUN / "h2-docroot"
    docroot.mkdir(exist_ok=True)
    (docroot / "hello").write_bytes(HELLO)
    server = supervisor.start("nghttpd", [tool("nghttpd"), "--no-tls", "-a", "127.0.0.1", "-d", str(docroot),
                                          str(port)])
    wait_until(lambda: listening(port), START_TIMEOUT, f"nghttpd on port {port}", [server])
    return server


def start_nghttpx(supervisor, port, backend_port):
    """One nghttpx hop, h2c in and out, one worker (the C reference proxy of nghttp2)."""
    proxy = supervisor.start("nghttpx", [
        tool("nghttpx"), f"--frontend=127.0.0.1,{port};no-tls", f"--backend=127.0.0.1,{backend_port};;proto=h2",
        "--workers=1", "--conf=/dev/null", "--no-ocsp", f"--errorlog-file={RUN / 'nghttpx.error.log'}",
    ])
    wait_until(lambda: listening(port), START_TIMEOUT, f"nghttpx on port {port}", [proxy])
    return proxy


def start_pinhole_h2(supervisor, bin_dir, tls, ports, app_port, embedded, tag):
    """Relay + agent (or the embedded relay) in front of an h2c app; returns the base URL.
    Raises Unsupported when this build cannot carry h2c on either side."""
    row = Target("pinhole-embedded" if embedded else "pinhole")
    app_speaks_h2c = agent_supports_h2c_apps(bin_dir)
    # Without --app-protocol the agent still starts (in front of the HTTP/1.1 backend), so
    # the public side's answer to h2c is what the row reports.
    app = h2c_app(app_port) if app_speaks_h2c else BACKEND_APP
    try:
        if embedded:
            start_embedded(supervisor, row, bin_dir, ports[0], "text", tag, app, h2c_ready)
        else:
            start_pinhole(supervisor, row, bin_dir, ports, tls, "text", tag, app, h2c_ready)
        if not app_speaks_h2c:
            raise Unsupported("not supported by this build: the agent has no --app-protocol h2c")
    except BenchError:
        for _, process, _ in reversed(row.rss_processes):
            supervisor.stop(process)
        raise
    return row


def with_baseline(paths, labels, args):
    """The section's paths and labels, plus a baseline twin of each Pinhole row (its path
    ending in BASELINE_SUFFIX) when --baseline-dir is given."""
    paths, labels = list(paths), dict(labels)
    if getattr(args, "baseline_dir", None):
        for path in [p for p in paths if "pinhole" in p or "embedded" in p]:
            paths.append(path + BASELINE_SUFFIX)
            labels[path + BASELINE_SUFFIX] = labels[path].replace("pinhole ", "") + " [base]"
    return paths, labels


def start_all_pinhole_rows(supervisor, rows, ports, args, bin_dir, tls, app_port, carriers=None):
    """start_pinhole_rows for this build, then (with --baseline-dir) for the baseline build
    on fresh ports: {path: base URL}. ports: this build's {path: its ports}. carriers, when
    given, gets each started row's Target (its processes, for their CPU)."""
    bases = start_pinhole_rows(supervisor, rows, ports, bin_dir, tls, app_port, carriers)
    if getattr(args, "baseline_dir", None):
        fresh = iter(free_ports(sum(len(p) for p in ports.values())))
        twins = {path + BASELINE_SUFFIX: tuple(next(fresh) for _ in row_ports) for path, row_ports in ports.items()}
        bases.update(start_pinhole_rows(supervisor, rows, twins, args.baseline_dir, tls, app_port, carriers))
    return bases


def paired_order(paths, index):
    """The paths in the order round `index` measures them: rotated as `rotated` does, with
    each Pinhole row's baseline twin right beside it, the two taking turns to go first. Kept
    in one order, this build always ran just before its baseline, and the slot alone moved
    the ratio: 0.95× for two builds that an ABBA sequence of their own put at 1.03×."""
    groups = []
    for path in paths:
        if path.endswith(BASELINE_SUFFIX) and path.removesuffix(BASELINE_SUFFIX) in paths:
            continue
        twin = path + BASELINE_SUFFIX
        pair = [path, twin] if index % 2 == 0 else [twin, path]
        groups.append(pair if twin in paths else [path])
    return [path for group in rotated(groups, index) for path in group]


def baseline_ratios(rows, figure, runs="runs"):
    """{path: this build's figure / the baseline's} for the Pinhole rows measured both ways:
    the median of each round's ratio, the two measured side by side (`paired_order`), so
    that the machine's drift from round to round cancels out. row[runs] holds each round's
    figures, with the round's index under "round"."""
    ratios = {}
    for path, row in rows.items():
        twin = rows.get(path + BASELINE_SUFFIX)
        if not twin:
            continue
        theirs = {run["round"]: run.get(figure) for run in twin.get(runs, [])}
        paired = [run[figure] / theirs[run["round"]] for run in row.get(runs, [])
                  if run.get(figure) and theirs.get(run["round"])]
        if paired:
            ratios[path] = statistics.median(paired)
    return ratios


def start_pinhole_rows(supervisor, rows, ports, bin_dir, tls, app_port, carriers=None):
    """Relay + agent and the embedded relay in front of the h2c app on app_port: {path: base URL}
    for the rows that started; the others get their status (unsupported, failed, skipped) and reason.
    ports: {path: its ports}, the embedded row's path containing "embedded"."""
    bases = {}
    for path, row_ports in ports.items():
        embedded = "embedded" in path
        if bin_dir is None or (tls is None and not embedded):
            rows[path].update(status="skipped", reason="Pinhole not built")
            continue
        try:
            target = start_pinhole_h2(supervisor, bin_dir, tls, row_ports, app_port, embedded, "-" + path)
            bases[path] = target.base
            if carriers is not None:
                carriers[path] = target
        except Unsupported as why:
            rows[path].update(status="unsupported", reason=str(why))
        except BenchError as error:
            rows[path].update(status="failed", reason=str(error))
        if path not in bases:
            say(f"  {rows[path]['label']}: {rows[path]['reason'].splitlines()[0]}")
    return bases


H2LOAD_FIGURES = re.compile(r"^finished in ([\d.]+)s, ([\d.]+) req/s", re.M)
H2LOAD_REQUESTS = re.compile(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                             r"(\d+) errored, (\d+) timeout", re.M)
H2LOAD_TIME = re.compile(r"^time for request:\s+(\S+)\s+(\S+)\s+(\S+)", re.M)


def to_ms(text):
    value, unit = re.match(r"([\d.]+)(us|ms|s)$", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def h2load(supervisor, name, url, duration):
    argv = [tool("h2load"), "-t1", f"-c{H2LOAD_CLIENTS}", f"-m{H2LOAD_STREAMS}", "-D", str(duration), url]
    code, out, err = supervisor.run_capture(name, argv, duration + 60)
    figures, requests = H2LOAD_FIGURES.search(out), H2LOAD_REQUESTS.search(out)
    if code != 0 or not figures or not requests:
        detail = (err or out).strip().splitlines()[-3:]
        raise BenchError(f"h2load failed (code {code}) on {url}: {' / '.join(detail) or 'no output'}")
    total, _, done, succeeded, failed, errored, timeout = (int(v) for v in requests.groups())
    times = H2LOAD_TIME.search(out)
    return {
        "rps": float(figures.group(2)),
        "requests": total,
        "succeeded": succeeded,
        "failed": failed + errored + timeout + (done - succeeded - failed - errored - timeout),
        "mean_ms": to_ms(times.group(3)) if times else None,
        "max_ms": to_ms(times.group(2)) if times else None,
    }


def measure_h2(supervisor, args, bin_dir, tls):
    """{path: {"status", "reason", "runs"}} for the four HTTP/2 rows, runs interleaved."""
    paths, labels = with_baseline(H2_PATHS, H2_LABELS, args)
    rows = {path: {"label": labels[path], "status": "pending", "reason": "", "runs": []} for path in paths}
    nghttpd_port, nghttpx_port, public, agent_port, tunnel, embedded = free_ports(6)
    # The processes that carry each proxy row, for their CPU per request: req/s on a
    # 2-core machine shared with h2load and nghttpd swings by a fifth from run to run.
    carriers = {}
    say(f"HTTP/2: nghttpd, nghttpx, Pinhole in front of nghttpd (h2load -c{H2LOAD_CLIENTS} -m{H2LOAD_STREAMS})")
    bases = {}
    try:
        start_nghttpd(supervisor, nghttpd_port)
        bases["h2-direct"] = f"http://127.0.0.1:{nghttpd_port}"
        proxy = start_nghttpx(supervisor, nghttpx_port, nghttpd_port)
        carriers["h2-nghttpx"] = SimpleNamespace(rss_processes=[("nghttpx", proxy, None)])
        bases["h2-nghttpx"] = f"http://127.0.0.1:{nghttpx_port}"
    except BenchError as error:
        for path in ("h2-direct", "h2-nghttpx"):
            if path not in bases:
                rows[path].update(status="failed", reason=str(error))
    bases.update(start_all_pinhole_rows(supervisor, rows, {"h2-pinhole": (public, agent_port, tunnel),
                                                           "h2-embedded": (embedded,)}, args, bin_dir, tls,
                                        nghttpd_port, carriers))
    live = [path for path in paths if path in bases]
    for path in live:
        rows[path]["status"] = "measured"
    for index in range(args.runs):
        for path in paired_order(live, index):
            carrier = carriers.get(path)
            before = proxy_cpu_seconds(carrier) if carrier else None
            try:
                run = h2load(supervisor, f"h2load-{path}-{index + 1}", bases[path] + "/hello", args.duration)
            except BenchError as error:
                rows[path]["problems"] = rows[path].get("problems", []) + [str(error)]
                say(f"  {labels[path]}: {error}")
                continue
            after = proxy_cpu_seconds(carrier) if carrier else None
            if before and after and run["requests"]:
                run["cpu_us"] = (after[0] - before[0]) * 1e6 / run["requests"]
            run["round"] = index
            rows[path]["runs"].append(run)
            cpu = f"  CPU {run['cpu_us']:.1f} µs/req" if "cpu_us" in run else ""
            say(f"h2 round {index + 1}/{args.runs}  {labels[path]:<17} {run['rps']:>9,.0f} req/s  "
                f"mean {run['mean_ms']:.3g} ms  failed {run['failed']}{cpu}")
    for row in rows.values():
        rps = [run["rps"] for run in row["runs"]]
        row["rps"] = statistics.median(rps) if rps else None
        means = [run["mean_ms"] for run in row["runs"] if run["mean_ms"] is not None]
        row["mean_ms"] = statistics.median(means) if means else None
        row["failed"] = sum(run["failed"] for run in row["runs"])
        cpu = [run["cpu_us"] for run in row["runs"] if "cpu_us" in run]
        row["cpu_us"] = statistics.median(cpu) if cpu else None
    return rows
