"""Opens a WebSocket through PORT (Host: HOST) to raw_app.py's /ws, which echoes every
byte after its 101, and checks what comes back. Prints "ok <bytes echoed>", or what
went wrong.

usage: ws_client.py PORT HOST app-closes|client-closes
  First a few bytes sent right behind the handshake (before the 101 can have come),
  then a short message, then 2 MB sent while the echo is read at the same time; each
  must come back whole and in order. Then either "close-now", after whose echo the app
  closes, or "last words" and the end of our side (FIN): the app must still get them,
  echo them and close. Either way the close must reach us, after the echo.
"""
import base64
import hashlib
import os
import socket
import sys
import threading

port, host, ending = int(sys.argv[1]), sys.argv[2], sys.argv[3]
key = base64.b64encode(os.urandom(16)).decode()
expected_accept = base64.b64encode(
    hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()


def receive(connection, count, pending):
    while len(pending) < count:
        chunk = connection.recv(65536)
        if not chunk:
            sys.exit(f"the connection closed after {len(pending)} of {count} bytes")
        pending += chunk
    return pending[:count], pending[count:]


with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
    early = b"early bytes"
    connection.sendall(
        (f"GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
         f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode() + early)
    pending = b""
    while b"\r\n\r\n" not in pending:
        chunk = connection.recv(65536)
        if not chunk:
            sys.exit(f"no 101, the connection closed: {pending!r}")
        pending += chunk
    head, _, pending = pending.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    if not lines[0].startswith("HTTP/1.1 101 "):
        sys.exit(f"expected 101, got: {head!r}")
    if fields.get("upgrade", "").lower() != "websocket" or "upgrade" not in fields.get("connection", "").lower():
        sys.exit(f"the 101 lacks Upgrade: websocket and Connection: upgrade: {head!r}")
    if fields.get("sec-websocket-accept") != expected_accept:
        sys.exit(f"wrong Sec-WebSocket-Accept: {head!r}")
    echoed = 0
    for message in (early, b"hello through the tunnel"):
        if message is not early:
            connection.sendall(message)
        answer, pending = receive(connection, len(message), pending)
        if answer != message:
            sys.exit(f"the echo of {len(message)} bytes differs")
        echoed += len(message)

    # Both ways at once: more than the buffers on the way hold, so neither side can
    # finish sending before the other reads.
    bulk = os.urandom(2 * 1024 * 1024)
    sender = threading.Thread(target=connection.sendall, args=(bulk,))
    sender.start()
    answer, pending = receive(connection, len(bulk), pending)
    sender.join()
    if answer != bulk:
        sys.exit("the echo of the 2 MB differs")
    echoed += len(bulk)

    last = b"close-now" if ending == "app-closes" else b"last words"
    connection.sendall(last)
    if ending == "client-closes":
        connection.shutdown(socket.SHUT_WR)
    answer, pending = receive(connection, len(last), pending)
    if answer != last:
        sys.exit(f"the echo of {last!r} differs")
    echoed += len(last)
    if pending or connection.recv(65536):
        sys.exit("bytes after the app closed")
print(f"ok {echoed}")
