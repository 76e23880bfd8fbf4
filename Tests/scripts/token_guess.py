"""Parallel token guessing: opens COUNT TLS connections to the relay's agent port on
127.0.0.1:PORT, then sends a hello with a wrong token on each, all at once, and reads
each answer.

usage: token_guess.py PORT COUNT
prints: a JSON object counting the answers by refusal reason, and one slow_down message
"""
import json
import socket
import ssl
import struct
import sys

port, count = int(sys.argv[1]), int(sys.argv[2])
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE  # a test of the token check, not of the certificate
context.set_alpn_protocols(["pinhole/1"])

connections = []
for index in range(count):
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    connections.append(context.wrap_socket(raw))
for index, connection in enumerate(connections):
    hello = json.dumps(
        {"version": 1, "token": f"wrong-guess-{index:08d}", "name": f"guess{index}", "aliases": [],
         "software": "token_guess.py"}).encode()
    connection.sendall(struct.pack(">I", len(hello)) + hello)

counts = {}
sample = ""
for connection in connections:
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
        chunk = connection.recv(4096)
        if not chunk:
            break
        data += chunk
    if len(data) < 4:
        counts["closed"] = counts.get("closed", 0) + 1
        continue
    answer = json.loads(data[4:4 + struct.unpack(">I", data[:4])[0]])
    refusal = answer.get("refusal") or {}
    reason = refusal.get("reason", "accepted")
    counts[reason] = counts.get(reason, 0) + 1
    if reason == "slow_down":
        sample = refusal.get("message", "")
    connection.close()
print(json.dumps({"counts": counts, "slow_down": sample}))
