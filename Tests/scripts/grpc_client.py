"""A grpcio client for the tests: runs the named cases against ADDRESS (host:port),
sending AUTHORITY as :authority when given, and prints "ok CASE ..." per case, or
"FAIL CASE: why" and exits 1. With --tls CERT it uses TLS trusting CERT (ALPN h2).

  python3 grpc_client.py ADDRESS [--authority A] [--tls CERT] CASE...

Cases: unary server_stream client_stream bidi error deadline cancel concurrent
bulk_down bulk_up unavailable needs_h2c. `cancel` starts a call, then cancels it when a line
arrives on stdin.
"""
import argparse
import hashlib
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "/pinhole.test.Echo/"
FAIL_MESSAGE = "the cart is empty: 100% sure, ünïcode"
BULK = 64 << 20
CHUNK = 64 << 10


def identity(data):
    return data


class Failure(Exception):
    pass


def check(condition, why):
    if not condition:
        raise Failure(why)


def method(channel, name, kind):
    make = {
        "uu": channel.unary_unary,
        "us": channel.unary_stream,
        "su": channel.stream_unary,
        "ss": channel.stream_stream,
    }[kind]
    return make(SERVICE + name, request_serializer=identity, response_deserializer=identity)


def case_unary(channel):
    call = method(channel, "Unary", "uu")
    response, info = call.with_call(b"hello through the tunnel", timeout=30)
    check(response == b"hello through the tunnel", f"echo differs: {response!r}")
    trailers = dict(info.trailing_metadata())
    check(trailers.get("x-echo-trailer") == "done", f"trailer missing: {trailers}")
    return "echo and trailer"


def case_server_stream(channel):
    messages = list(method(channel, "ServerStream", "us")(b"50:1000", timeout=30))
    check(len(messages) == 50 and all(len(m) == 1000 for m in messages), f"got {len(messages)} messages")
    return "50 messages"


def case_client_stream(channel):
    parts = [bytes([i]) * (i + 1) for i in range(40)]
    digest = hashlib.sha256(b"".join(parts)).hexdigest()
    response = method(channel, "ClientStream", "su")(iter(parts), timeout=30)
    check(response.decode() == f"40:{sum(map(len, parts))}:{digest}", f"summary differs: {response!r}")
    return "40 messages"


def case_bidi(channel):
    sent = [f"message {i}".encode() for i in range(30)]
    received = list(method(channel, "Bidi", "ss")(iter(sent), timeout=30))
    check(received == sent, f"echoes differ: {received[:3]}...")
    return "30 echoes"


def case_error(channel):
    try:
        method(channel, "Fail", "uu")(b"", timeout=30)
    except grpc.RpcError as error:
        check(error.code() == grpc.StatusCode.FAILED_PRECONDITION, f"status {error.code()}")
        check(error.details() == FAIL_MESSAGE, f"message {error.details()!r}")
        return "FAILED_PRECONDITION with its message"
    raise Failure("the call succeeded")


def case_deadline(channel):
    started = time.monotonic()
    try:
        method(channel, "Hold", "uu")(b"", timeout=1.0)
    except grpc.RpcError as error:
        check(error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, f"status {error.code()}: {error.details()}")
        return f"DEADLINE_EXCEEDED after {time.monotonic() - started:.1f} s"
    raise Failure("the call succeeded")


def case_cancel(channel):
    future = method(channel, "Hold", "uu").future(b"", timeout=30)
    # The test sends a line once the app has said the call reached it, then waits for
    # the app to report the cancellation.
    print("waiting for the go-ahead to cancel", flush=True)
    sys.stdin.readline()
    future.cancel()
    check(future.cancelled(), "the call was not cancelled")
    return "cancelled"


def case_concurrent(channel):
    call = method(channel, "Unary", "uu")
    with futures.ThreadPoolExecutor(max_workers=100) as pool:
        calls = [call.future(f"call {i}".encode(), timeout=60) for i in range(100)]
        results = [f.result() for f in calls]
    check(results == [f"call {i}".encode() for i in range(100)], "some answers differ")
    return "100 calls"


def case_bulk_down(channel):
    count = BULK // CHUNK
    digest = hashlib.sha256()
    total = 0
    for message in method(channel, "ServerStream", "us")(f"{count}:{CHUNK}".encode(), timeout=300):
        total += len(message)
        digest.update(message)
    expected = hashlib.sha256((bytes(range(256)) * (CHUNK // 256)) * count).hexdigest()
    check(total == BULK, f"received {total} bytes")
    check(digest.hexdigest() == expected, "checksum differs")
    return f"{total} bytes"


def case_bulk_up(channel):
    block = bytes(range(256)) * (CHUNK // 256)
    count = BULK // CHUNK
    response = method(channel, "ClientStream", "su")((block for _ in range(count)), timeout=300)
    expected = hashlib.sha256(block * count).hexdigest()
    check(response.decode() == f"{count}:{BULK}:{expected}", f"summary differs: {response!r}")
    return f"{BULK} bytes"


def case_unavailable(channel):
    try:
        method(channel, "Unary", "uu")(b"x", timeout=30)
    except grpc.RpcError as error:
        check(error.code() == grpc.StatusCode.UNAVAILABLE, f"status {error.code()}")
        check(error.details().startswith("pinhole: "), f"message {error.details()!r}")
        return f"UNAVAILABLE: {error.details()}"
    raise Failure("the call succeeded")


def case_needs_h2c(channel):
    try:
        method(channel, "Unary", "uu")(b"x", timeout=30)
    except grpc.RpcError as error:
        check(error.code() == grpc.StatusCode.INTERNAL, f"status {error.code()}")
        check("--app-protocol h2c" in error.details(), f"message {error.details()!r}")
        return f"INTERNAL: {error.details()}"
    raise Failure("the call succeeded")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("address")
    parser.add_argument("--authority")
    parser.add_argument("--tls")
    parser.add_argument("cases", nargs="+")
    args = parser.parse_args()
    options = [("grpc.max_receive_message_length", 8 << 20), ("grpc.enable_retries", 0)]
    if args.authority:
        options.append(("grpc.default_authority", args.authority))
    if args.tls:
        with open(args.tls, "rb") as file:
            credentials = grpc.ssl_channel_credentials(root_certificates=file.read())
        if args.authority:
            options.append(("grpc.ssl_target_name_override", args.authority.rsplit(":", 1)[0]))
        channel = grpc.secure_channel(args.address, credentials, options=options)
    else:
        channel = grpc.insecure_channel(args.address, options=options)
    failed = False
    for name in args.cases:
        try:
            print(f"ok {name} {globals()['case_' + name](channel)}", flush=True)
        except (Failure, grpc.RpcError) as error:
            text = f"{error.code()}: {error.details()}" if isinstance(error, grpc.RpcError) else str(error)
            print(f"FAIL {name}: {text}", flush=True)
            failed = True
    channel.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
