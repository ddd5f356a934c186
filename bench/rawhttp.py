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


class _Sink(asyncio.Protocol):
    """Answers 200 with no body to every request on a kept-alive connection (requests
    without a body: GET), closing only when the client asks to; counts them in `counter`."""

    def __init__(self, counter: "Answered") -> None:
        self.counter = counter

    def connection_made(self, transport) -> None:
        self.transport, self.pending = transport, b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        *heads, self.pending = self.pending.split(b"\r\n\r\n")
        for head in heads:
            self.counter.count += 1
            self.counter.last_at = time.perf_counter()
            closing = b"connection: close" in head.lower() or head.split(b"\r\n", 1)[0].endswith(b"HTTP/1.0")
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
                                 + (b"Connection: close\r\n\r\n" if closing else b"\r\n"))
            if closing:
                self.transport.close()
                return


class Answered:
    """What a null_server answered: how many requests, and when the last one came
    (time.perf_counter())."""

    count = 0
    last_at = 0.0

    def settled(self, quiet: float = 1.0) -> "Answered":
        """Return once no request came for `quiet` seconds."""
        while True:
            seen = self.count
            time.sleep(quiet)
            if self.count == seen:
                return self


def null_server() -> tuple[int, Answered, "threading.Event"]:
    """An HTTP server, in a thread of its own, that answers 200 to every GET at almost no
    CPU (asyncio, kept-alive connections), for what a benchmark must take calls from but
    does not measure (Kannel's delivery reports). Returns (port, its count of requests, an
    Event that stops it)."""
    started, stop = threading.Event(), threading.Event()
    port, answered = [], Answered()

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(lambda: _Sink(answered), "127.0.0.1", 0,
                                                                backlog=1024)
        port.append(server.sockets[0].getsockname()[1])
        started.set()
        while not stop.is_set():
            await asyncio.sleep(0.2)
        server.close()

    threading.Thread(target=asyncio.run, args=(serve(),), daemon=True).start()
    started.wait(10)
    return port[0], answered, stop
