"""A target app that is not SwiftNIO: it answers with exact bytes, to test how the
agent reads HTTP/1 from servers with other habits. Prints its port, then serves
until killed.

  /old      HTTP/1.0, no length: the body ends when the connection closes
  /chunked  HTTP/1.1 chunked, in pieces, with a trailer
  /keep     HTTP/1.1 with Content-Length; the connection stays open
  /garbage  not HTTP at all
  /bad-status   HTTP/1.1 with a status code that is not a number
  /raw-newline  not HTTP, with a bare newline in the first bytes
  /no-answer    closes the connection without a byte
  /hang         prints "hang" to stdout and never answers (until the client goes)
  /reject   413 at once, before the request body; then reads the body to its end
  /short    promises 100 bytes, sends 9, and closes
  /error    the app's own 500
  /hold     answers only once a request to /release has arrived (each /release lets
            every /hold waiting then go)
  /ws       a WebSocket handshake (101, Sec-WebSocket-Accept), then echoes every byte
            until the client closes, or until it has echoed "close-now" (then the app
            closes); without Upgrade: websocket, 426
"""
import base64
import hashlib
import socket
import socketserver
import sys
import threading

# Set by /release: the /hold requests waiting then answer.
release = threading.Condition()
released = 0


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            line = self.rfile.readline()
            if not line:
                return
            path = line.split()[1].decode()
            fields = {}
            while (field := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = field.decode("latin-1").partition(":")
                fields[name.strip().lower()] = value.strip()
            if path == "/ws":
                self.web_socket(fields)
                return
            if path == "/reject":
                body = b"too large"
                self.wfile.write(
                    b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                    % (len(body), body))
                self.wfile.flush()
                # Like a careful server: stop writing, read what still comes, then close
                # (closing with bytes unread would reset the connection under the answer).
                self.connection.shutdown(socket.SHUT_WR)
                while self.rfile.read(65536):
                    pass
                return
            if path == "/bad-status":
                self.wfile.write(b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n")
                self.wfile.flush()
                return
            if path == "/raw-newline":
                self.wfile.write(b"oops\nsecond line\r\n")
                self.wfile.flush()
                return
            if path == "/no-answer":
                return
            if path == "/hang":
                print("hang", flush=True)
                while self.rfile.read(65536):
                    pass
                return
            if path == "/short":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n123456789")
                self.wfile.flush()
                return
            if path == "/hold":
                with release:
                    seen = released
                    release.wait_for(lambda: released > seen)
                self.answer(b"released\n")
                continue
            if path == "/release":
                self.release_held()
                self.answer(b"ok\n")
                continue
            if path == "/error":
                body = b"the app failed\n"
                self.wfile.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                self.wfile.flush()
                continue
            if path == "/old":
                self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nended by close\n")
                return
            if path == "/chunked":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n")
                for piece in (b"first ", b"second ", b"third\n"):
                    self.wfile.write(b"%x;note=1\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.flush()
                self.wfile.write(b"0\r\nX-Sum: 42\r\n\r\n")
            elif path == "/keep":
                port = self.client_address[1]
                body = b"connection from port %d\n" % port
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            else:
                self.wfile.write(b"SSH-2.0-OpenSSH_9.2\r\n")
                return
            self.wfile.flush()


    def answer(self, body):
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        self.wfile.flush()

    @staticmethod
    def release_held():
        global released
        with release:
            released += 1
            release.notify_all()

    def web_socket(self, fields):
        if fields.get("upgrade", "").lower() != "websocket" or "sec-websocket-key" not in fields:
            self.wfile.write(b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            self.wfile.flush()
            return
        # RFC 6455 section 4.2.2: the key and a fixed GUID, hashed.
        digest = hashlib.sha1((fields["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode())
        accept = base64.b64encode(digest.digest())
        self.wfile.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: %s\r\n\r\n" % accept)
        self.wfile.flush()
        while chunk := self.rfile.read1(65536):  # read1: bytes already buffered first
            self.connection.sendall(chunk)
            if chunk.endswith(b"close-now"):
                return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True


with Server(("127.0.0.1", 0), Handler) as server:
    print(server.server_address[1], flush=True)
    server.serve_forever()
