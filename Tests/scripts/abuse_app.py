"""The app behind the tunnel for abuse_suite.sh: prints its port, then serves until killed.

  GET  /hello   "Hello, world!"
  POST /echo    answers its head at once, then echoes the body until the request ends
  POST /upload  reads the whole body (Content-Length), then answers "got N bytes"
"""
import asyncio
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
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
