"""smpp://SYSTEM_ID:PASSWORD@host:2775?source=MyShop sends through an SMSC over SMPP 3.4,
bound as a transceiver; `smpp+tls://` wraps the connection in TLS. Options in the query:
`source` (sender: digits for a number, else an alphanumeric name), `window` (submits in
flight, default 10), `system_type`.

The worker keeps one session bound (a thread reconnects with a growing pause, 1 s to 60 s,
and sends enquire_link when the line is quiet), so delivery receipts and SMS people send
us arrive over it even when nothing is being sent. Receipts come over our own
authenticated session, so they need no token: each names the SMSC's id for a part, which
this connector maps back to our reference.

A text is split into parts by `segments.encoded_parts` (never inside an escape or a
surrogate pair) and sent with a 6-octet concatenation header, each part asking for a
receipt. What the SMSC's answers prove (DESIGN §4), per message:
- every part ESME_ROK: accepted (the first part's id kept);
- ESME_RTHROTTLED or ESME_RMSGQFUL: the SMSC asks us to slow down: sending pauses (from
  0.1 s, doubling) and the part is submitted again, up to THROTTLE_PATIENCE seconds; then,
  if no part of the message was taken, retry later;
- not bound (SMSC down, refused bind): retry later; a refused password or system id is a
  configuration error named as such;
- another error status for every part: failed, with the status's name;
- a part submitted without an answer before the session ended (an unbind mid-batch, a
  broken connection), or some parts taken and others not: ambiguous, never resent.
Parts not yet submitted when the session ends are sent on the next session.
"""

import collections
import logging
import random
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from queue import Queue
from urllib.parse import parse_qs, unquote

import smsutil
from django.db import close_old_connections

from .. import segments
from . import smpp_pdu as pdu
from .base import Connector, Outcome, OutgoingSms

log = logging.getLogger(__name__)

ENQUIRE_EVERY = 30.0  # seconds of silence before we check the line
RESPONSE_TIMEOUT = 10.0  # seconds for the SMSC to answer a request
THROTTLE_PATIENCE = 10.0  # seconds a message may wait on throttling answers within one batch
BIND_WAIT = 5.0  # seconds a batch waits for a session being bound
REMEMBERED_PARTS = 200_000  # SMSC part id -> our reference, for receipts of later parts

DATA_CODING = {segments.GSM7: 0x00, segments.UCS2: 0x08}
# A receipt's stat: word (or its message_state TLV), as reports.STATUS_WORDS["smpp"] reads it.
MESSAGE_STATES = {1: "enroute", 2: "delivrd", 3: "expired", 4: "deleted", 5: "undeliv", 6: "acceptd", 7: "unknown",
                  8: "rejectd"}
_AUTH_STATUSES = {0x0D, 0x0E, 0x0F}  # bind failed, invalid password, invalid system id
_NOT_TAKEN = {pdu.ESME_RMSGQFUL, pdu.ESME_RTHROTTLED, 0x08}  # queue full, throttled, system error


class NotBound(Exception):
    pass


@dataclass
class _Waiter:
    done: threading.Event
    answer: pdu.Pdu | None = None
    on_answer: object = None  # called by the reader with the answer, before it reads on


