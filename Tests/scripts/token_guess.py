"""Parallel token guessing: COUNT threads each open a TLS connection to the relay's
agent port on 127.0.0.1:PORT; once all are connected, each sends a hello with a wrong
token at the same moment and reads its answer.

usage: token_guess.py PORT COUNT
prints: a JSON object counting the answers by refusal reason, and one slow_down message
"""
import json
import socket
import ssl
import struct
import sys
import threading

port, count = int(sys.argv[1]), int(sys.argv[2])
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE  # a test of the token check, not of the certificate
context.set_alpn_protocols(["pinhole/1"])
ready = threading.Barrier(count, timeout=60)
lock = threading.Lock()
counts, sample = {}, [""]


def guess(index):
    reason = "closed"
    try:
        with context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30)) as connection:
            hello = json.dumps(
                {"version": 1, "token": f"wrong-guess-{index:08d}", "name": f"guess{index}", "aliases": [],
                 "software": "token_guess.py"}).encode()
            ready.wait()
            connection.sendall(struct.pack(">I", len(hello)) + hello)
            data = b""
            while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                data += chunk
            if len(data) >= 4:
                answer = json.loads(data[4:4 + struct.unpack(">I", data[:4])[0]])
                refusal = answer.get("refusal") or {}
                reason = refusal.get("reason", "accepted")
                if reason == "slow_down":
                    sample[0] = refusal.get("message", "")
    except (OSError, threading.BrokenBarrierError) as error:
        reason = f"error: {type(error).__name__}"
    with lock:
        counts[reason] = counts.get(reason, 0) + 1


threads = [threading.Thread(target=guess, args=(index,)) for index in range(count)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"counts": counts, "slow_down": sample[0]}))
