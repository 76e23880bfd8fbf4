"""Sends exact bytes to a server and prints all it answers until it closes.

usage: raw_client.py PORT BYTES [PADDING]
  BYTES with Python escapes such as \\r\\n; PADDING: that many more bytes ('x') after them
"""
import codecs
import socket
import sys

port, text = int(sys.argv[1]), sys.argv[2]
padding = int(sys.argv[3]) if len(sys.argv) > 3 else 0
with socket.create_connection(("127.0.0.1", port), timeout=20) as connection:
    connection.sendall(codecs.decode(text, "unicode_escape").encode("latin-1") + b"x" * padding)
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
sys.stdout.write(received.decode("latin-1"))
