"""Private PostgreSQL and Redis servers for tests that restart them: each on a free loopback
port with its data (and PostgreSQL's unix socket) in a temporary directory, never the
machine's shared servers. Nothing here touches 5432 or 6379.

PostgreSQL refuses to run as root: when the tests run as root, its commands run as the
`postgres` user (`runuser`), in a directory that user owns.
"""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.gateways.kannel import free_port


def _wait_for(what: str, check, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {timeout}s")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def postgres_bin(name: str) -> str | None:
    """A PostgreSQL server program (initdb, pg_ctl): on PATH, else Debian's versioned dir."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return candidates[-1] if candidates else None


class PrivatePostgres:
    """`initdb` + `pg_ctl` on a free port, trust auth, fsync off (a test cluster)."""

    def __init__(self) -> None:
        self.initdb, self.pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
        if not (self.initdb and self.pg_ctl):
            raise RuntimeError("initdb/pg_ctl not found: PostgreSQL's server package is not installed")
        self.as_root = os.geteuid() == 0
        self.dir = Path(tempfile.mkdtemp(prefix="crmsms-pg-"))
        if self.as_root:
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = free_port()
        self.user = "postgres"

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        command = (["runuser", "-u", "postgres", "--"] if self.as_root else []) + list(args)
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.dir)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}\n"
                               f"{self.log_tail()}")
        return result

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def start(self) -> "PrivatePostgres":
        self._run(self.initdb, "-D", str(self.data), "-U", self.user, "--auth=trust", "--encoding=UTF8",
                  "--no-sync", "--no-instructions")
        self._pg_ctl("start")
        return self

    def _pg_ctl(self, action: str, *extra: str) -> None:
        # fsync=off only risks data if the machine itself crashes; a killed server loses no
        # commit. (synchronous_commit=off would: a test of restarts cannot use it.)
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c max_connections=50")
        self._run(self.pg_ctl, action, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", options, *extra)

    def restart(self, mode: str = "fast", down_seconds: float = 0.0) -> None:
        """`pg_ctl restart -m fast|immediate`: every session is cut; immediate skips the
        shutdown checkpoint, so the server comes back through crash recovery. With
        `down_seconds`, stop, stay down that long (connections are refused), then start."""
        if not down_seconds:
            self._pg_ctl("restart", "-m", mode)
            return
        self._run(self.pg_ctl, "stop", "-D", str(self.data), "-m", mode, "-w")
        time.sleep(down_seconds)
        self._pg_ctl("start")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._run(self.pg_ctl, "stop", "-D", str(self.data), "-m", "immediate", "-w", timeout=60)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres", **options):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, dbname=database,
                               connect_timeout=5, **options)

    def create_database(self, name: str, template: str | None = None) -> str:
        with self.connect(autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return self.url(name)


class PrivateRedis:
    """`redis-server` on a free loopback port, keeping nothing on disk. `restart` kills it
    (SIGKILL: what a crash or an OOM kill does) and starts a new one on the same port."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/sbin:/usr/bin")
        if not self.binary:
            raise RuntimeError("redis-server not found")
        self.dir = Path(tempfile.mkdtemp(prefix="crmsms-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log = self.dir / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "PrivateRedis":
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--logfile", str(self.log), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        _wait_for(f"redis-server on {self.port}", lambda: self._pong() or self.process.poll() is not None)
        if self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited ({self.process.returncode}): "
                               f"{self.log.read_text(errors='replace') if self.log.exists() else ''}")
        return self

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        _wait_for(f"port {self.port} to close", lambda: not _listening(self.port), timeout=10)

    def restart(self, down_seconds: float = 0.0) -> None:
        self.kill()
        time.sleep(down_seconds)
        self.start()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)
