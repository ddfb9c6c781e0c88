"""A model field for files kept in PostgreSQL large objects, and their lifecycle.

Django never deletes a file when the row pointing at it changes or goes
away. A ``DbFileField`` does (unless ``auto_delete=False``): replacing or
clearing the file, and deleting the row (also through ``QuerySet.delete()``
and cascades), unlinks the old object in the transaction of that save or
delete, so a rollback brings it back. What is replaced is read from the row
itself, locked in that transaction, never taken from the instance, which
may have been loaded before another process changed the row. Whether the
old object goes is :func:`warehouse.unlinking.unlink_unreferenced`'s
decision: another row naming it, or an oid column, keeps it.

So that the read, the write and the unlink are one transaction even in
autocommit, a model with such a field saves inside ``atomic()`` (as Django
already does for models with parents): ``post_save`` receivers run before
the commit. A field the caller did not assign keeps what the row holds: a
stale instance saved for its other fields writes back the row's current
file, not the one it loaded.

Like Django's ``ImageField`` dimensions, this follows the signals of the model
that declares the field: a child of multi-table inheritance does not trigger
it for its parent's field.
"""

from __future__ import annotations

import functools
import weakref
import zlib
from typing import Any, NamedTuple

from django.db import connections, models, router, transaction
from django.db.models.signals import class_prepared, post_delete, post_init, post_save, pre_delete

from warehouse import references, registry, transactions, unlinking
from warehouse.conf import alias_for_writing
from warehouse.names import oid_in_sql, oid_of
from warehouse.objects import database_connection, large_object_exists
from warehouse.storage import DbFileStorage, db_file_storage, saving_a_row

# Per instance: the names its file fields had when it was loaded or last saved,
# and what the row held under lock while a save or a delete is under way.
_LOADED_NAMES = "_warehouse_loaded_names"
_LOCKED = "_warehouse_locked"
_SAVING_ON = "_warehouse_saving_on"
# The name of a field that was deferred when the instance was loaded.
_UNKNOWN = object()


class DbFileField(models.FileField):
    """A ``FileField`` whose storage is ``db_file_storage`` unless another is given.

    ``upload_to`` is accepted for compatibility and ignored by
    ``DbFileStorage``: a saved file is always named ``<oid><ext>``. Give it
    ``db_index=True`` (on PostgreSQL Django then adds a ``varchar_pattern_ops``
    index as well) and each reference check is an index lookup however large
    the table; ``manage.py check`` warns where that index is missing.
    """

    def __init__(
        self,
        verbose_name: str | None = None,
        name: str | None = None,
        upload_to: Any = "",
        storage: Any = None,
        *,
        auto_delete: bool = True,
        **kwargs: Any,
    ) -> None:
        self.auto_delete = auto_delete
        super().__init__(
            verbose_name,
            name,
            upload_to=upload_to,
            storage=storage or db_file_storage,
            **kwargs,
        )

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        # The default storage is implied by the field: keep it out of migrations.
        if kwargs.get("storage") is db_file_storage:
            del kwargs["storage"]
        if not self.auto_delete:
            kwargs["auto_delete"] = False
        return name, path, args, kwargs

    def check(self, **kwargs: Any) -> list[Any]:
        from warehouse.checks import check_file_field

        problems = check_file_field(self.model, self)
        return [*super().check(**kwargs), *problems]

    def contribute_to_class(self, cls: type[models.Model], name: str, **kwargs: Any) -> None:
        super().contribute_to_class(cls, name, **kwargs)
        if self.auto_delete and not cls._meta.abstract and isinstance(self.storage, DbFileStorage):
            _lifecycle_of(cls).fields.append(self)

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        file = super().pre_save(model_instance, add)
        if (
            self.model not in _lifecycles
            or type(model_instance)._meta.concrete_model is not self.model
        ):
            return file  # no lifecycle, or a child's save of its parent's field: not followed
        return _lifecycles[self.model].before_save(model_instance, self, file, add)


