"""HTTP/2 clients that stop moving, written with the h2 library on one h2c connection to
127.0.0.1:PORT, `:authority` HOST:
- stream 1: GET /events, an answer the app holds (it stays open while the app waits);
- stream 3: POST /upload announcing 10 bytes of body, and sending none;
- stream 5: GET /download?bytes=BYTES, never giving back any window.
It reads frames until stream 3 was answered and stream 5 was reset, saying each as it
happens ("upload STATUS BODY", "download reset CODE"), then "events open" if stream 1 is
still going; after "release" on stdin it waits for stream 1 to end ("events ended").

usage: h2_stalls.py PORT HOST BYTES
"""
import sys

import h2.events

from h2_client import H2Client

port, host, download_bytes = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
client = H2Client(port, host)
connection = client.connection
# The connection's window stays wide open: only stream 5's own window shuts.
connection.increment_flow_control_window(1 << 30)
client.request(1, "GET", "/events")
client.request(3, "POST", "/upload", end=False, extra=[("content-length", "10")])
client.request(5, "GET", f"/download?bytes={download_bytes}")
client.send()

bodies = {1: b"", 3: b""}
statuses = {}
ended, reset = set(), {}


def pump():
    for event in client.events():
        if isinstance(event, h2.events.ResponseReceived):
            statuses[event.stream_id] = dict(event.headers)[b":status"].decode()
        elif isinstance(event, h2.events.DataReceived):
            if event.stream_id in bodies:
                bodies[event.stream_id] += event.data
                # Streams 1 and 3 read what they get; stream 5 never gives its window back.
                connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            else:
                connection.increment_flow_control_window(event.flow_controlled_length)
        elif isinstance(event, h2.events.StreamEnded):
            ended.add(event.stream_id)
            if event.stream_id == 3:
                print(f"upload {statuses.get(3)} {bodies[3].decode().strip()}", flush=True)
            if event.stream_id == 1:
                print("events ended", flush=True)
        elif isinstance(event, h2.events.StreamReset):
            reset[event.stream_id] = event.error_code
            if event.stream_id == 5:
                print(f"download reset {int(event.error_code)}", flush=True)
    client.send()


while 3 not in ended or 5 not in reset:
    pump()
if statuses.get(1) == "200" and 1 not in ended and 1 not in reset:
    print("events open", flush=True)
if sys.stdin.readline().strip() == "release":
    while 1 not in ended and 1 not in reset:
        pump()
