"""The app behind the tunnel for abuse_suite.sh: prints its port, then serves until killed.

  GET  /hello   "Hello, world!"
  POST /echo    answers its head at once, then echoes the body until the request ends
  POST /upload  reads the whole body (Content-Length), then answers "got N bytes"
  GET  /download?bytes=N  N bytes of "x" (Content-Length), written as the client reads
  GET  /crash?bytes=N     announces N bytes, sends half of them, and exits at once: an
                          app crashing mid-body
"""
import asyncio
import os
import sys


async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split()[:2]
            fields = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if l)}
            length = int(fields.get("content-length", "0"))
            if path.startswith("/echo"):
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                await writer.drain()
                body = await reader.readexactly(length)
                writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n")
            elif path.startswith("/upload"):
                body = await reader.readexactly(length)
                answer = f"got {len(body)} bytes".encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer))
            elif path.startswith("/download") or path.startswith("/crash"):
                size = int(path.partition("bytes=")[2] or "0")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
                chunk = b"x" * 65536
                left = size // 2 if path.startswith("/crash") else size
                while left > 0:
                    writer.write(chunk[:left])
                    left -= min(left, len(chunk))
                    await writer.drain()
                if path.startswith("/crash"):
                    os._exit(3)
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!")
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        # A head it cannot read (the suite sends mangled ones on purpose): hang up.
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
