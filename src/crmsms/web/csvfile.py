"""Reading the CSV files people upload (campaign recipients, contacts and accounts): what
spreadsheets write, whichever separator and encoding they chose."""

import re

MAX_BYTES = 50 * 1024 * 1024


def decode(raw: bytes) -> str:
    """UTF-8 (with or without the BOM Excel adds), else what Excel for Windows writes in
    Western Europe: Windows-1252 (Latin-1 plus ’ œ … € in 0x80-0x9F), else Latin-1."""
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            pass
    return raw.decode("latin-1")


def lines(text: str) -> list[str]:
    """The file's lines: split at line ends only (str.splitlines also splits at characters
    such as U+0085 or U+2028 that may be inside a value), without the last empty one."""
    parts = re.split(r"\r\n|\r|\n", text)
    return parts[:-1] if parts and parts[-1] == "" else parts


def delimiter(lines) -> str:
    """The separator of the first line: a comma, a semicolon (French Excel) or a tab."""
    first = lines[0] if lines else ""
    return max([",", ";", "\t"], key=first.count)
