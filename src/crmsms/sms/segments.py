"""How many SMS parts a text costs, and in which encoding (GSM 03.38 or UCS-2)."""

from dataclasses import dataclass

import smsutil
from smsutil.codecs import GSM_BASIC_CHARSET, GSM_EXT_CHARSET

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# Characters that look like GSM-7 ones but force the whole message into UCS-2, which
# halves the characters per part. The non-breaking space comes from copy-pasting out of
# word processors and is invisible: DESIGN §5 says it is always normalised.
INVISIBLE_REPLACEMENTS = {"\u00a0": " ", "\u202f": " ", "\u2007": " "}


@dataclass(frozen=True)
class Measure:
    characters: int
    encoding: str
    segments: int


_TO_NORMALISE = frozenset("\r" + "".join(INVISIBLE_REPLACEMENTS))


def normalise(text: str) -> str:
    if _TO_NORMALISE.isdisjoint(text):  # most texts: nothing to do (checked per recipient)
        return text
    # Browsers submit line breaks as CRLF; an SMS line break is one LF (one character,
    # not two: a CR would cost a septet and could tip the text into another part).
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for bad, good in INVISIBLE_REPLACEMENTS.items():
        text = text.replace(bad, good)
    return text


# Characters that cost one septet: a text made only of them is counted without splitting it
# (most texts are), which is 20 times faster than smsutil's character-by-character split.
_BASIC = frozenset(GSM_BASIC_CHARSET) - frozenset(GSM_EXT_CHARSET) - {"\x1b"}


def measure(text: str) -> Measure:
    if not text:
        return Measure(0, GSM7, 0)
    if _BASIC.issuperset(text):
        return Measure(len(text), GSM7, 1 if len(text) <= 160 else -(-len(text) // 153))
    result = smsutil.split(text)
    encoding = GSM7 if result.encoding == "gsm0338" else UCS2
    return Measure(len(text), encoding, len(result.parts))


def encoded_parts(text: str) -> tuple[str, list[bytes]]:
    """The text as the parts a phone gets, each encoded for the air (GSM 03.38, one septet
    per octet, an extension character as its escape and itself; or UCS-2, big-endian),
    for gateways that take raw parts (SMPP). Split where `measure` counts its parts: never
    inside an escape sequence or a surrogate pair (smsutil keeps each character whole)."""
    if not text:
        return GSM7, [b""]
    result = smsutil.split(text)
    if result.encoding == "gsm0338":
        return GSM7, [smsutil.encode(part.content) for part in result.parts]
    return UCS2, [part.content.encode("utf-16-be") for part in result.parts]
