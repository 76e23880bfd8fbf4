"""Many concurrent HTTP/2 streams on one h2c connection, written with the h2 library:
COUNT GETs of PATH with `:authority` HOST, to 127.0.0.1:PORT, all sent at once.

(httpx was used first, but with many streams on one connection it can hold a response
head that has arrived until another stream's data comes: a test waiting for every head
then waited for its 60 s timeout.)

usage: h2_many_streams.py PORT HOST COUNT PATH
prints: "status CODE" as each response head arrives, then, once every response ended, a
JSON object counting the statuses, with one body per status
"""
import json
import sys

import h2.events

from h2_client import H2Client

port, host, count, path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
client = H2Client(port, host)
streams = [1 + 2 * index for index in range(count)]
for stream in streams:
    client.request(stream, "GET", path)
client.send()

statuses, bodies, ended = {}, {stream: b"" for stream in streams}, set()
while len(ended) < count:
    for event in client.events():
        if isinstance(event, h2.events.ResponseReceived):
            statuses[event.stream_id] = dict(event.headers)[b":status"].decode()
            print(f"status {statuses[event.stream_id]}", flush=True)
        elif isinstance(event, h2.events.DataReceived):
            bodies[event.stream_id] += event.data
            client.connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            ended.add(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            raise SystemExit(f"stream {event.stream_id} was reset with code {int(event.error_code)}")
        elif isinstance(event, h2.events.ConnectionTerminated):
            raise SystemExit(f"the relay ended the connection: {event}")
    client.send()

counts, first_bodies = {}, {}
for stream in streams:
    status = statuses[stream]
    counts[status] = counts.get(status, 0) + 1
    first_bodies.setdefault(status, bodies[stream].decode("utf-8", "replace"))
print(json.dumps({"counts": counts, "bodies": first_bodies}), flush=True)
