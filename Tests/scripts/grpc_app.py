"""A gRPC server written with grpcio (no .proto: generic handlers, raw bytes), for the
tests to reach through Pinhole. Prints "listening PORT", then serves until killed.
Cancelled calls are reported on stdout as "cancelled METHOD", so a test can see a
client's cancellation reach the app.

Service pinhole.test.Echo:
  Unary          returns the request; trailing metadata x-echo-trailer: done
  ServerStream   request b"COUNT:SIZE": COUNT messages of SIZE bytes each
  ClientStream   returns b"COUNT:BYTES:SHA256" of the messages received
  Bidi           echoes each message as it arrives
  Fail           aborts with FAILED_PRECONDITION and a message (non-ASCII included)
  Hold           prints "holding", then waits until the call is cancelled (or 60 s)
"""
import hashlib
import sys
import threading
from concurrent import futures

import grpc

SERVICE = "pinhole.test.Echo"
FAIL_MESSAGE = "the cart is empty: 100% sure, ünïcode"


def identity(data):
    return data


def unary(request, context):
    context.set_trailing_metadata((("x-echo-trailer", "done"),))
    return request


def server_stream(request, context):
    count, size = (int(part) for part in request.decode().split(":"))
    block = bytes(range(256)) * (size // 256) + bytes(size % 256)
    for _ in range(count):
        if not context.is_active():
            return
        yield block


def client_stream(requests, context):
    digest = hashlib.sha256()
    count = total = 0
    for message in requests:
        count += 1
        total += len(message)
        digest.update(message)
    return f"{count}:{total}:{digest.hexdigest()}".encode()


def bidi(requests, context):
    for message in requests:
        yield message


def fail(request, context):
    context.abort(grpc.StatusCode.FAILED_PRECONDITION, FAIL_MESSAGE)


def hold(request, context):
    done = threading.Event()
    context.add_callback(done.set)
    print("holding", flush=True)
    done.wait(60)
    if not context.is_active():
        print("cancelled Hold", flush=True)
    return b""


def main():
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, identity, identity),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, identity, identity),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream, identity, identity),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi, identity, identity),
        "Fail": grpc.unary_unary_rpc_method_handler(fail, identity, identity),
        "Hold": grpc.unary_unary_rpc_method_handler(hold, identity, identity),
    }
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=128),
        options=[("grpc.max_receive_message_length", 8 << 20), ("grpc.max_send_message_length", 8 << 20)],
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening {port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    sys.exit(main())
