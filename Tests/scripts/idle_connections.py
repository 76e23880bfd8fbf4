"""Idle connections: opens COUNT connections to 127.0.0.1:PORT, spread evenly over the
loopback source addresses given, sends nothing, says "open N" on a line (N: how many the
relay closed at once, having seen EOF from them within a moment), then holds them until
its standard input closes, and closes them all.

usage: idle_connections.py PORT COUNT SOURCE...
"""
import selectors
import socket
import sys

port, count, sources = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
connections = []
for index in range(count):
    connection = socket.socket()
    connection.bind((sources[index % len(sources)], 0))
    connection.connect(("127.0.0.1", port))
    connection.setblocking(False)
    connections.append(connection)

# A connection the relay refused is closed before anything is read: EOF (or a reset)
# arrives at once. The others stay silent; a short wait tells them apart.
selector = selectors.DefaultSelector()
for connection in connections:
    selector.register(connection, selectors.EVENT_READ)
closed = 0
for key, _ in selector.select(timeout=1):
    try:
        data = key.fileobj.recv(1)
    except ConnectionResetError:
        data = b""
    if not data:
        closed += 1
print(f"open {closed}", flush=True)
sys.stdin.read()
for connection in connections:
    connection.close()
