"""Aborted uploads: opens COUNT connections to 127.0.0.1:PORT in batches of BATCH, sends
each a POST head for /echo with `Content-Length: 100` and no body, waits until the app's
answer head comes back (so the request has crossed the tunnel and reached the app), then
closes it with the body unsent. The relay must cancel each stream.

usage: aborted_uploads.py PORT HOST COUNT BATCH
prints: the number of connections that saw the app's answer head (200) before closing
"""
import selectors
import socket
import sys
import time

port, host, count, batch = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
head = f"POST /echo HTTP/1.1\r\nHost: {host}\r\nContent-Length: 100\r\n\r\n".encode()
answered = 0
deadline = time.monotonic() + 120  # bounded, whatever happens

for start in range(0, count, batch):
    selector = selectors.DefaultSelector()
    connections = []
    for _ in range(min(batch, count - start)):
        connection = socket.create_connection(("127.0.0.1", port), timeout=20)
        connection.sendall(head)
        connection.setblocking(False)
        selector.register(connection, selectors.EVENT_READ, bytearray())
        connections.append(connection)
    waiting = len(connections)
    while waiting and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=1):
            chunk = key.fileobj.recv(4096)
            key.data.extend(chunk)
            if not chunk or b"\r\n\r\n" in key.data:
                if key.data.startswith(b"HTTP/1.1 200 "):
                    answered += 1
                selector.unregister(key.fileobj)
                waiting -= 1
    for connection in connections:
        connection.close()
    selector.close()

print(answered)
