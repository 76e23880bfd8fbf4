"""Stalled readers: opens COUNT connections from SOURCE, asks each for a download of
BYTES through the tunnel, reads its head, then reads nothing more. Says "stalled" on a
line once every one has its head, and holds them until its standard input closes.
The relay must hold little for them meanwhile, and cut them off (--stall-timeout).

usage: stalled_readers.py PORT HOST COUNT BYTES SOURCE
"""
import socket
import sys

port, host, count, size, source = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
connections = []
for _ in range(count):
    connection = socket.socket()
    # A small receive buffer, so that the relay, not this process's kernel, is the one
    # holding what the client does not read.
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    connection.bind((source, 0))
    connection.connect(("127.0.0.1", port))
    connection.sendall(f"GET /download?bytes={size} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    connections.append(connection)
for connection in connections:
    connection.settimeout(20)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = connection.recv(1)
        if not chunk:
            raise SystemExit("a download ended before its head")
        head += chunk
    if not head.startswith(b"HTTP/1.1 200 "):
        raise SystemExit(f"a download was refused: {head!r}")
print("stalled", flush=True)
sys.stdin.read()
for connection in connections:
    connection.close()
