"""Shared by the benchmarks: a throwaway data dir and, on request, a throwaway PostgreSQL
database (created and dropped on the given server), set up before Django starts."""

import os
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


@contextmanager
def django_on(database_url: str = ""):
    """Configure and start Django on a fresh SQLite file, or a fresh database of `database_url`'s
    server; migrate; drop the PostgreSQL database at the end."""
    data_dir = Path(tempfile.mkdtemp(prefix="crmsms-bench-"))
    os.environ["CRMSMS_DATA_DIR"] = str(data_dir)
    os.environ["CRMSMS_LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crmsms.settings")
    scratch = ""
    if database_url:
        import psycopg

        scratch = f"crmsms_bench_{os.getpid()}"
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{scratch}"')
            # What the previous benchmark left to write (PostgreSQL's dirty buffers, the
            # system's dirty pages) is written now, not during this one's commits.
            conn.execute("CHECKPOINT")
        os.sync()
        os.environ["DATABASE_URL"] = urlunsplit(urlsplit(database_url)._replace(path=f"/{scratch}"))
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0)
        yield data_dir
    finally:
        if scratch:
            import psycopg
            from django.db import connections

            connections.close_all()
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{scratch}"')


def free_port() -> int:
    """A TCP port nothing listens on now, for a server a benchmark starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_simulator(port: int) -> None:
    """Return once a `crmsms simulator` started on `port` answers."""
    import time

    import httpx

    for _ in range(200):
        try:
            httpx.get(f"http://127.0.0.1:{port}/health")
            return
        except httpx.ConnectError:
            time.sleep(0.05)
    raise RuntimeError("the simulator did not start")
