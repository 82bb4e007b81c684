"""Querysets compiled to SQL once, then run with new parameters: the hot paths' reads; and their
inserts and updates, built once (``Insert``, ``Update``).

Compiling a queryset (resolving its joins, columns and ordering into SQL) costs about a
millisecond of Python each time, more than PostgreSQL takes to answer a key lookup. A request
that authenticates a secret and reads a task paid it twice. ``Prepared`` compiles the queryset
once, with a marker in place of each parameter, and from then on only substitutes the
parameters and builds the model instances as Django's own ``ModelIterable`` does (from_db, the
select_related objects, the fields' converters). The statement runs on the calling thread's
connection, so it counts and logs like any other query.

Parameters are strings or integers compared for equality (ids, hashes), of the type the first
call passes (the marker is of that type; an integer marker fits only a 64-bit field, so not a
small integer's: bake those into the queryset). A queryset may lock its rows
(``select_for_update``): like Django, each call then refuses to run outside a transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError

_INT_MARKER = -(2**62) + 7919  # an integer parameter's marker: no id is ever this


@dataclass(frozen=True)
class _Compiled:
    sql: str
    params: tuple
    slots: tuple[tuple[int, str], ...]  # (position in params, parameter name)
    compiler: object
    init_list: list[str]
    fields_slice: slice
    populators: list
    locking: bool
    converters: dict  # the fields' from-database converters, as results_iter would find them


class Prepared:
    """``Prepared(lambda key: Model.objects.filter(key=key))``, then ``.first(key="…")`` or
    ``.all(key="…")``: the queryset's rows as model instances, compiled once per database."""

    def __init__(self, build: Callable[..., QuerySet], using: str = "default"):
        self.build = build
        self.using = using
        self._compiled: dict[str, _Compiled] = {}
        self._lock = threading.Lock()

    def all(self, **params: str | int) -> list[Model]:
        compiled = self._compiled.get(self.using) or self._compile(params)
        connection = connections[self.using]
        if compiled.locking and connection.get_autocommit():
            raise TransactionManagementError(
                "select_for_update cannot be used outside of a transaction."
            )
        values = list(compiled.params)
        for position, name in compiled.slots:
            values[position] = params[name]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, values)
            rows = cursor.fetchall()
        return self._instances(compiled, rows)

    def first(self, **params: str | int) -> Model | None:
        found = self.all(**params)
        return found[0] if found else None

    def _compile(self, params: dict[str, str | int]) -> _Compiled:
        with self._lock:
            if self.using in self._compiled:
                return self._compiled[self.using]
            markers = {
                name: _INT_MARKER - n if isinstance(value, int) else f"\x1fprepared:{name}\x1f"
                for n, (name, value) in enumerate(params.items())
            }
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
                locking=queryset.query.select_for_update,
                converters=compiler.get_converters([s[0] for s in select[: compiler.col_count]]),
            )
            self._compiled[self.using] = compiled
            return compiled

    def _instances(self, compiled: _Compiled, rows: list) -> list[Model]:
        model = compiled.compiler.klass_info["model"]
        found = []
        # The fields' converters (JSON decoding, SQLite's datetimes...), as Django applies them.
        if compiled.converters:
            rows = compiled.compiler.apply_converters(rows, compiled.converters)
        for row in rows:
            obj = model.from_db(self.using, compiled.init_list, row[compiled.fields_slice])
            for populator in compiled.populators:
                populator.populate(row, obj)
            found.append(obj)
        return found


class Insert:
    """``Insert(Model)``, then ``insert(obj, ...)``: the rows written in one INSERT whose SQL is
    built once per row count, as ``Model.save(force_insert=True)`` or ``bulk_create`` would
    write them (each field's ``pre_save`` and ``get_db_prep_save``: ``auto_now_add``, JSON, foreign
    keys), without compiling a query each time. A database-generated primary key comes back
    through ``RETURNING`` and is set on each object, which is then saved as far as Django knows.

    For models without save signals' receivers or overridden inserts: neither is called.
    """

    def __init__(self, model: type[Model], using: str = "default"):
        self.model = model
        self.using = using
        self._sql: dict[int, str] = {}
        meta = model._meta
        self._auto = meta.auto_field
        self._fields = [f for f in meta.local_concrete_fields if not f.generated]
        for field in self._fields:
            if hasattr(field, "get_placeholder"):
                raise ValueError(f"{field} needs its own placeholder: use the ORM")
        returning = [f for f in meta.db_returning_fields if f is not self._auto]
        if returning:
            raise ValueError(f"{model.__name__} returns {returning} on insert: use the ORM")

    def __call__(self, *objs: Model) -> None:
        connection = connections[self.using]
        auto = self._auto
        generated = auto is not None and objs[0].pk is None
        if generated and not connection.features.can_return_rows_from_bulk_insert:
            for obj in objs:  # an old SQLite: one INSERT each, its key from the cursor
                obj.save(force_insert=True, using=self.using)
            return
        fields = [f for f in self._fields if f is not auto] if generated else self._fields
        values = []
        for obj in objs:
            if auto is not None and (obj.pk is None) != generated:
                raise ValueError("either every row's primary key is set or none is")
            values.extend(f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields)
        key = len(objs) if generated else -len(objs)
        sql = self._sql.get(key) or self._build(connection, fields, len(objs), generated, key)
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            if generated:
                for obj, row in zip(objs, cursor.fetchall(), strict=True):
                    setattr(obj, auto.attname, row[0])
        for obj in objs:
            obj._state.adding = False
            obj._state.db = self.using

    def _build(self, connection, fields, rows: int, generated: bool, key: int) -> str:
        qn = connection.ops.quote_name
        columns = ", ".join(qn(f.column) for f in fields)
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        sql = f"INSERT INTO {qn(self.model._meta.db_table)} ({columns}) VALUES "
        sql += ", ".join([row] * rows)
        if generated:
            returning, _ = connection.ops.return_insert_columns([self._auto])
            sql += " " + returning
        self._sql[key] = sql
        return sql


class Update:
    """``Update(Model, lambda: fields)``, then ``update(obj)``: ``obj``'s row updated by primary
    key in those fields (each field's ``pre_save``, so ``auto_now`` too, and
    ``get_db_prep_save``, as ``save(update_fields=...)`` writes them), from SQL built once.
    Returns the number of rows updated (0 when the row is gone).

    The fields are named by a callable, asked on the first update: a model's fields are not all
    known while its module is imported.
    """

    def __init__(self, model: type[Model], fields: Callable[[], list[str]], using: str = "default"):
        self.model = model
        self.using = using
        self._names = fields
        self._built: tuple[str, list] | None = None

    def __call__(self, obj: Model) -> int:
        connection = connections[self.using]
        if self._built is None:
            meta = self.model._meta
            fields = [meta.get_field(name) for name in self._names()]
            qn = connection.ops.quote_name
            columns = ", ".join(f"{qn(f.column)} = %s" for f in fields)
            sql = f"UPDATE {qn(meta.db_table)} SET {columns} WHERE {qn(meta.pk.column)} = %s"
            self._built = (sql, fields)
        sql, fields = self._built
        values = [f.get_db_prep_save(f.pre_save(obj, False), connection) for f in fields]
        values.append(self.model._meta.pk.get_db_prep_value(obj.pk, connection))
        with connection.cursor() as cursor:
            cursor.execute(sql, values)
            return cursor.rowcount
