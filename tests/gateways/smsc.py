"""A local SMSC for the SMPP tests, built on `smpp34`'s server (a Rust SMPP 3.4
implementation, independent of our own PDU code): it takes binds and submit_sm, answers
with an id, sends a delivery receipt per part as deliver_sm, and can be told to throttle,
refuse numbers, unbind an ESME mid-batch, or deliver an SMS someone sends us.

Every part it accepted is in `accepted`: a test checks nothing arrived twice from it.

ESMEs connect through a small proxy in front of the server, which plays the SMSC's side
of an unbind: after `unbind_after` answered submits it sends the ESME an unbind and closes
the connection, whatever is in flight (smpp34's own server-side unbind stalls its event
loop when submits are pending).
"""

import asyncio
import itertools
import struct
import threading
import time
from dataclasses import dataclass

import smpp34

from tests.gateways.kannel import free_port


@dataclass
class Accepted:
    message_id: str
    destination: str
    source: str
    short_message: bytes
    esm_class: int
    data_coding: int


class Smsc:
    def __init__(self, port: int | None = None, password: str | None = None) -> None:
        self.password = password  # checked by the proxy (smpp34's server takes any)
        self.port = port or free_port()  # the proxy's; the server listens on its own
        self.server_port = free_port()
        self.answered = 0  # submit_sm_resp with ESME_ROK that reached an ESME
        self.accepted: list[Accepted] = []
        self.refuse: dict[str, int] = {}  # destination (digits) -> command_status
        self.throttle_next = 0  # answer ESME_RTHROTTLED to this many submits
        self.unbind_after: int | None = None  # unbind the ESME after this many accepted parts
        self.receipts = True
        self.receipt_stat = "DELIVRD"
        self.binds = 0
        self.errors: list[str] = []
        self.sessions: dict[str, smpp34.Esme] = {}
        self._ids = itertools.count(1)
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="smsc")
        self.thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the SMSC did not start")

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.serving = self.loop.create_task(self._serve())
        self.loop.run_forever()

    async def _serve(self) -> None:
        self.server = smpp34.Server(host="127.0.0.1", port=self.server_port, system_id="TESTSMSC")
        await self.server.start()
        self.proxy = await asyncio.start_server(self._proxy, "127.0.0.1", self.port)
        self._ready.set()
        while True:
            event = await self.server.next()
            if isinstance(event, smpp34.Esme):
                self.binds += 1
                self.sessions[event.session_id] = event
            elif isinstance(event, smpp34.Unbound):
                self.sessions.pop(event.session_id, None)
            elif isinstance(event, smpp34.SubmitSmEvent):
                try:
                    self._submitted(event)
                except Exception as exc:  # noqa: BLE001  (answering a session that has gone: keep serving)
                    self.errors.append(repr(exc))

    def _submitted(self, event) -> None:
        if self.throttle_next > 0:
            self.throttle_next -= 1
            event.reject(smpp34.ESME_RTHROTTLED)
            return
        if event.destination_addr in self.refuse:
            event.reject(self.refuse[event.destination_addr])
            return
        message_id = f"smsc-{next(self._ids)}"
        event.accept(message_id=message_id)
        self.accepted.append(Accepted(message_id, event.destination_addr, event.source_addr, event.short_message,
                                      event.esm_class, event.data_coding))
        session = self.sessions.get(event.session_id)
        if self.receipts and event.registered_delivery and session:
            self.loop.create_task(self._receipt(session, event.destination_addr, event.source_addr, message_id))

    async def _proxy(self, client_reader, client_writer) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.server_port)

        async def to_server():
            try:
                while True:
                    header = await client_reader.readexactly(16)
                    length, command_id, _, sequence = struct.unpack(">IIII", header)
                    body = await client_reader.readexactly(length - 16)
                    if command_id == 0x00000009 and self.password is not None:  # bind_transceiver
                        system_id, password = body.split(b"\0")[:2]
                        if password.decode() != self.password:
                            # What an SMSC answers to a wrong password: ESME_RINVPASWD, then it hangs up.
                            resp = b"TESTSMSC\0"
                            client_writer.write(struct.pack(">IIII", 16 + len(resp), 0x80000009, 0x0E, sequence)
                                                + resp)
                            await client_writer.drain()
                            break
                    server_writer.write(header + body)
                    await server_writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError, OSError):
                pass
            server_writer.close()
            client_writer.close()

        upstream = self.loop.create_task(to_server())
        try:
            while True:
                header = await server_reader.readexactly(16)
                length, command_id, status, _ = struct.unpack(">IIII", header)
                client_writer.write(header + await server_reader.readexactly(length - 16))
                await client_writer.drain()
                if command_id == 0x80000004 and status == 0:
                    self.answered += 1
                    if self.unbind_after is not None and self.answered >= self.unbind_after:
                        self.unbind_after = None
                        client_writer.write(struct.pack(">IIII", 16, 0x00000006, 0, 0x7FFFFF00))  # unbind
                        await client_writer.drain()
                        await asyncio.sleep(0.2)  # time for the ESME's unbind_resp, which is not awaited
                        break
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        upstream.cancel()
        for writer in (client_writer, server_writer):
            writer.close()

    async def _receipt(self, session, destination: str, source: str, message_id: str) -> None:
        await asyncio.sleep(0.01)
        now = time.strftime("%y%m%d%H%M")
        text = (f"id:{message_id} sub:001 dlvrd:001 submit date:{now} done date:{now} "
                f"stat:{self.receipt_stat} err:000 text:")
        try:
            await session.deliver_sm(destination_addr=source, source_addr=destination, esm_class=0x04,
                                     short_message=text.encode())
        except Exception:  # noqa: BLE001  the ESME went away: the receipt is lost, as with a real SMSC
            pass

    def deliver(self, source: str, text: str) -> None:
        """An SMS someone sends us (source in E.164 digits), to every bound ESME."""
        async def send():
            for session in list(self.sessions.values()):
                await session.deliver_sm(destination_addr="12345", source_addr=source.lstrip("+"),
                                         source_addr_ton=1, source_addr_npi=1, data_coding=0x08,
                                         short_message=text.encode("utf-16-be"))

        asyncio.run_coroutine_threadsafe(send(), self.loop).result(10)

    def wait_bound(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not self.sessions and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.sessions, "no ESME bound to the SMSC"

    def stop(self) -> None:
        async def stop():
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            self.proxy.close()
            await self.server.stop()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
