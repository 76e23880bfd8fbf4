"""Opens an HTTP/2 (h2c) connection to 127.0.0.1:PORT, sends one request for HOST/,
reads its answer, then sends nothing more and reads until the server closes the
connection. Prints "answered STATUS", then "goaway" if a GOAWAY came, then "closed".
Uses the h2 package (installed with httpx[http2])."""
import socket
import sys

import h2.config
import h2.connection
import h2.events


def main():
    port, host = int(sys.argv[1]), sys.argv[2]
    sock = socket.create_connection(("127.0.0.1", port))
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    connection.send_headers(1, [(":method", "GET"), (":scheme", "http"), (":authority", host), (":path", "/hello")],
                            end_stream=True)
    sock.sendall(connection.data_to_send())
    while True:
        data = sock.recv(65536)
        if not data:
            print("closed", flush=True)
            return 0
        for event in connection.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                print(f"answered {dict(event.headers)[b':status'].decode()}", flush=True)
            elif isinstance(event, h2.events.ConnectionTerminated):
                print("goaway", flush=True)
        pending = connection.data_to_send()
        if pending:
            sock.sendall(pending)


if __name__ == "__main__":
    sys.exit(main())
