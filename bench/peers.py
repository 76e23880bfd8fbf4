"""The peers Pinhole is compared with, and its backend: nginx (backend, hop), the upload
sink, a private sshd with `ssh -R`."""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from common import (BACKEND_PORT, BENCH, DATA, RUN, SSH_DIR, SSH_SESSION_SECONDS, START_TIMEOUT, BenchError, say)
from processes import bindable, free_ports, hello_ok, listening, wait_until


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


def ensure_privsep_dir():
    """sshd started as root insists on /run/sshd; create it (and remove it afterwards) if missing."""
    path = Path("/run/sshd")
    if os.geteuid() != 0 or path.is_dir():
        return None
    path.mkdir(mode=0o755)
    say("note: created /run/sshd (sshd's privilege-separation directory, needed when root runs sshd); "
        "it is removed at exit")
    return path
