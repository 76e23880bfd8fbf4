"""gRPC server and clients for the benchmark, with grpcio from PyPI (run by the virtualenv
grpc_bench.py makes in bench/out/). No .proto: generic handlers carry raw bytes.

  grpc_peer.py server PORT               serves bench.Bench on 127.0.0.1:PORT, prints "listening PORT"
  grpc_peer.py unary TARGET SECONDS      unary calls one after another (c=1); prints JSON latencies
  grpc_peer.py stream TARGET BYTES       BYTES down (server streaming) then up (client streaming); JSON MB/s
"""

import json
import sys
import time
from concurrent import futures

import grpc

SERVICE = "bench.Bench"
CHUNK = 64 * 1024
HELLO = b"Hello, world!"
CALL_TIMEOUT = 300  # seconds: the client's deadline for any one call


def serve(port):
    def unary(request, context):
        return request

    def download(request, context):
        left = int(request.decode())
        block = b"x" * CHUNK
        while left > 0:
            yield block[: min(CHUNK, left)]
            left -= CHUNK

    def upload(requests, context):
        return str(sum(len(chunk) for chunk in requests)).encode()

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Download": grpc.unary_stream_rpc_method_handler(download),
        "Upload": grpc.stream_unary_rpc_method_handler(upload),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"listening {port}", flush=True)
    server.wait_for_termination()


def percentile(sorted_values, fraction):
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


def unary_calls(target, seconds):
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        call = channel.unary_unary(f"/{SERVICE}/Unary")
        warm_until = time.monotonic() + min(1.0, seconds / 5)
        while time.monotonic() < warm_until:
            call(HELLO, timeout=CALL_TIMEOUT)
        latencies = []
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            started = time.perf_counter()
            answer = call(HELLO, timeout=CALL_TIMEOUT)
            latencies.append((time.perf_counter() - started) * 1000)
            if answer != HELLO:
                raise SystemExit(f"unary answer {answer[:40]!r} is not the request")
    latencies.sort()
    print(json.dumps({"calls": len(latencies), "p50_ms": percentile(latencies, 0.50),
                      "p99_ms": percentile(latencies, 0.99), "max_ms": latencies[-1]}))


def stream(target, size):
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        started = time.perf_counter()
        received = sum(len(chunk) for chunk in channel.unary_stream(f"/{SERVICE}/Download")(
            str(size).encode(), timeout=CALL_TIMEOUT))
        down = time.perf_counter() - started

        def chunks():
            block, left = b"y" * CHUNK, size
            while left > 0:
                yield block[: min(CHUNK, left)]
                left -= CHUNK

        started = time.perf_counter()
        counted = int(channel.stream_unary(f"/{SERVICE}/Upload")(chunks(), timeout=CALL_TIMEOUT).decode())
        up = time.perf_counter() - started
    if received != size or counted != size:
        raise SystemExit(f"streamed {received} bytes down and {counted} up instead of {size}")
    print(json.dumps({"bytes": size, "down_mbps": size / down / 1e6, "up_mbps": size / up / 1e6}))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "server":
        serve(int(sys.argv[2]))
    elif mode == "unary":
        unary_calls(sys.argv[2], float(sys.argv[3]))
    elif mode == "stream":
        stream(sys.argv[2], int(sys.argv[3]))
    else:
        raise SystemExit(__doc__)
