"""Mutated requests: COUNT connections to 127.0.0.1:PORT from SOURCE, CONCURRENCY at a
time, each sending one valid request head for HOST with random damage (flipped bytes,
a cut, duplicated fields, huge values, stray bytes, a body that lies about its
length), then ending its side (a half-close). Every connection must be answered or
closed by the relay, within 30 s each. Seeded, so a failure can be replayed.

usage: mutated_requests.py PORT HOST COUNT CONCURRENCY SOURCE [SEED]
prints: a JSON object counting the answers by status code ("closed" for none) and
"unanswered" for connections the relay neither answered nor closed in time
"""
import json
import random
import selectors
import socket
import sys
import time

port, host, count, concurrency, source = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
rng = random.Random(int(sys.argv[6]) if len(sys.argv) > 6 else 15)

BASES = [
    f"GET /hello HTTP/1.1\r\nHost: {host}\r\nUser-Agent: mutant\r\nAccept: */*\r\n\r\n",
    f"POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
    f"POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    f"GET /hello HTTP/1.1\r\nHost: {host}\r\nConnection: keep-alive, x-a\r\nX-A: 1\r\n\r\n"
    f"GET /hello HTTP/1.1\r\nHost: {host}\r\n\r\n",
    f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
]


def mutate(data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(8)
        if kind == 0 and data:  # flip bytes
            for _ in range(rng.randint(1, 8)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif kind == 1 and data:  # truncate
            del data[rng.randrange(len(data)) :]
        elif kind == 2:  # duplicate a header line
            lines = bytes(data).split(b"\r\n")
            if len(lines) > 2:
                index = rng.randrange(1, len(lines) - 1)
                lines.insert(index, lines[index])
                data = bytearray(b"\r\n".join(lines))
        elif kind == 3:  # a huge value
            at = data.find(b"\r\n")
            if at > 0:
                data[at:at] = b"\r\nX-Huge: " + b"v" * rng.choice([100, 8000, 70000, 90000])
        elif kind == 4 and data:  # stray bytes: controls, NUL, high bytes, bare CR or LF
            at = rng.randrange(len(data))
            data[at:at] = bytes(rng.choice(b"\x00\r\n\x7f\xff :\t") for _ in range(rng.randint(1, 4)))
        elif kind == 5:  # a lying or absurd length
            data = bytearray(
                bytes(data).replace(b"Content-Length: 5", rng.choice([b"Content-Length: 99999999999", b"Content-Length: -1", b"Content-Length: 5, 6"]))
            )
        elif kind == 6:  # many fields
            at = data.find(b"\r\n")
            if at > 0:
                data[at:at] = b"".join(b"\r\nF%d: v" % i for i in range(rng.choice([100, 3000])))
        elif kind == 7 and data:  # repeat a random slice
            start = rng.randrange(len(data))
            end = min(len(data), start + rng.randint(1, 64))
            data[start:start] = data[start:end] * rng.randint(2, 50)
    return bytes(data)


selector = selectors.DefaultSelector()
counts: dict = {}
started = 0
open_count = 0


def open_one():
    global started, open_count
    connection = socket.socket()
    connection.bind((source, 0))
    connection.connect(("127.0.0.1", port))
    try:
        connection.sendall(mutate(rng.choice(BASES).encode()))
        connection.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the relay may refuse and close before all is sent: it still must end it
    connection.setblocking(False)
    selector.register(connection, selectors.EVENT_READ, {"first": b"", "deadline": time.monotonic() + 30})
    started += 1
    open_count += 1


def finish(key, status):
    global open_count
    counts[status] = counts.get(status, 0) + 1
    selector.unregister(key.fileobj)
    key.fileobj.close()
    open_count -= 1


while started < count or open_count:
    while started < count and open_count < concurrency:
        open_one()
    now = time.monotonic()
    for key, _ in selector.select(timeout=1):
        try:
            chunk = key.fileobj.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if chunk:
            if len(key.data["first"]) < 12:
                key.data["first"] += chunk[:12]
            continue
        first = key.data["first"]
        finish(key, first[9:12].decode("latin-1") if first.startswith(b"HTTP/1.1 ") else "closed")
    for key in list(selector.get_map().values()):
        if key.data["deadline"] < now:
            finish(key, "unanswered")
print(json.dumps(counts, sort_keys=True), flush=True)
