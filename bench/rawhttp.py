"""A load client that costs almost no CPU: asyncio, keep-alive connections, requests written
as bytes, answers read by their Content-Length. The benchmarks' client shares the machine's
cores with the server it measures; httpx in threads spent about as much CPU per request as
the server did, so the figure was the client's as much as the server's.

    rate, statuses = get_all("127.0.0.1", 8000, ["/path?query", ...], connections=20)
"""

import asyncio
import collections
import http.client
import threading
import time


async def _one_connection(host: str, port: int, queue: collections.deque, statuses: collections.Counter) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while queue:
            target = queue.popleft()
            writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            statuses[int(lines[0].split()[1])] += 1
            headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:] if line)}
            if "content-length" not in headers:
                raise RuntimeError(f"an answer without Content-Length: {lines[0]} {headers}")
            await reader.readexactly(int(headers["content-length"]))
            if headers.get("connection", "").lower() == "close":
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


def get_all(host: str, port: int, targets: list[str], connections: int) -> tuple[float, collections.Counter]:
    """GET every target once over `connections` kept-alive connections; return (requests/s,
    count per HTTP status)."""
    queue = collections.deque(targets)
    statuses: collections.Counter = collections.Counter()

    async def run() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(_one_connection(host, port, queue, statuses) for _ in range(connections)))
        return len(targets) / (time.perf_counter() - start)

    return asyncio.run(run()), statuses


def per_thread(host: str, port: int):
    """A bare blocking client for a pool of threads: `request(method, target, body=None,
    headers=None) -> (status, body)`, each thread on its own kept-alive connection (what
    crmsms's provider connectors do), for the limits of the dispatch benchmarks."""
    local = threading.local()

    def request(method: str, target: str, body: bytes | None = None, headers: dict | None = None):
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection(host, port, timeout=30)
        local.connection.request(method, target, body, headers or {})
        answer = local.connection.getresponse()
        return answer.status, answer.read()

    return request
