"""Search, sort and pagination for list pages: one helper for every module's list."""

import re
from dataclasses import dataclass
from functools import reduce
from operator import and_, or_

from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet

from crmsms.crm import phones

PER_PAGE = 25
LOOKS_LIKE_PHONE = re.compile(r"^\+?[\d\s().-]{6,}$")


def parse_id(value) -> int | None:
    """A record id from a query or form parameter, or None: never an exception on "²",
    "-1" or a number too large for the database."""
    text = str(value or "")
    return int(text) if re.fullmatch(r"[0-9]{1,18}", text) else None


class CountedPaginator(Paginator):
    """A Paginator told how many items there are (a campaign keeps its counts), instead of
    counting a million rows for every page."""

    def __init__(self, object_list, per_page, *, count: int):
        super().__init__(object_list, per_page)
        self._known_count = count

    @property
    def count(self) -> int:
        return self._known_count


@dataclass
class Column:
    key: str  # the ?sort= value
    label: str
    field: str = ""  # ORM field to order by; "" = not sortable


def search_filter(q: str, fields: list[str], phone_fields: list[str] = ()) -> Q:
    """Every word must match one of `fields` ("lucas petit" finds Lucas Petit). A query
    that looks like a phone number is also read as one, however it is typed, and matched
    against the E.164 numbers in `phone_fields`."""
    q = q.replace("\x00", "")  # PostgreSQL cannot even compare a text with a NUL in it
    if not q.strip():
        return Q()
    if phone_fields and LOOKS_LIKE_PHONE.match(q):
        digits = re.sub(r"\D", "", q)
        try:
            e164 = phones.normalise(q, field_label="Search")
        except ValidationError:
            e164 = ""
        wanted = [e164] if e164 else []
        wanted.append(digits.lstrip("0") or digits)  # a partial number: its last digits
        return reduce(or_, (Q(**{f"{f}__contains": w}) for f in phone_fields for w in wanted))
    words = q.split()
    return reduce(and_, (reduce(or_, (Q(**{f"{f}__icontains": w}) for f in fields)) for w in words))


def listing(request, queryset: QuerySet, *, search: list[str], columns: list[Column], default_sort: str,
            phone_fields: list[str] = (), count: int | None = None) -> dict:
    """The page asked for. `count`: the number of items when known without counting, used
    unless a search narrows them."""
    q = request.GET.get("q", "").strip()
    if q:
        queryset = queryset.filter(search_filter(q, search, phone_fields))
    sortable = {c.key: c.field for c in columns if c.field}
    sort = request.GET.get("sort", default_sort)
    key = sort.removeprefix("-")
    if key not in sortable:
        sort, key = default_sort, default_sort.removeprefix("-")
    descending = sort.startswith("-")
    field = sortable[key]
    queryset = queryset.order_by(f"-{field}" if descending else field, "-id" if descending else "id")
    paginator = CountedPaginator(queryset, PER_PAGE, count=count) if count is not None and not q \
        else Paginator(queryset, PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return {
        "page": page, "q": q, "sort": sort, "columns": columns,
        "sort_links": {
            c.key: (c.key if sort != c.key else f"-{c.key}") for c in columns if c.field
        },
    }
