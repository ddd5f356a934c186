"""SMPP 3.4 PDUs, the few an ESME (us) needs: encode what we send, decode what the SMSC
sends. A PDU is a 16-byte header (length, command id, command status, sequence number)
and a body of fields: integers, NUL-terminated C strings, then optional TLVs.
Reference: the SMPP v3.4 specification (issue 1.2), sections 3 to 5.
"""

import struct
from dataclasses import dataclass, field

HEADER = struct.Struct(">IIII")

BIND_TRANSCEIVER, BIND_TRANSCEIVER_RESP = 0x00000009, 0x80000009
SUBMIT_SM, SUBMIT_SM_RESP = 0x00000004, 0x80000004
DELIVER_SM, DELIVER_SM_RESP = 0x00000005, 0x80000005
ENQUIRE_LINK, ENQUIRE_LINK_RESP = 0x00000015, 0x80000015
UNBIND, UNBIND_RESP = 0x00000006, 0x80000006
GENERIC_NACK = 0x80000000

# command_status values (spec §5.1.3) we act on or name.
STATUS_NAMES = {
    0x00: "ESME_ROK", 0x01: "ESME_RINVMSGLEN", 0x02: "ESME_RINVCMDLEN", 0x03: "ESME_RINVCMDID",
    0x04: "ESME_RINVBNDSTS", 0x05: "ESME_RALYBND", 0x08: "ESME_RSYSERR", 0x0A: "ESME_RINVSRCADR",
    0x0B: "ESME_RINVDSTADR", 0x0C: "ESME_RINVMSGID", 0x0D: "ESME_RBINDFAIL", 0x0E: "ESME_RINVPASWD",
    0x0F: "ESME_RINVSYSID", 0x14: "ESME_RMSGQFUL", 0x45: "ESME_RSUBMITFAIL", 0x48: "ESME_RINVSRCTON",
    0x49: "ESME_RINVSRCNPI", 0x50: "ESME_RINVDSTTON", 0x51: "ESME_RINVDSTNPI", 0x58: "ESME_RTHROTTLED",
    0x61: "ESME_RINVSCHED", 0x62: "ESME_RINVEXPIRY", 0x64: "ESME_RX_T_APPN", 0x65: "ESME_RX_R_APPN",
    0xFF: "ESME_RUNKNOWNERR",
}
ESME_ROK, ESME_RMSGQFUL, ESME_RTHROTTLED = 0x00, 0x14, 0x58
# What we answer to a deliver_sm we could not take: try again later, or never (unreadable).
ESME_RX_T_APPN, ESME_RX_R_APPN = 0x64, 0x65

# esm_class bits: a UDH at the start of short_message; a delivery receipt (deliver_sm).
ESM_UDHI, ESM_RECEIPT = 0x40, 0x04
# Optional parameters (TLVs) we read from receipts.
TLV_RECEIPTED_MESSAGE_ID, TLV_MESSAGE_STATE, TLV_MESSAGE_PAYLOAD = 0x001E, 0x0427, 0x0424


def status_name(status: int) -> str:
    return STATUS_NAMES.get(status, f"0x{status:08X}")


@dataclass
class Pdu:
    command_id: int
    status: int = 0
    sequence: int = 0
    body: bytes = b""
    fields: dict = field(default_factory=dict)  # decoded body of the PDUs we read

    def encode(self) -> bytes:
        return HEADER.pack(HEADER.size + len(self.body), self.command_id, self.status, self.sequence) + self.body


def cstring(value: str | bytes, limit: int) -> bytes:
    data = value.encode("ascii") if isinstance(value, str) else value
    if len(data) >= limit:
        raise ValueError(f"{data[:20]!r}... is longer than the {limit - 1} characters SMPP allows here")
    return data + b"\0"