class Session:
    """One bound SMPP session: a socket; a reader thread that matches answers to requests by
    sequence number and answers the SMSC's own requests; and a storer thread that stores
    each deliver_sm (a receipt, an SMS someone sent) and only then acknowledges it, so that a
    slow database never holds up the answers to our submits."""

    def __init__(self, sock: socket.socket, on_deliver) -> None:
        self.sock, self.on_deliver = sock, on_deliver
        self.lock = threading.RLock()  # one writer at a time; _end may be called while writing
        self.waiting: dict[int, _Waiter] = {}
        self.sequence = 0
        self.open = True
        self.last_heard = time.monotonic()
        self.delivered: Queue = Queue()
        self.reader = threading.Thread(target=self._read, name="smpp-reader", daemon=True)
        self.storer = threading.Thread(target=self._store, name="smpp-storer", daemon=True)

    @classmethod
    def bind(cls, host: str, port: int, system_id: str, password: str, system_type: str, use_tls: bool,
             on_deliver) -> "Session":
        sock = socket.create_connection((host, port), timeout=3)
        if use_tls:
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        sock.settimeout(None)
        session = cls(sock, on_deliver)
        session.reader.start()
        session.storer.start()
        try:
            answer = session.request(lambda seq: pdu.bind_transceiver(seq, system_id, password, system_type))
        except NotBound:
            answer = None
        if answer is None or answer.status != pdu.ESME_ROK:
            session.close()
            raise BindRefused(answer.status if answer else None)
        return session

    def _next_sequence(self) -> int:
        self.sequence = self.sequence % 0x7FFFFFFF + 1
        return self.sequence

    def submit(self, build, on_answer=None) -> _Waiter:
        """Send the request `build(sequence)` makes; the waiter is set when it is answered or
        the session ends (answer None). Raises NotBound if the session has ended."""
        with self.lock:
            if not self.open:
                raise NotBound("the session has ended")
            sequence = self._next_sequence()
            data = build(sequence).encode()
            waiter = self.waiting[sequence] = _Waiter(threading.Event(), on_answer=on_answer)
            try:
                self.sock.sendall(data)
            except OSError as exc:
                self.waiting.pop(sequence, None)
                self._end()
                raise NotBound(f"could not write to the SMSC ({exc})") from exc
        return waiter

    def request(self, build, timeout: float = RESPONSE_TIMEOUT) -> pdu.Pdu | None:
        waiter = self.submit(build)
        waiter.done.wait(timeout)
        return waiter.answer

    def _recv_exactly(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("the SMSC closed the connection")
            data += chunk
        return bytes(data)

    def _read(self) -> None:
        try:
            while self.open:
                message = pdu.read_pdu(self._recv_exactly)
                self.last_heard = time.monotonic()
                if message.command_id & 0x80000000:  # an answer to one of ours (or generic_nack)
                    with self.lock:
                        waiter = self.waiting.pop(message.sequence, None)
                    if waiter:
                        waiter.answer = message
                        if waiter.on_answer:
                            waiter.on_answer(message)
                        waiter.done.set()
                elif message.command_id == pdu.DELIVER_SM:
                    if message.fields.get("malformed"):
                        # Refused for good (not "try again"): the same octets would fail again forever.
                        log.warning("SMPP: a deliver_sm we cannot read (%s): refused", message.fields["malformed"])
                        self._answer(pdu.response(message, pdu.ESME_RX_R_APPN, b"\0"))
                    else:
                        self.delivered.put(message)
                elif message.command_id == pdu.ENQUIRE_LINK:
                    self._answer(pdu.response(message))
                elif message.command_id == pdu.UNBIND:
                    log.info("SMPP: the SMSC unbound us")
                    self._answer(pdu.response(message))
                    break
                else:
                    self._answer(pdu.Pdu(pdu.GENERIC_NACK, status=0x03, sequence=message.sequence))
        except (OSError, ConnectionError, ValueError) as exc:
            if self.open:
                log.info("SMPP session ended: %s", exc)
        finally:
            self._end()

    def _store(self) -> None:
        """Stored first, acknowledged after: if storing fails, the answer asks the SMSC to
        deliver it again later (ESME_RX_T_APPN), so nothing is lost."""
        while (message := self.delivered.get()) is not None:
            if not self.open:
                continue  # it could not be acknowledged: the SMSC delivers it again, not stored twice
            status = pdu.ESME_ROK if self.on_deliver(message.fields) else pdu.ESME_RX_T_APPN
            self._answer(pdu.response(message, status, b"\0"))

    def _answer(self, message: pdu.Pdu) -> None:
        with self.lock:
            if not self.open:
                return  # not acknowledged: the SMSC delivers it again on the next session
            try:
                self.sock.sendall(message.encode())
            except OSError:
                pass  # the reader sees the broken connection next

    def _end(self) -> None:
        """No more requests; whoever waits for an answer gets None (it may have been taken)."""
        with self.lock:
            if not self.open and not self.waiting:
                return
            self.open = False
            waiting, self.waiting = list(self.waiting.values()), {}
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        for waiter in waiting:
            waiter.done.set()
        self.delivered.put(None)  # the storer stops once what was delivered is stored

    def close(self) -> None:
        """Unbind, and return once what the SMSC delivered is stored (the worker is stopping)."""
        if self.open:
            try:
                self.request(lambda seq: pdu.Pdu(pdu.UNBIND, sequence=seq), timeout=2)
            except NotBound:
                pass
        self._end()
        if self.storer.is_alive() and threading.current_thread() is not self.storer:
            self.storer.join(timeout=10)


class BindRefused(Exception):
    def __init__(self, status: int | None) -> None:
        self.status = status
        super().__init__(f"bind refused: {pdu.status_name(status) if status is not None else 'no answer'}")


@dataclass
class _Part:
    message: int  # index in the batch
    reference: str  # ours, for the receipts
    data: bytes
    esm_class: int
    data_coding: int
    waiter: _Waiter | None = None
    session: Session | None = None  # the one it was submitted on
    result: str = "unsent"  # unsent, submitted, accepted, throttled, refused, lost
    status: int = 0
    smsc_id: str = ""
    throttled_since: float = 0.0


class SmppConnector(Connector):
    name = "smpp"
    sends_whole_batches = True  # pipelined over the session, up to its window
    reports = True

    def __init__(self, url) -> None:
        super().__init__(url)
        if not (url.username and url.password and url.hostname):
            raise ValueError("smpp:// needs a system id, a password and the SMSC's host: "
                             "smpp://SYSTEM_ID:PASSWORD@host:2775?source=...")
        self.system_id, self.password = unquote(url.username), unquote(url.password)
        options = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.source = options.get("source", "")
        if not self.source:
            raise ValueError("smpp:// needs ?source= (a number or an alphanumeric sender)")
        self.window = int(options.get("window", "10")) if options.get("window", "10").isdigit() else 0
        self.system_type = options.get("system_type", "")
        # What SMPP 3.4 allows (C strings with their NUL): refused now, not at every bind.
        for what, value, limit in (("the system id", self.system_id, 15), ("the password", self.password, 8),
                                   ("?source=", self.source, 20), ("?system_type=", self.system_type, 12)):
            if len(value) > limit or not value.isascii():
                raise ValueError(f"smpp://: {what} is at most {limit} ASCII characters in SMPP 3.4")
        if not 1 <= self.window <= 1000:
            raise ValueError("smpp://...?window= is the number of submits in flight: 1 to 1000")
        self.host, self.port, self.use_tls = url.hostname, url.port or 2775, url.scheme.endswith("+tls")
        self.where = f"the SMSC at {self.host}:{self.port}"
        self.session: Session | None = None
        self.bound = threading.Condition()
        self.last_error = ""
        self.refused_status: int | None = None
        self.stopping = threading.Event()
        self.keeper: threading.Thread | None = None
        self.pause_until = 0.0
        self.pause = 0.0
        self.part_refs: collections.OrderedDict[str, str] = collections.OrderedDict()
        self.refs_lock = threading.Lock()

    # --- the session, kept bound by a thread -------------------------------------------------

    def start(self) -> None:
        if self.keeper is None:
            self.keeper = threading.Thread(target=self._keep_bound, name="smpp-keeper", daemon=True)
            self.keeper.start()

    def _keep_bound(self) -> None:
        delay = 1.0
        while not self.stopping.is_set():
            try:
                session = Session.bind(self.host, self.port, self.system_id, self.password, self.system_type,
                                       self.use_tls, self._delivered)
            except Exception as exc:  # noqa: BLE001  whatever it was, this thread must go on trying
                with self.bound:
                    self.last_error = str(exc) or exc.__class__.__name__
                    self.refused_status = exc.status if isinstance(exc, BindRefused) else None
                    self.bound.notify_all()
                log.warning("SMPP: cannot bind to %s (%s); again in %.0fs", self.where, self.last_error, delay)
                self.stopping.wait(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, 60.0)
                continue
            bound_at = time.monotonic()
            with self.bound:
                self.session, self.last_error, self.refused_status = session, "", None
                self.bound.notify_all()
            log.info("SMPP: bound to %s as %s", self.where, self.system_id)
            while session.open and not self.stopping.is_set():
                self.stopping.wait(1.0)
                if session.open and time.monotonic() - session.last_heard > ENQUIRE_EVERY:
                    try:
                        if session.request(lambda seq: pdu.Pdu(pdu.ENQUIRE_LINK, sequence=seq)) is None:
                            session._end()  # no answer: the line is dead
                    except NotBound:
                        pass
            with self.bound:
                self.session = None
            if self.stopping.is_set():
                session.close()
            elif time.monotonic() - bound_at > 30:
                delay = 1.0  # it worked for a while: reconnect at once
            else:
                # Dropped soon after binding (an SMSC that cannot stand something we send):
                # back off as for a refused bind, instead of binding again every second.
                with self.bound:
                    self.last_error = f"the session ended {time.monotonic() - bound_at:.0f} s after binding"
                self.stopping.wait(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, 60.0)

    def _bound_session(self, wait: float = BIND_WAIT) -> Session:
        self.start()
        deadline = time.monotonic() + wait
        with self.bound:
            while not (self.session and self.session.open):
                left = deadline - time.monotonic()
                # Waits only for a first bind or a reconnection in progress, not for an SMSC
                # already found unreachable (the keeper goes on trying; the message waits).
                if left <= 0 or self.last_error:
                    raise NotBound(self.last_error or f"not bound to {self.where} yet")
                self.bound.wait(left)
            return self.session

    # --- sending -------------------------------------------------------------------------

    def send(self, sms: OutgoingSms) -> Outcome:
        return self.send_batch([sms])[0]

    def send_batch(self, batch: list[OutgoingSms]) -> list[Outcome]:
        parts = [part for index, sms in enumerate(batch) for part in self._parts(index, sms)]
        queue = collections.deque(parts)
        in_flight: list[_Part] = []
        while queue or in_flight:
            if queue and len(in_flight) < self.window:
                try:
                    session = self._bound_session()
                except NotBound:
                    if not in_flight:
                        break  # what was not submitted stays "unsent": retry later
                    session = None
                while session and queue and len(in_flight) < self.window:
                    part = queue[0]
                    wait = self.pause_until - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    try:
                        part.waiter = session.submit(
                        lambda seq, p=part, s=batch[part.message]: pdu.submit_sm(
                            seq, source=self.source, destination=s.to, short_message=p.data,
                            data_coding=p.data_coding, esm_class=p.esm_class),
                        on_answer=lambda answer, p=part: self._remember(answer, p.reference))
                    except NotBound:
                        break
                    queue.popleft()
                    part.result, part.session = "submitted", session
                    in_flight.append(part)
            if in_flight:
                self._collect(in_flight.pop(0), queue)
        return [self._outcome([p for p in parts if p.message == index]) for index in range(len(batch))]

    def _parts(self, index: int, sms: OutgoingSms) -> list[_Part]:
        encoding, pieces = segments.encoded_parts(sms.body or " ")
        coding = DATA_CODING[encoding]
        if len(pieces) == 1:
            return [_Part(index, sms.reference, pieces[0], 0, coding)]
        together = random.randrange(256)  # the concatenation reference: ties the parts together on the phone
        return [_Part(index, sms.reference, bytes([5, 0, 3, together, len(pieces), number]) + piece, pdu.ESM_UDHI,
                      coding)
                for number, piece in enumerate(pieces, start=1)]

    def _collect(self, part: _Part, queue: collections.deque) -> None:
        part.waiter.done.wait(RESPONSE_TIMEOUT)
        answer = part.waiter.answer
        if answer is None:
            part.result = "lost"  # submitted, no answer: it may have been taken
            if not part.waiter.done.is_set():
                part.session._end()  # a silent SMSC: start a new session rather than wait forever
        elif answer.status == pdu.ESME_ROK:
            part.result, part.smsc_id = "accepted", answer.fields.get("message_id", "")
            self.pause = max(self.pause / 2, 0.0) if self.pause > 0.01 else 0.0
        elif answer.status in (pdu.ESME_RTHROTTLED, pdu.ESME_RMSGQFUL):
            # Slow down for everyone, and submit this part again (it was not taken).
            self.pause = min(max(self.pause * 2, 0.1), 2.0)
            self.pause_until = time.monotonic() + self.pause
            part.throttled_since = part.throttled_since or time.monotonic()
            part.status = answer.status
            if time.monotonic() - part.throttled_since < THROTTLE_PATIENCE:
                part.result = "unsent"
                queue.append(part)
            else:
                part.result = "throttled"
        else:
            part.result, part.status = "refused", answer.status

    def _outcome(self, parts: list[_Part]) -> Outcome:
        results = {p.result for p in parts}
        if results == {"accepted"}:
            return Outcome.accepted(parts[0].smsc_id)
        taken = "accepted" in results
        if "lost" in results or (taken and results != {"accepted"}):
            what = "no answer came for a part before the session ended" if "lost" in results else \
                "the SMSC took some parts of the message and not others"
            return Outcome.ambiguous("lost" if "lost" in results else "partly_accepted",
                                     f"Sent to {self.where}, but {what}: it may have been sent.")
        refused = [p for p in parts if p.result == "refused"]
        if refused and refused[0].status not in _NOT_TAKEN:
            status = refused[0].status
            name = pdu.status_name(status)
            retryable = status in (0x0A, 0x48, 0x49)  # our sender (source address) refused
            return Outcome.failed(name.lower(), f"{self.where} refused the message: {name}"
                                  + (". Check ?source= in CRMSMS_SMS_URL." if retryable else "."), retryable=retryable)
        if "throttled" in results:
            name = pdu.status_name(next(p.status for p in parts if p.result == "throttled"))
            return Outcome.retry_later("throttled", f"{self.where} kept answering {name} for "
                                                    f"{THROTTLE_PATIENCE:.0f}s; nothing was taken.")
        if refused:
            name = pdu.status_name(refused[0].status)
            return Outcome.retry_later(name.lower(), f"{self.where} answered {name}: nothing was taken.")
        if self.refused_status in _AUTH_STATUSES:
            return Outcome.failed("auth_failed", f"{self.where} refused our bind ({pdu.status_name(self.refused_status)}): "
                                                 "check the system id and password in CRMSMS_SMS_URL.", retryable=True)
        return Outcome.retry_later("not_bound", f"Not bound to {self.where} ({self.last_error or 'connecting'}); "
                                                "nothing was sent.")

    def _remember(self, answer: pdu.Pdu, reference: str) -> None:
        """Which message an SMSC id is for: a receipt names the id of one part. Called by the
        session's reader as it reads the answer, so before any receipt that follows it."""
        smsc_id = answer.fields.get("message_id") if answer.status == pdu.ESME_ROK else None
        if not smsc_id:
            return
        with self.refs_lock:
            self.part_refs[smsc_id] = reference
            while len(self.part_refs) > REMEMBERED_PARTS:
                self.part_refs.popitem(last=False)

    # --- what the SMSC sends us ------------------------------------------------------------

    def _delivered(self, fields: dict) -> bool:
        """A deliver_sm: a delivery receipt or an SMS someone sent us. True once stored."""
        from .. import inbound, reports

        close_old_connections()
        try:
            if fields["esm_class"] & pdu.ESM_RECEIPT:
                receipt = parse_receipt(fields)
                with self.refs_lock:
                    reference = self.part_refs.get(receipt["id"], "")
                reports.store("smpp", status=receipt["stat"], reference=reference,
                              provider_message_id=receipt["id"], payload=receipt)
            else:
                inbound.receive("smpp", from_number=fields["source"], text=decode_text(fields),
                                to_number=fields["destination"], payload={
                                    "source": fields["source"], "destination": fields["destination"],
                                    "data_coding": fields["data_coding"]})
            return True
        except Exception:  # noqa: BLE001  answered with an error: the SMSC delivers it again
            log.exception("SMPP: could not store a deliver_sm; the SMSC will deliver it again")
            return False
        finally:
            close_old_connections()

    def close(self) -> None:
        self.stopping.set()
        session = self.session
        if session:
            session.close()
        if self.keeper:
            self.keeper.join(timeout=5)


def parse_receipt(fields: dict) -> dict:
    """The SMSC id, stat word and error of a delivery receipt: from its TLVs if present,
    else from its text ("id:... sub:001 dlvrd:001 submit date:... done date:... stat:DELIVRD err:000")."""
    text = fields["short_message"].decode("latin-1")
    found = dict(re.findall(r"\b(id|stat|err):(\S*)", text, flags=re.IGNORECASE))
    found = {k.lower(): v for k, v in found.items()}
    tlvs = fields["tlvs"]
    if pdu.TLV_RECEIPTED_MESSAGE_ID in tlvs:
        found["id"] = tlvs[pdu.TLV_RECEIPTED_MESSAGE_ID].rstrip(b"\0").decode("latin-1")
    if pdu.TLV_MESSAGE_STATE in tlvs and tlvs[pdu.TLV_MESSAGE_STATE]:
        found["stat"] = MESSAGE_STATES.get(tlvs[pdu.TLV_MESSAGE_STATE][0], found.get("stat", "unknown"))
    receipt = {"id": found.get("id", ""), "stat": found.get("stat", "unknown").lower(), "err": found.get("err", ""),
               "text": text}
    if receipt["stat"] in ("undeliv", "rejectd", "expired", "deleted"):
        receipt["error"] = {"code": f"smpp_{receipt['stat']}", "message": f"The SMSC's receipt: {text}"}
    return receipt


def decode_text(fields: dict) -> str:
    """An SMS someone sent us, as text (without its concatenation header, if any)."""
    data = fields["short_message"]
    if fields["esm_class"] & pdu.ESM_UDHI and data:
        data = data[1 + data[0]:]
    coding = fields["data_coding"]
    if coding == 0x08:
        return data.decode("utf-16-be", errors="replace")
    if coding in (0x03, 0x04):
        return data.decode("latin-1")
    try:
        return smsutil.decode(data)
    except Exception:  # noqa: BLE001  an SMSC that sends Latin-1 with data_coding 0, or worse
        return data.decode("latin-1")
