"""Querysets compiled to SQL once, then run with new parameters: the hot paths' reads.

Compiling a queryset (resolving its joins, columns and ordering into SQL) costs about a
millisecond of Python each time, more than PostgreSQL takes to answer a key lookup. A request
that authenticates a secret and reads a task paid it twice. ``Prepared`` compiles the queryset
once, with a marker in place of each parameter, and from then on only substitutes the
parameters and builds the model instances as Django's own ``ModelIterable`` does (from_db, the
select_related objects, the fields' converters). The statement runs on the calling thread's
connection, so it counts and logs like any other query.

Parameters are strings compared for equality (ids, hashes); the queryset must not lock rows
(``select_for_update`` is checked against the transaction when compiled).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    slots: tuple[tuple[int, str], ...]  # (position in params, parameter name)
    compiler: object
    init_list: list[str]
    fields_slice: slice
    populators: list


class Prepared:
    """``Prepared(lambda key: Model.objects.filter(key=key))``, then ``.first(key="…")`` or
    ``.all(key="…")``: the queryset's rows as model instances, compiled once per database."""

    def __init__(self, build: Callable[..., QuerySet], using: str = "default"):
        self.build = build
        self.using = using
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def all(self, **params: str) -> list[Model]:
        compiled = self._compiled.get(self.using) or self._compile(params)
        values = list(compiled.params)
        for position, name in compiled.slots:
            values[position] = params[name]
        with connections[self.using].cursor() as cursor:
            cursor.execute(compiled.sql, values)
            rows = cursor.fetchall()
        return self._instances(compiled, rows)

    def first(self, **params: str) -> Model | None:
        found = self.all(**params)
        return found[0] if found else None

    def _compile(self, params: dict[str, str]) -> _Compiled:
        with self._lock:
            if self.using in self._compiled:
                return self._compiled[self.using]
            markers = {name: f"\x1fprepared:{name}\x1f" for name in params}
            queryset = self.build(**markers)
            compiler = queryset.query.get_compiler(using=self.using)
            sql, sql_params = compiler.as_sql()
            by_marker = {marker: name for name, marker in markers.items()}
            slots = tuple((i, by_marker[p]) for i, p in enumerate(sql_params) if p in by_marker)
            if {name for _, name in slots} != set(params):
                raise ValueError(f"every parameter must appear in the SQL: {sql}")
            klass_info, select = compiler.klass_info, compiler.select
            fields = klass_info["select_fields"]
            start, end = fields[0], fields[-1] + 1
            compiled = _Compiled(
                sql=sql,
                params=tuple(sql_params),
                slots=slots,
                compiler=compiler,
                init_list=[f[0].target.attname for f in select[start:end]],
                fields_slice=slice(start, end),
                populators=get_related_populators(klass_info, select, self.using),
            )
            self._compiled[self.using] = compiled
            return compiled

    def _instances(self, compiled: _Compiled, rows: list) -> list[Model]:
        model = compiled.compiler.klass_info["model"]
        found = []
        # The fields' converters (JSON decoding, SQLite's datetimes...), as Django applies them.
        for row in compiled.compiler.results_iter([rows]):
            obj = model.from_db(self.using, compiled.init_list, row[compiled.fields_slice])
            for populator in compiled.populators:
                populator.populate(row, obj)
            found.append(obj)
        return found
