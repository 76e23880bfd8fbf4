#!/usr/bin/env python3
"""Upload sink behind the backend nginx: reads each request body to the end, then answers.

nginx's own `return 200` answers before the body has arrived (and discards the rest
afterwards), which lets a proxy in front stop forwarding the body. This sink answers
only once it has counted every byte, so an upload is measured end to end, and its
answer, `received=N`, lets bench.py check that nothing was lost on the way.

Usage: sink.py unix:/path/to/socket | sink.py 127.0.0.1:PORT
HTTP/1.1 with keep-alive, Content-Length or chunked bodies; standard library only.
"""

import os
import socket
import sys
import threading

CHUNK = 4 << 20


class Closed(Exception):
    pass


class Connection:
    def __init__(self, sock):
        self.sock = sock
        self.pending = bytearray()
        self.scratch = bytearray(CHUNK)
        self.view = memoryview(self.scratch)

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise Closed()
        self.pending += data

    def read_line(self):
        while True:
            end = self.pending.find(b"\r\n")
            if end >= 0:
                line = bytes(self.pending[:end])
                del self.pending[: end + 2]
                return line
            if len(self.pending) > 65536:
                raise ValueError("line too long")
            self._fill()

    def discard(self, count):
        """Reads and drops exactly `count` body bytes."""
        take = min(count, len(self.pending))
        del self.pending[:take]
        left = count - take
        while left:
            n = self.sock.recv_into(self.view, min(left, CHUNK))
            if n == 0:
                raise Closed()
            left -= n
        return count

    def serve(self):
        while True:
            request_line = self.read_line()
            if not request_line:
                continue
            length, chunked, expect = 0, False, False
            while True:
                line = self.read_line()
                if not line:
                    break
                name, _, value = line.partition(b":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value
                elif name == b"expect":
                    expect = value == b"100-continue"
            if expect:
                self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            received = 0
            if chunked:
                while True:
                    size = int(self.read_line().split(b";")[0], 16)
                    if size == 0:
                        while self.read_line():
                            pass  # trailers
                        break
                    received += self.discard(size)
                    self.read_line()
            else:
                received = self.discard(length)
            body = b"received=%d\n" % received
            self.sock.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
            )


def handle(sock):
    try:
        Connection(sock).serve()
    except Closed:
        pass
    except (OSError, ValueError) as error:
        print(f"sink: {error}", file=sys.stderr)
    finally:
        sock.close()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    address = sys.argv[1]
    if address.startswith("unix:"):
        path = address[len("unix:") :]
        if os.path.exists(path):
            os.unlink(path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
    else:
        host, _, port = address.rpartition(":")
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((host, int(port)))
    server.listen(256)
    while True:
        sock, _ = server.accept()
        threading.Thread(target=handle, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    main()
