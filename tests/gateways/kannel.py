"""A real Kannel gateway on loopback, for tests and benchmarks: Debian's `bearerbox` and
`smsbox`, and Kannel's own test SMSC `fakesmsc` standing in for the operator (it takes
every message, prints it, and answers "accepted by the SMSC" then "delivered" reports).
`make test` installs them (scripts/ensure-gateways).

Start order matters (../shared/notes/gateways.md): bearerbox, then fakesmsc (a client of
bearerbox's fake-SMSC port), then smsbox (which serves sendsms).
"""

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

USER, PASSWORD, ADMIN_PASSWORD = "crm", "kannel-secret", "kannel-admin"
FAKESMSC = "/usr/lib/kannel/test/fakesmsc"
# The boxes log to their console (the .out files here) at debug level unless told otherwise:
# about 90 lines per message for smsbox, which cost it about half its CPU. A deployed Kannel
# does not log so (Debian's init script discards the console); info is what its log-file has.
CONSOLE_INFO = ("-v", "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if not path:
        raise RuntimeError(f"{name} not found: install Kannel with scripts/ensure-gateways (Debian's kannel and "
                           "kannel-extras)")
    return path


def _wait_for(what: str, check, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"Kannel: {what} not ready after {timeout}s")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class KannelGateway:
    def __init__(self, workdir: Path, inbound_url: str = "", nodelay: bool = False) -> None:
        """`inbound_url`: Kannel's get-url for SMS people send (with its %-escapes).
        `nodelay`: the boxes' connections get TCP_NODELAY (nodelay.c, built here with the C
        compiler), for benchmarks only."""
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "LD_PRELOAD": self._build_nodelay()} if nodelay else None
        self.admin_port, self.box_port, self.smsc_port, self.sendsms_port = (free_port() for _ in range(4))
        self.inbound_url = inbound_url
        self.config = self.dir / "kannel.conf"
        self.processes: dict[str, subprocess.Popen] = {}

    def url(self, password: str = PASSWORD, **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"from": "MyShop", **options}.items())
        return f"kannel://{USER}:{password}@127.0.0.1:{self.sendsms_port}?{query}"

    def _write_config(self) -> None:
        service = (f'get-url = "{self.inbound_url}"' if self.inbound_url else 'text = "No service"')
        self.config.write_text(f"""
group = core
admin-port = {self.admin_port}
admin-password = {ADMIN_PASSWORD}
status-password = {ADMIN_PASSWORD}
admin-allow-ip = "127.0.0.1"
smsbox-port = {self.box_port}
box-allow-ip = "127.0.0.1"
dlr-storage = internal
log-file = "{self.dir}/bearerbox.log"
log-level = 1

group = smsc
smsc = fake
smsc-id = FAKE
port = {self.smsc_port}
connect-allow-ip = 127.0.0.1

group = smsbox
mo-recode = true
bearerbox-host = 127.0.0.1
bearerbox-port = {self.box_port}
sendsms-port = {self.sendsms_port}
sendsms-interface = 127.0.0.1
global-sender = 12345
http-request-retry = 3
http-queue-delay = 1
log-file = "{self.dir}/smsbox.log"
log-level = 1

group = sendsms-user
username = {USER}
password = {PASSWORD}
max-messages = 10
concatenation = true

group = sms-service
keyword = default
catch-all = true
max-messages = 0
{service}
""")

    def _build_nodelay(self) -> str:
        compiler = shutil.which("cc") or shutil.which("gcc")
        if not compiler:
            raise RuntimeError("a Kannel with TCP_NODELAY needs a C compiler: apt-get install gcc")
        library = self.dir / "nodelay.so"
        built = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(library),
                                str(Path(__file__).with_name("nodelay.c")), "-ldl"], capture_output=True, text=True)
        if built.returncode:
            raise RuntimeError(f"could not build nodelay.so (apt-get install gcc libc6-dev?): {built.stderr}")
        return str(library)

    def _spawn(self, name: str, *command: str) -> None:
        log = open(self.dir / f"{name}.out", "ab")  # noqa: SIM115 (the process keeps it)
        self.processes[name] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                                start_new_session=True, env=self.env)

    def start(self) -> "KannelGateway":
        self._write_config()
        self._spawn("bearerbox", _binary("bearerbox"), *CONSOLE_INFO, str(self.config))
        _wait_for("bearerbox", lambda: _listening(self.admin_port) and _listening(self.smsc_port))
        self.start_fakesmsc()
        self.start_smsbox()
        return self

    def start_fakesmsc(self, inject: tuple[str, ...] = ()) -> None:
        """The operator's side. `inject`: messages it sends us, as 'FROM TO text WORDS...'."""
        self._spawn("fakesmsc", FAKESMSC, "-H", "127.0.0.1", "-r", str(self.smsc_port), "-i", "0.1",
                    "-m", str(len(inject)), *(inject or ("1 2 text x",)))
        _wait_for("the fake SMSC online", lambda: "online" in self.status())

    def start_smsbox(self) -> None:
        self._spawn("smsbox", _binary("smsbox"), *CONSOLE_INFO, str(self.config))
        _wait_for("smsbox's sendsms port", lambda: _listening(self.sendsms_port))

    def stop_process(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if name == "smsbox":
            _wait_for("smsbox stopped", lambda: not _listening(self.sendsms_port))

    def stop(self) -> None:
        for name in ("smsbox", "fakesmsc", "bearerbox"):
            self.stop_process(name)

    def status(self) -> str:
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.admin_port}/status.txt?password={ADMIN_PASSWORD}", timeout=2) as answer:
                return answer.read().decode()
        except OSError:
            return ""

    def received(self) -> list[tuple[str, str, str, str]]:
        """What the operator got: (from, to, type, data) per part, as fakesmsc printed it."""
        path = self.dir / "fakesmsc.out"
        text = path.read_text(errors="replace") if path.exists() else ""
        return re.findall(r"Got message \d+: <(\S+) (\S+) (\S+) (.*)>", text)
