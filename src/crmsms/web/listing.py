"""Search, sort and pagination for list pages: one helper for every module's list."""

from dataclasses import dataclass
from functools import reduce
from operator import or_

from django.core.paginator import Paginator
from django.db.models import Q, QuerySet

PER_PAGE = 25


@dataclass
class Column:
    key: str  # the ?sort= value
    label: str
    field: str = ""  # ORM field to order by; "" = not sortable


def listing(request, queryset: QuerySet, *, search: list[str], columns: list[Column], default_sort: str) -> dict:
    q = request.GET.get("q", "").strip()
    if q:
        queryset = queryset.filter(reduce(or_, (Q(**{f"{f}__icontains": q}) for f in search)))
    sortable = {c.key: c.field for c in columns if c.field}
    sort = request.GET.get("sort", default_sort)
    key = sort.removeprefix("-")
    if key not in sortable:
        sort, key = default_sort, default_sort.removeprefix("-")
    descending = sort.startswith("-")
    field = sortable[key]
    queryset = queryset.order_by(f"-{field}" if descending else field, "-id" if descending else "id")
    page = Paginator(queryset, PER_PAGE).get_page(request.GET.get("page"))
    return {
        "page": page, "q": q, "sort": sort, "columns": columns,
        "sort_links": {
            c.key: (c.key if sort != c.key else f"-{c.key}") for c in columns if c.field
        },
    }
