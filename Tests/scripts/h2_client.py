"""An h2c client on one connection to 127.0.0.1, written with the h2 library, for the
test scripts that need HTTP/2 streams under their own control (h2_many_streams.py,
h2_stalls.py): requests go out as told, and each read's events come back as h2 gives them.
"""
import socket

import h2.config
import h2.connection


class H2Client:
    def __init__(self, port, authority):
        self.authority = authority
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.connection = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
        self.connection.initiate_connection()

    def request(self, stream, method, path, end=True, extra=()):
        """Queues a request's HEADERS on `stream`; `send` writes them."""
        headers = [(":method", method), (":path", path), (":scheme", "http"), (":authority", self.authority)]
        self.connection.send_headers(stream, headers + list(extra), end_stream=end)

    def send(self):
        self.sock.sendall(self.connection.data_to_send())

    def events(self):
        """The events of the next read; the peer closing ends the script with a message."""
        data = self.sock.recv(65536)
        if not data:
            raise SystemExit("the relay closed the connection")
        return self.connection.receive_data(data)
