"""The one tiny language users write in: text with `{{ contact.first_name }}` placeholders,
optionally with a fallback, `{{ contact.first_name|default:"there" }}`.

Deliberately not a template engine (DESIGN §5): no attributes, no filters but `default`, no
tags, nothing evaluated. A text is compiled once into literal pieces and slots, checked
against the module's variable registry, and rendered from a flat dict of strings. Values
are inserted as they are and never read again, so a contact named "{{ today }}" stays that.

Every problem names its position (1-based, counting characters) so the editor can point
at it; compiling reports all of them at once.
"""

import re
from dataclasses import dataclass

from . import variables

# A name is dotted lower-case words: contact.account.name. Dunders and attribute tricks
# cannot even be spelled with a leading underscore refused.
_INSIDE = re.compile(
    r'\s*(?P<name>[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*)'
    r'(?:\s*\|\s*default\s*:\s*"(?P<default>[^"]*)")?\s*\Z'
)
_MARKERS = re.compile(r"\{\{|\{%")
_OTHER_FILTER = re.compile(r"\s*(?P<name>[a-z][a-z0-9_.]*)\s*\|\s*(?P<filter>(?!default\b)[a-z_]+)")
MAX_PROBLEMS = 20  # enough to fix a text; a pasted novel of "{%" does not get a megabyte of them
EXAMPLE = '{{ contact.first_name }} or {{ contact.first_name|default:"there" }}'


@dataclass(frozen=True)
class Problem:
    position: int  # 1-based character position of the offending "{{" or "{%"
    code: str  # unknown_variable, malformed_placeholder, unclosed_placeholder, tag_not_supported
    message: str


class PlaceholderError(ValueError):
    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


@dataclass(frozen=True)
class Compiled:
    # (literal text before the slot, variable name or "" for the tail, default)
    parts: tuple[tuple[str, str, str], ...]
    names: frozenset[str]

    def render(self, values: dict[str, str]) -> str:
        return "".join([literal + (values.get(name) or default if name else "") for literal, name, default in self.parts])

    @property
    def literal(self) -> str:
        """The text without its placeholders: what every recipient's SMS has in common."""
        return "".join(literal for literal, _, _ in self.parts)

    def empty(self, values: dict[str, str]) -> list[str]:
        """Variables that would leave nothing in the text: empty and without a default."""
        return sorted({name for _, name, default in self.parts if name and not values.get(name) and not default})


def _excerpt(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def compile(text: str, module: str) -> Compiled:
    """Compile `text` for `module` (contacts/accounts) or raise PlaceholderError."""
    known = variables.NAMES[module]
    problems: list[Problem] = []
    parts: list[tuple[str, str, str]] = []
    names: set[str] = set()
    literal_start = 0
    search_from = 0
    while (marker := _MARKERS.search(text, search_from)) is not None and len(problems) < MAX_PROBLEMS:
        start = marker.start()
        position = start + 1
        if marker.group() == "{%":
            problems.append(Problem(position, "tag_not_supported",
                                    f"Position {position}: “{{%” starts a template tag; only variables are supported, "
                                    f"such as {EXAMPLE}."))
            search_from = start + 2
            continue
        end = text.find("}}", start + 2)
        if end == -1:
            problems.append(Problem(position, "unclosed_placeholder",
                                    f"Position {position}: “{{{{” is never closed with “}}}}”."))
            break
        inside = text[start + 2:end]
        match = _INSIDE.match(inside)
        other_filter = _OTHER_FILTER.match(inside) if match is None else None
        if other_filter:
            problems.append(Problem(position, "unknown_filter",
                                    f"Position {position}: “|{other_filter['filter']}” does not exist; the only "
                                    f'filter is default, as in {{{{ {other_filter["name"]}|default:"..." }}}}.'))
        elif match is None:
            problems.append(Problem(position, "malformed_placeholder",
                                    f"Position {position}: “{_excerpt(text[start:end + 2])}” is not a variable; "
                                    f"write {EXAMPLE}."))
        elif match["name"] not in known:
            problems.append(Problem(position, "unknown_variable",
                                    f"Position {position}: unknown variable “{match['name']}” for "
                                    f"{variables.MODULES[module]}."))
        else:
            parts.append((text[literal_start:start], match["name"], match["default"] or ""))
            names.add(match["name"])
            literal_start = end + 2
        search_from = end + 2
    if problems:
        raise PlaceholderError(problems)
    parts.append((text[literal_start:], "", ""))
    return Compiled(tuple(parts), frozenset(names))


def problems(text: str, module: str) -> list[Problem]:
    try:
        compile(text, module)
    except PlaceholderError as error:
        return error.problems
    return []
