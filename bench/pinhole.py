"""Pinhole's paths: its command lines (the only place the benchmark knows them), the
certificate, starting relay + agent and the embedded relay, and building the binaries."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from common import (BACKEND_PORT, BUILD_TIMEOUT, OUT, REPO, START_TIMEOUT, TLS_DIR, TUNNEL_READY_TIMEOUT, BenchError,
                    say)
from processes import hello_ok, listening, wait_until


# ---------------------------------------------------------------------------
# Pinhole's command lines -- the only place the benchmark knows them.
# ---------------------------------------------------------------------------
TOKEN = "bench-token-0123456789"
# Each Pinhole row: relay + agent or the embedded relay, and what the agent prints.
PINHOLE_VARIANTS = {
    "pinhole": ("relay", "text"),
    "pinhole-json": ("relay", "json"),
    "pinhole-quiet": ("relay", "quiet"),
    "pinhole-embedded": ("embedded", "text"),
    "pinhole-embedded-json": ("embedded", "json"),
    "pinhole-embedded-quiet": ("embedded", "quiet"),
}
PINHOLE_PRODUCTS = {path: ("relay", "agent") if mode == "relay" else ("agent",)
                    for path, (mode, _) in PINHOLE_VARIANTS.items()}
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
        # pinhole-idle-tunnels registers its hundreds of tunnels with this one token, from
        # this one address.
        "--max-tunnels-per-token", "1000",
        "--max-names-per-token", "1000",
        "--max-agent-connections-per-address", "1000",
        "--cert", str(cert),
        "--key", str(key),
    ]


# What the agent prints besides its header: the request log as users get it (text lines),
# as JSON lines, or nothing per request.
AGENT_OUTPUT = {
    "text": [],
    "json": ["--log-format", "json"],
    "quiet": ["--quiet"],
    # For the soak: the inspector keeps up to 64 MiB of requests by design, which would
    # hide a leak of a few bytes per request; everything else as users run it.
    "text-no-inspector": ["--inspect", "off"],
    "quiet-no-inspector": ["--quiet", "--inspect", "off"],
}


# The app the agent forwards to: its URL and the flags that say how to speak to it.
BACKEND_APP = (f"http://127.0.0.1:{BACKEND_PORT}", ())


def h2c_app(port):
    """An app that speaks HTTP/2 with prior knowledge (nghttpd, a gRPC server)."""
    return (f"h2c://127.0.0.1:{port}", ())


def agent_supports_h2c_apps(bin_dir):
    """True when this agent build takes --app-protocol (its --help says so)."""
    try:
        done = subprocess.run([str(bin_dir / "agent"), "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--app-protocol" in done.stdout + done.stderr


def agent_argv(bin_dir, agent_port, pin, output, app=BACKEND_APP):
    return [
        str(bin_dir / "agent"), app[0], *app[1],
        "--relay", f"127.0.0.1:{agent_port}",
        "--token", TOKEN,
        "--pin", pin,
        "--name", "bench",
    ] + AGENT_OUTPUT[output]


def embedded_agent_argv(bin_dir, public_port, output, app=BACKEND_APP):
    return [
        str(bin_dir / "agent"), app[0], *app[1],
        "--bind", "127.0.0.1",
        "--public-port", str(public_port),
    ] + AGENT_OUTPUT[output]


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


def agent_url(line):
    """The public URL the agent prints: in its text header (`  public URL http://…`) or as
    `url` of its JSON `tunnel_ready` line; None for any other line."""
    words = line.split()
    if words[:2] == ["public", "URL"] and len(words) >= 3:
        return words[2].rstrip("/")
    event = tunnel_ready(line)
    return ready_url(event) if event else None


def certificate_argv(cert, key):
    return [
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2",
        "-keyout", str(key), "-out", str(cert),
    ]


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
AGENT_READY = "public URL (its header's `public URL` line, or a JSON tunnel_ready line)"
AGENT_READY_HINT = " The agent's output goes to a file here, as when a user redirects it: is it flushed?"


def ready_url(event):
    url = event.get("url")
    if not url and event.get("port"):
        url = f"http://127.0.0.1:{event['port']}"
    if not url:
        raise BenchError(f"tunnel_ready has neither url nor port: {json.dumps(event)}")
    return url.rstrip("/")


def start_pinhole(supervisor, target, bin_dir, ports, tls, output, tag="", app=BACKEND_APP, ready=None):
    """Relay and agent as two processes; their logs are relay{tag}.log and agent{tag}.log,
    the agent's output (the request log) included. ready(base URL, watched processes) waits
    until the path answers; by default, /hello from the backend through the tunnel."""
    cert, key, pin = tls
    public, agent_port, tunnel_port = ports
    relay = supervisor.start(f"relay{tag}",
                             relay_argv(bin_dir, public, agent_port, (tunnel_port, tunnel_port), cert, key))
    wait_until(lambda: listening(agent_port), START_TIMEOUT, f"the relay to listen on agent port {agent_port}", [relay])
    agent = supervisor.start(f"agent{tag}", agent_argv(bin_dir, agent_port, pin, output, app))
    target.base = agent.wait_log_line(agent_url, TUNNEL_READY_TIMEOUT, AGENT_READY, AGENT_READY_HINT)
    target.ready_event = {"url": target.base, "output": output}
    if target.base != f"http://127.0.0.1:{tunnel_port}":
        say(f"  note: the agent's url is {target.base}, not http://127.0.0.1:{tunnel_port}; using its url")
    target.rss_processes = [("relay", relay, None), ("agent", agent, None)]
    (ready or hello_answers)(target.base, [relay, agent])


def ports_needed(path):
    """Ports a Pinhole row listens on: relay public, agent and tunnel ports; or the embedded public port."""
    return 3 if PINHOLE_VARIANTS[path][0] == "relay" else 1


def start_variant(supervisor, target, bin_dir, ports, tls):
    """Starts the row target.name (one of PINHOLE_VARIANTS) on ports (ports_needed of them)."""
    mode, output = PINHOLE_VARIANTS[target.name]
    tag = target.name.replace("pinhole-embedded", "").replace("pinhole", "")  # "", "-json", "-quiet"
    if mode == "relay":
        start_pinhole(supervisor, target, bin_dir, ports, tls, output, tag)
    else:
        start_embedded(supervisor, target, bin_dir, ports[0], output, tag)


def start_embedded(supervisor, target, bin_dir, port, output, tag="", app=BACKEND_APP, ready=None):
    """The agent alone, relay embedded; its log (the request log included) is agent-embedded{tag}.log."""
    agent = supervisor.start(f"agent-embedded{tag}", embedded_agent_argv(bin_dir, port, output, app))
    target.base = agent.wait_log_line(agent_url, TUNNEL_READY_TIMEOUT, AGENT_READY, AGENT_READY_HINT)
    target.ready_event = {"url": target.base, "output": output}
    target.rss_processes = [("agent", agent, None)]
    (ready or hello_answers)(target.base, [agent])


def hello_answers(base, watch):
    wait_until(lambda: hello_ok(base), START_TIMEOUT, f"{base}/hello through Pinhole", watch)


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


def prepare_pinhole(supervisor, args, wanted, idle_tool=True):
    """Builds what is missing or older than Sources/ (unless told not to), and the idle-tunnel
    tool with relay + agent when idle_tool.

    Returns (bin_dir, {path: (status, reason)} for paths that cannot run, idle tool available)."""
    bin_dir = Path(args.bin_dir).resolve() if args.bin_dir else REPO / ".build" / "release"
    products = sorted({p for path in wanted for p in PINHOLE_PRODUCTS[path]})
    missing = [p for p in products if not executable(bin_dir / p)]
    newest = newest_source_mtime()
    stale = [p for p in products if p not in missing and (bin_dir / p).stat().st_mtime < newest]
    to_build = list(products) if (missing or stale) else []
    if idle_tool and "pinhole" in wanted and (to_build or not executable(bin_dir / IDLE_PRODUCT)):
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

