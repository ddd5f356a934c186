"""Reading the CSV files people upload (campaign recipients, contacts and accounts): what
spreadsheets write, whichever separator and encoding they chose."""

MAX_BYTES = 50 * 1024 * 1024


def decode(raw: bytes) -> str:
    """UTF-8 (with or without the BOM Excel adds), else Windows spreadsheets' Latin-1."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def delimiter(lines) -> str:
    """The separator of the first line: a comma, a semicolon (French Excel) or a tab."""
    first = lines[0] if lines else ""
    return max([",", ";", "\t"], key=first.count)
