"""The contract's pages: ``{"data": [...], "pagination": {...}}``."""

from __future__ import annotations

import math
from collections.abc import Callable

from rest_framework import serializers
from rest_framework.response import Response

from city.api.fields import QueryParams


class PageParams(QueryParams):
    page = serializers.IntegerField(min_value=1, default=1)
    pageSize = serializers.IntegerField(min_value=1, max_value=100, default=20)


def paginate(request, queryset, shape, *, total: Callable[[], int] | None = None) -> Response:
    """The contract's page of ``queryset`` as ordered, each row rendered by ``shape`` (a
    ``ResponseSerializer``). ``total``, when given, says how many rows ``queryset`` has
    without counting them (the task list's tally); it must be exact."""
    params = PageParams(data=request.query_params)
    params.is_valid(raise_exception=True)
    page, size = params.validated_data["page"], params.validated_data["pageSize"]
    total = queryset.count() if total is None else total()
    # A page past the end is empty without asking the database for an absurd OFFSET.
    rows = list(queryset[(page - 1) * size : page * size]) if (page - 1) * size < total else []
    return Response(
        {
            "data": shape.render_many(rows),
            "pagination": {
                "page": page,
                "pageSize": size,
                "total": total,
                "totalPages": math.ceil(total / size),
            },
        }
    )