class LockedRows(NamedTuple):
    """What rows held when they were locked to be saved or deleted."""

    names: dict[Any, dict[str, str | None]]  # by primary key, then by attname
    catalog: references.Catalog | None  # read in the same statement, for the unlink
    registry_locked: set[int]  # the registry rows the statement could see, and locked


class _Deletion:
    """The rows one ``QuerySet.delete()`` locked at once, and which of them it deletes."""

    def __init__(self, locked: LockedRows, within: object) -> None:
        self.locked = locked
        self.within = within  # the transaction holding the locks
        self.deleting: set[Any] = set()


class Lifecycle:
    """The file fields of one concrete model, and what saving or deleting a row does to them."""

    def __init__(self, model: type[models.Model]) -> None:
        self.model = model
        self.fields: list[DbFileField] = []
        # By the QuerySet a delete() started from, while it runs.
        self._deletions: weakref.WeakKeyDictionary[Any, _Deletion] = weakref.WeakKeyDictionary()
        self._follow(model)
        model.save_base = _in_one_transaction(model.save_base)
        model.refresh_from_db = _remembering_after_refresh(model.refresh_from_db)
        # Proxies send signals under their own name: follow those too.
        class_prepared.connect(self._follow_proxy, weak=False)

    def _follow(self, sender: type[models.Model]) -> None:
        post_init.connect(self.remember_loaded, sender=sender, weak=False)
        post_save.connect(self._after_save, sender=sender, weak=False)
        pre_delete.connect(self._before_delete, sender=sender, weak=False)
        post_delete.connect(self._after_delete, sender=sender, weak=False)

    def _follow_proxy(self, sender: type[models.Model], **kwargs: Any) -> None:
        if sender._meta.proxy and sender._meta.concrete_model is self.model:
            self._follow(sender)

    def remember_loaded(self, instance: models.Model, **kwargs: Any) -> None:
        # Read the raw value: touching a deferred field would cost a query per row.
        loaded = _loaded(instance)
        for field in self.fields:
            value = instance.__dict__.get(field.attname, _UNKNOWN)
            loaded[field.attname] = value if value is _UNKNOWN else _name_of(value)

    # -- saving ---------------------------------------------------------------------

    def before_save(self, instance: models.Model, field: DbFileField, file: Any, add: bool) -> Any:
        """What ``field`` writes: the caller's file, or the row's if the caller kept the loaded."""
        row = None if add else self._locked_row(instance)
        name = _name_of(file)
        if row is not None:
            loaded = _loaded(instance).get(field.attname, _UNKNOWN)
            if name == loaded and row[field.attname] != name:
                # Not assigned by the caller, and changed by someone else since loading.
                setattr(instance, field.attname, row[field.attname])
                return getattr(instance, field.attname)
        if name and (row is None or row[field.attname] != name):
            _hold_against_unlink(name)
        return file

    def _locked_row(self, instance: models.Model) -> dict[str, str | None] | None:
        """The row's names, locked with their registry rows until the save commits; read once."""
        if _LOCKED not in instance.__dict__:
            using = instance.__dict__.get(_SAVING_ON) or router.db_for_write(type(instance))
            if not _keeps_files(using):
                return None
            # Saved for its other fields only, a row lets go of no file: then the row
            # alone is locked, without the registry rows and the catalog an unlink needs.
            loaded = _loaded(instance)
            may_replace = any(
                _name_of(instance.__dict__.get(field.attname))
                != loaded.get(field.attname, _UNKNOWN)
                for field in self.fields
            )
            instance.__dict__[_LOCKED] = self._lock(
                instance.pk, None, using, "NO KEY UPDATE", for_unlink=may_replace
            )
        return instance.__dict__[_LOCKED].names.get(instance.pk)

    def _after_save(
        self, instance: models.Model, created: bool, raw: bool, update_fields: Any, **kwargs: Any
    ) -> None:
        locked = instance.__dict__.pop(_LOCKED, None)
        if raw:
            return
        row = locked.names.get(instance.pk) if locked is not None else None
        replaced = []
        for field in self.fields:
            if update_fields is not None and field.attname not in update_fields:
                continue
            current = _name_of(getattr(instance, field.attname))
            previous = row[field.attname] if row is not None else None
            if previous and previous != current:
                replaced.append(previous)
            _loaded(instance)[field.attname] = current
        if replaced:
            _unlink_unreferenced(replaced, locked)

    # -- deleting -------------------------------------------------------------------

    def _before_delete(
        self, instance: models.Model, using: str, origin: Any = None, **kwargs: Any
    ) -> None:
        if not _keeps_files(using):
            return
        deletion = self._deletion_of(origin, using)
        if deletion is not None and instance.pk in deletion.locked.names:
            deletion.deleting.add(instance.pk)
        else:
            instance.__dict__[_LOCKED] = self._lock(instance.pk, None, using, "UPDATE")

    def _deletion_of(self, origin: Any, using: str) -> _Deletion | None:
        """For a ``QuerySet.delete()`` of this model: every row it deletes, locked at once."""
        if (
            not isinstance(origin, models.QuerySet)
            or origin.model._meta.concrete_model is not self.model
        ):
            return None
        deletion = self._deletions.get(origin)
        connection = connections[using]
        if deletion is None or deletion.within != transactions.current_transaction(connection):
            # New, or left by a delete() that failed: lock, then note the transaction
            # (only the first statement makes the server open it).
            locked = self._lock(None, origin, using, "UPDATE")
            deletion = _Deletion(locked, transactions.current_transaction(connection))
            self._deletions[origin] = deletion
        return deletion

    def _after_delete(self, instance: models.Model, origin: Any = None, **kwargs: Any) -> None:
        locked = instance.__dict__.pop(_LOCKED, None)
        if locked is not None:
            names = locked.names.get(instance.pk)  # None: gone already, its files dealt with
            _unlink_unreferenced(list((names or {}).values()), locked)
        deletion = self._deletions.pop(origin, None) if origin is not None else None
        if deletion is not None:
            # Every row of this model that the delete() removes is gone by the first
            # post_delete: one check for all their files.
            rows = deletion.locked.names
            names = [name for pk in deletion.deleting for name in rows[pk].values()]
            _unlink_unreferenced(names, deletion.locked)

    # -- rows, under lock -------------------------------------------------------------

    def _lock(
        self,
        pk: Any,
        rows: models.QuerySet | None,
        using: str,
        strength: str,
        *,
        for_unlink: bool = True,
    ) -> LockedRows:
        """Lock one row (``pk``), or those of ``rows``, and the registry rows of their files.

        One statement, which also reads the catalog for the reference check:
        the rows are locked first, so what the registry lock covers is what
        they hold now, not what an instance loaded. Unless ``for_unlink``,
        only the rows.
        """
        connection = connections[using]
        quote = connection.ops.quote_name
        meta = self.model._meta
        aliases = [f"f{number}" for number in range(len(self.fields))]
        selected = ", ".join(
            f"{quote(field.column)} AS {alias}"
            for field, alias in zip(self.fields, aliases, strict=True)
        )
        if rows is None:
            condition, params = "= %s", [meta.pk.get_db_prep_value(pk, connection)]
        else:
            subquery, params = rows.values("pk").query.get_compiler(using).as_sql()
            condition, params = f"IN ({subquery})", list(params)
        found = f"(SELECT json_agg(json_build_array(pk, {', '.join(aliases)})) FROM r)"
        locked, catalog = "NULL", "NULL"
        together = for_unlink and references.same_database(using, alias_for_writing())
        if together:
            catalog, catalog_params = references.catalog_sql(using)
            params += catalog_params
            if registry.enabled():
                oids = " UNION ALL ".join(f"SELECT {oid_in_sql(alias)} FROM r" for alias in aliases)
                locked = (
                    f"ARRAY(SELECT oid FROM {registry.table()} WHERE oid IN ({oids}) "
                    f"ORDER BY oid FOR UPDATE)"
                )
        sql = (
            f"WITH r AS (SELECT {quote(meta.pk.column)} AS pk, {selected} "
            f"FROM {quote(meta.db_table)} WHERE {quote(meta.pk.column)} {condition} "
            f"FOR {strength}) SELECT {found}, {locked}, {catalog}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows_found, registry_locked, catalog_found = cursor.fetchone()
            if pk is not None and not rows_found:
                # Gone, or deleted by a transaction this one waited for, which hides a
                # row inserted anew under the same key (a stale instance's save()
                # inserts when its update finds nothing): that row would be written
                # over unseen. Whoever finds no row queues here, and looks again.
                key = [zlib.crc32(part.encode()) - 2**31 for part in (meta.db_table, str(pk))]
                cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", key)
                cursor.execute(sql, params)
                rows_found, registry_locked, catalog_found = cursor.fetchone()
        names = {
            meta.pk.to_python(row[0]): {
                field.attname: value or None
                for field, value in zip(self.fields, row[1:], strict=True)
            }
            for row in rows_found or ()
        }
        catalog = references.Catalog.from_json(catalog_found, using) if together else None
        return LockedRows(names, catalog, set(registry_locked or ()))


_lifecycles: dict[type[models.Model], Lifecycle] = {}


def _lifecycle_of(model: type[models.Model]) -> Lifecycle:
    if model not in _lifecycles:
        _lifecycles[model] = Lifecycle(model)
    return _lifecycles[model]


def _keeps_files(using: str) -> bool:
    """Whether rows on ``using`` are followed: only PostgreSQL can hold what they name.

    Elsewhere (a site's tests on SQLite) rows save and delete as Django does,
    and no file is stored (``ImproperlyConfigured``), so none is unlinked.
    """
    return connections[using].vendor == "postgresql"


def _loaded(instance: models.Model) -> dict[str, Any]:
    return instance.__dict__.setdefault(_LOADED_NAMES, {})


def _in_one_transaction(save_base: Any) -> Any:
    """Make a save one transaction: reading the old name, writing the row, unlinking."""

    @functools.wraps(save_base)
    def save_base_in_one_transaction(self: models.Model, *args: Any, **kwargs: Any) -> Any:
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        self.__dict__[_SAVING_ON] = using
        self.__dict__.pop(_LOCKED, None)  # what a delete that failed may have left
        try:
            with transaction.atomic(using=using, savepoint=False), saving_a_row():
                return save_base(self, *args, **kwargs)
        finally:
            self.__dict__.pop(_SAVING_ON, None)
            self.__dict__.pop(_LOCKED, None)

    return save_base_in_one_transaction


def _remembering_after_refresh(refresh_from_db: Any) -> Any:
    """Take the names a refresh loads as the loaded ones, as a fresh instance would."""

    @functools.wraps(refresh_from_db)
    def refresh_from_db_remembering(self: models.Model, *args: Any, **kwargs: Any) -> Any:
        result = refresh_from_db(self, *args, **kwargs)
        lifecycle = _lifecycles.get(type(self)._meta.concrete_model)
        if lifecycle is not None:
            lifecycle.remember_loaded(self)
        return result

    return refresh_from_db_remembering


def _unlink_unreferenced(names: list[str | None], locked: LockedRows) -> None:
    oids = []
    for name in filter(None, names):
        try:
            oids.append(oid_of(name))
        except FileNotFoundError:
            continue  # not a name of this storage: nothing of ours to unlink
    unlinking.unlink_unreferenced(
        oids, alias_for_writing(), catalog=locked.catalog, locked=locked.registry_locked
    )


def _hold_against_unlink(name: str) -> None:
    """Hold the registry row of a newly referenced object until this save commits.

    A concurrent unlink waits for the hold and then sees the reference. An
    object made in this very transaction needs none: nobody else can see it.
    """
    try:
        loid = oid_of(name)
    except FileNotFoundError:
        return
    if transactions.written_in_callers_transaction(loid):
        return
    using = alias_for_writing()
    if not registry.lock(loid, using) and not large_object_exists(database_connection(using), loid):
        # Unlinked by a transaction that committed while this one waited for its lock.
        raise FileNotFoundError(f"The stored file {name!r} was deleted; it cannot be referenced.")


def _name_of(value: Any) -> str | None:
    """The name held by a file field's raw value (a str, a FieldFile or None)."""
    name = getattr(value, "name", value)
    return name or None
