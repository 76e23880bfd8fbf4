"""A hostile agent: does the real handshake with a valid token over TLS, then abuses
the HTTP/2 connection the relay opens on it. The relay must end this tunnel (and only
this one).

usage: hostile_agent.py PORT TOKEN NAME ping|settings|headers
  ping      floods PING frames, never reading the relay's acknowledgements
  settings  floods SETTINGS frames, the same way
  headers   answers the first request the relay sends with a header block of 1 MiB
            (HEADERS and CONTINUATION frames)
prints: "ready" once the tunnel is accepted (and for headers, once a request came),
then a JSON object: frames sent, and how the connection ended ("closed", "goaway N"
with the error code, or "timeout" if the relay let it go on for 30 s)
"""
import json
import socket
import ssl
import struct
import sys
import time

port, token, name, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE  # an attacker has no reason to check the relay
context.set_alpn_protocols(["pinhole/1"])
tls = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30))
hello = json.dumps({"version": 1, "token": token, "name": name, "aliases": [], "software": "hostile/1"}).encode()
tls.sendall(struct.pack(">I", len(hello)) + hello)


def read_exactly(count):
    data = b""
    while len(data) < count:
        chunk = tls.recv(count - len(data))
        if not chunk:
            raise SystemExit("the relay closed during the handshake")
        data += chunk
    return data


answer = json.loads(read_exactly(struct.unpack(">I", read_exactly(4))[0]))
if "tunnel" not in answer or answer["tunnel"] is None:
    raise SystemExit(f"refused: {answer}")


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def read_frame():
    header = read_exactly(9)
    length = int.from_bytes(header[:3], "big")
    return header[3], header[4], int.from_bytes(header[5:9], "big") & 0x7FFFFFFF, read_exactly(length)


# The agent is HTTP/2's server here: its preface is a SETTINGS frame.
tls.sendall(frame(0x4, 0, 0))
read_exactly(24)  # the relay's client preface
sent, ended = 0, "timeout"
if mode == "headers":
    print("ready", flush=True)
    while True:
        kind, flags, stream, _ = read_frame()
        if kind == 0x4 and not flags & 1:
            tls.sendall(frame(0x4, 1, 0))
        if kind == 0x1:
            break
    # Literal fields without indexing (RFC 7541 6.2.2), 4 KiB values, unended by END_HEADERS.
    block = b"\x88" + b"".join(
        b"\x00\x07x-flood\x7f" + bytes([0x81, 0x1F]) + b"v" * 4096 for _ in range(256)
    )
    pieces = [block[i : i + 16384] for i in range(0, len(block), 16384)]
    frames = [frame(0x1, 0, stream, pieces[0])] + [frame(0x9, 0, stream, piece) for piece in pieces[1:]]
else:
    print("ready", flush=True)
    payload = b"pinhole!" if mode == "ping" else b""
    frames = (frame(0x6 if mode == "ping" else 0x4, 0, 0, payload) for _ in range(1_000_000))
deadline = time.monotonic() + 30
try:
    for each in frames:
        tls.sendall(each)
        sent += 1
        if time.monotonic() > deadline:
            break
    # Everything went out: see how the relay answers.
    tls.settimeout(max(1, deadline - time.monotonic()))
    while True:
        kind, flags, stream, payload = read_frame()
        if kind == 0x7:
            ended = f"goaway {int.from_bytes(payload[4:8], 'big')}"
            break
except (OSError, SystemExit) as error:
    ended = "timeout" if isinstance(error, socket.timeout) else "closed"
print(json.dumps({"mode": mode, "sent": sent, "ended": ended}), flush=True)
