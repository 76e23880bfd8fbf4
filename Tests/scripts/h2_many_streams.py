"""Many concurrent HTTP/2 streams on one h2c connection (httpx with HTTP/2 prior
knowledge): COUNT GETs of PATH with `:authority` HOST, to 127.0.0.1:PORT.

usage: h2_many_streams.py PORT HOST COUNT PATH
prints: "status CODE" as each response head arrives, then, once every response ended, a
JSON object counting the statuses, one body per status, and the HTTP versions seen
"""
import asyncio
import json
import sys

import httpx

port, host, count, path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]


async def one(client):
    async with client.stream("GET", f"http://127.0.0.1:{port}{path}", headers={"host": host}) as response:
        print(f"status {response.status_code}", flush=True)
        body = (await response.aread()).decode("utf-8", "replace")
        return response.status_code, body, response.http_version


async def main():
    limits = httpx.Limits(max_connections=1)
    async with httpx.AsyncClient(http1=False, http2=True, limits=limits, timeout=60) as client:
        results = await asyncio.gather(*(one(client) for _ in range(count)))
    counts, bodies = {}, {}
    for status, body, _ in results:
        counts[str(status)] = counts.get(str(status), 0) + 1
        bodies.setdefault(str(status), body)
    versions = sorted({version for _, _, version in results})
    print(json.dumps({"counts": counts, "bodies": bodies, "versions": versions}), flush=True)


asyncio.run(main())
