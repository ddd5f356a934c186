import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsms.sms import segments
from crmsms.sms.providers import connector_for
from crmsms.sms.providers.base import ACCEPTED, OutgoingSms


@pytest.mark.parametrize("text, encoding, parts", [
    ("", "GSM-7", 0),
    ("a" * 160, "GSM-7", 1),
    ("a" * 161, "GSM-7", 2),
    ("a" * 306, "GSM-7", 2),
    ("a" * 307, "GSM-7", 3),
    ("€" * 80, "GSM-7", 1),        # each € costs two septets
    ("€" * 81, "GSM-7", 2),
    ("é" * 160, "GSM-7", 1),       # é is in GSM 03.38
    ("ê" * 70, "UCS-2", 1),        # ê is not: the whole text becomes UCS-2
    ("ê" * 71, "UCS-2", 2),
    ("🎉" * 35, "UCS-2", 1),       # an emoji is two UTF-16 units
    ("🎉" * 36, "UCS-2", 2),
])
def test_segments_on_the_boundaries(text, encoding, parts):
    measure = segments.measure(text)
    assert (measure.encoding, measure.segments) == (encoding, parts)


def test_invisible_spaces_are_normalised():
    assert segments.normalise("a\u00a0b\u202fc") == "a b c"


def test_file_provider_appends_json_lines(tmp_path):
    outbox = tmp_path / "out" / "outbox.jsonl"
    connector = connector_for(f"file://{outbox}")
    outcomes = connector.send_batch([OutgoingSms(1, "+33612345678", "Bonjour", "crmsms-1"),
                                     OutgoingSms(2, "+33698765432", "Ça va ?", "crmsms-2")])
    assert [o.kind for o in outcomes] == [ACCEPTED, ACCEPTED]
    lines = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert [(e["reference"], e["to"], e["body"]) for e in lines] == [
        ("crmsms-1", "+33612345678", "Bonjour"), ("crmsms-2", "+33698765432", "Ça va ?")]
    assert [e["id"] for e in lines] == [o.provider_message_id for o in outcomes]


def test_console_provider_prints(capsys):
    outcome = connector_for("console://").send(OutgoingSms(1, "+33612345678", "Hi", "crmsms-1"))
    assert outcome.kind == ACCEPTED and "SMS to +33612345678 [crmsms-1]: Hi" in capsys.readouterr().out


def test_unknown_scheme_is_a_clear_configuration_error():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="CRMSMS_SMS_URL: unknown provider 'twillio'"):
        connector_for("twillio://x")


@pytest.mark.parametrize("text, encoding, parts", [
    ("a" * 459, "GSM-7", 3),         # 3 x 153
    ("a" * 460, "GSM-7", 4),
    ("a" * 152 + "€" + "a" * 6, "GSM-7", 1),  # 160 septets: still one part
    ("a" * 152 + "€" + "a" * 7, "GSM-7", 2),  # 161 septets: the € (2 septets) cannot end part 1
    ("a" * 70 + "ç", "UCS-2", 2),     # one ç makes 71 UCS-2 characters
    ("ç" * 67 * 2, "UCS-2", 2),
    ("ç" * (67 * 2 + 1), "UCS-2", 3),
])
def test_more_boundaries(text, encoding, parts):
    measure = segments.measure(text)
    assert (measure.encoding, measure.segments) == (encoding, parts)


def test_an_escape_character_is_never_split_across_parts():
    import smsutil

    text = "a" * 152 + "€" + "b" * 10
    first, second = smsutil.split(text).parts
    assert first.content == "a" * 152 and second.content.startswith("€")


def test_an_emoji_is_never_split_across_parts():
    import smsutil

    text = "x" * 66 + "🎉" + "y" * 10  # the emoji's two UTF-16 halves straddle unit 67
    parts = smsutil.split(text).parts
    assert "".join(p.content for p in parts) == text
    assert all("\ud83c" not in p.content or "🎉" in p.content for p in parts)
    assert "🎉" in parts[1].content


@given(st.text(alphabet="abcXYZ 0123.,!?éèàù€[]{}^~|\\\nçê🎉’\x1b", max_size=330))
@settings(max_examples=500, deadline=None)
def test_the_fast_count_agrees_with_smsutil(text):
    import smsutil

    result = smsutil.split(text) if text else None
    measure = segments.measure(text)
    if result:
        assert (measure.encoding, measure.segments) == (
            "GSM-7" if result.encoding == "gsm0338" else "UCS-2", len(result.parts))
