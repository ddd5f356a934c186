"""A message's text for one recipient: the body's variables filled in from the registry's
flat values, then normalised like typed text. Used by the editor's preview, by validation,
and when a message is queued, so the preview and what leaves are the same function."""

from dataclasses import dataclass

from . import placeholders, segments, variables


@dataclass(frozen=True)
class Preview:
    text: str
    encoding: str
    segments: int


def render_text(record, body: str, user) -> str:
    """Raise placeholders.PlaceholderError if `body` has unknown or malformed variables."""
    compiled = placeholders.compile(body, record.module)
    if not compiled.names:
        return segments.normalise(body)
    return segments.normalise(compiled.render(variables.values_for(record, user, compiled.names)))


def preview(record, body: str, user) -> Preview:
    text = render_text(record, body, user)
    measure = segments.measure(text)
    return Preview(text, measure.encoding, measure.segments)
