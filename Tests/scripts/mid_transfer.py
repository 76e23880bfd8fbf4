"""One large transfer through a tunnel, for the fault scenarios that break something
while it runs: says "started" on a line once it is under way (1 MiB moved), then goes
on until the transfer ends, and prints how it ended as JSON.

usage: mid_transfer.py PORT HOST upload|download BYTES
  upload    POST /upload with a body of BYTES, sent as fast as the tunnel takes it
  download  GET /download?bytes=BYTES, read as fast as it comes
prints: "started", then {"status": first line or null, "moved": body bytes sent or
received, "expected": BYTES, "ended": "complete" | "closed" | "reset"}
"""
import json
import socket
import sys
import threading

port, host, mode, size = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
connection = socket.create_connection(("127.0.0.1", port), timeout=60)
started = threading.Event()


def announce():
    if not started.is_set():
        started.set()
        print("started", flush=True)


result = {"status": None, "moved": 0, "expected": size, "ended": "closed"}
if mode == "upload":
    connection.sendall(f"POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: {size}\r\n\r\n".encode())

    def send_body():
        chunk = b"u" * 65536
        try:
            while result["moved"] < size:
                result["moved"] += connection.send(chunk[: size - result["moved"]])
                if result["moved"] >= 1 << 20:
                    announce()
        except OSError:
            pass

    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
else:
    connection.sendall(f"GET /download?bytes={size} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())

received = b""
body = 0
try:
    while True:
        chunk = connection.recv(1 << 16)
        if not chunk:
            break
        if result["status"] is None:
            received += chunk
            if b"\r\n\r\n" not in received:
                continue
            head, _, rest = received.partition(b"\r\n\r\n")
            result["status"] = head.split(b"\r\n")[0].decode("latin-1")
            chunk = rest
        body += len(chunk)
        if mode == "download":
            result["moved"] = body
            if body >= 1 << 20:
                announce()
            if body >= size:
                result["ended"] = "complete"
                break
        elif b"Content-Length" in received and body >= int(
            received.split(b"Content-Length: ")[1].split(b"\r\n")[0]
        ):
            result["ended"] = "complete"
            break
except ConnectionResetError:
    result["ended"] = "reset"
announce()
print(json.dumps(result), flush=True)
