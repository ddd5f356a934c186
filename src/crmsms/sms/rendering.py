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
    empty: list[str]  # variables that leave nothing for this recipient


def preview(record, body: str, user, when=None) -> Preview:
    """`body` for `record`, sent by `user` at `when` (default: now). Raise
    placeholders.PlaceholderError if `body` has unknown or malformed variables."""
    compiled = placeholders.compile(body, record.module)
    values = variables.values_for(record, user, compiled.names, when)
    text = segments.normalise(compiled.render(values))
    measure = segments.measure(text)
    return Preview(text, measure.encoding, measure.segments, compiled.empty(values))
