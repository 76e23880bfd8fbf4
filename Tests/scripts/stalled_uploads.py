"""Stalled uploads: opens COUNT connections to 127.0.0.1:PORT, sends each a POST head for
/upload with `Content-Length: 10` and never sends the body, says "sent" on a line, then
waits (at most 60 s) for each connection's answer or close.

usage: stalled_uploads.py PORT HOST COUNT
prints: "sent", then a JSON object counting the answers by status line ("closed" for
none), and one answer's body per status
"""
import json
import selectors
import socket
import sys
import time

port, host, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
head = f"POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: 10\r\n\r\n".encode()
selector = selectors.DefaultSelector()
for _ in range(count):
    connection = socket.create_connection(("127.0.0.1", port), timeout=20)
    connection.sendall(head)
    connection.setblocking(False)
    selector.register(connection, selectors.EVENT_READ, bytearray())
print("sent", flush=True)

counts, bodies = {}, {}
waiting, deadline = count, time.monotonic() + 60
while waiting and time.monotonic() < deadline:
    for key, _ in selector.select(timeout=1):
        try:
            chunk = key.fileobj.recv(4096)
        except ConnectionResetError:
            chunk = b""
        key.data.extend(chunk)
        if chunk:
            continue
        text = key.data.decode("latin-1")
        status = text.split("\r\n", 1)[0] if text else "closed"
        counts[status] = counts.get(status, 0) + 1
        bodies.setdefault(status, text.split("\r\n\r\n", 1)[-1])
        selector.unregister(key.fileobj)
        key.fileobj.close()
        waiting -= 1
counts["unanswered"] = waiting
print(json.dumps({"counts": counts, "bodies": bodies}))