def bind_transceiver(sequence: int, system_id: str, password: str, system_type: str = "") -> Pdu:
    body = (cstring(system_id, 16) + cstring(password, 9) + cstring(system_type, 13)
            + bytes([0x34, 0, 0]) + cstring("", 41))  # interface version 3.4, addr_ton, addr_npi, address_range
    return Pdu(BIND_TRANSCEIVER, sequence=sequence, body=body)


def submit_sm(sequence: int, *, source: str, destination: str, short_message: bytes, data_coding: int,
              esm_class: int = 0, registered_delivery: int = 1) -> Pdu:
    if len(short_message) > 254:
        raise ValueError("short_message is at most 254 octets: split the text first")
    # A source made of digits is an international number (TON 1, NPI 1); letters make an
    # alphanumeric sender (TON 5, NPI 0). Destinations are E.164 without the "+".
    source_ton, source_npi = (1, 1) if source.lstrip("+").isdigit() else (5, 0)
    body = (cstring("", 6) + bytes([source_ton, source_npi]) + cstring(source.lstrip("+"), 21)
            + bytes([1, 1]) + cstring(destination.lstrip("+"), 21)
            + bytes([esm_class, 0, 0]) + cstring("", 17) + cstring("", 17)  # protocol_id, priority, schedule, validity
            + bytes([registered_delivery, 0, data_coding, 0, len(short_message)]) + short_message)
    return Pdu(SUBMIT_SM, sequence=sequence, body=body)


def response(request: Pdu, status: int = ESME_ROK, body: bytes = b"") -> Pdu:
    """The response to a request the SMSC sent us (deliver_sm, enquire_link, unbind)."""
    return Pdu(request.command_id | 0x80000000, status=status, sequence=request.sequence, body=body)


def read_pdu(recv_exactly) -> Pdu:
    """One PDU from the stream; `recv_exactly(n)` returns n bytes or raises."""
    length, command_id, status, sequence = HEADER.unpack(recv_exactly(HEADER.size))
    if not HEADER.size <= length <= 64 * 1024:
        raise ValueError(f"SMPP PDU of {length} octets: the stream is out of step")
    pdu = Pdu(command_id, status, sequence, recv_exactly(length - HEADER.size))
    if command_id == SUBMIT_SM_RESP and pdu.body:
        pdu.fields["message_id"] = _cstrings(pdu.body, 1)[0][0]
    elif command_id == DELIVER_SM:
        try:
            pdu.fields = _deliver_sm(pdu.body)
        except (IndexError, ValueError, struct.error) as error:  # a body shorter than its fields
            pdu.fields = {"malformed": f"{error.__class__.__name__}: {error}"}
    return pdu


def _cstrings(body: bytes, count: int, offset: int = 0) -> tuple[list[str], int]:
    values = []
    for _ in range(count):
        end = body.index(b"\0", offset)
        values.append(body[offset:end].decode("latin-1"))
        offset = end + 1
    return values, offset


def _deliver_sm(body: bytes) -> dict:
    (service_type,), at = _cstrings(body, 1)
    source_ton, source_npi = body[at], body[at + 1]
    (source,), at = _cstrings(body, 1, at + 2)
    (destination,), at = _cstrings(body, 1, at + 2)
    esm_class = body[at]
    _, at = _cstrings(body, 2, at + 3)  # after protocol_id and priority_flag: schedule, validity
    data_coding, length = body[at + 2], body[at + 4]
    short_message = body[at + 5:at + 5 + length]
    tlvs, at = {}, at + 5 + length
    while at + 4 <= len(body):
        tag, size = struct.unpack_from(">HH", body, at)
        tlvs[tag] = body[at + 4:at + 4 + size]
        at += 4 + size
    if not short_message and TLV_MESSAGE_PAYLOAD in tlvs:
        short_message = tlvs[TLV_MESSAGE_PAYLOAD]
    international = source_ton == 1 and source_npi == 1 and source.isdigit()
    return {"service_type": service_type, "source": ("+" if international else "") + source,
            "destination": destination, "esm_class": esm_class, "data_coding": data_coding,
            "short_message": short_message, "tlvs": tlvs}
