"""A model field for files kept in PostgreSQL large objects, and their lifecycle.

Django never deletes a file when the row pointing at it changes or goes
away. A ``DbFileField`` does (unless ``auto_delete=False``): replacing or
clearing the file, and deleting the row (also through ``QuerySet.delete()``
and cascades), unlinks the old object in the transaction of that save or
delete, so a rollback brings it back. An object that any other row still
names (a copy made with ``pk = None; save()``), or whose oid sits in an
``oid``/``lo`` column, is kept.

Like Django's ``ImageField`` dimensions, this follows the signals of the model
that declares the field: a child of multi-table inheritance does not trigger
it for its parent's field.
"""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django.db.models.signals import class_prepared, post_delete, post_init, post_save

from warehouse import references, registry
from warehouse.conf import alias_for_writing
from warehouse.objects import database_connection, large_object_exists
from warehouse.storage import DbFileStorage, db_file_storage, oid_of

# Per instance, the names its file fields had when it was loaded or last saved.
_SAVED_NAMES = "_warehouse_saved_names"
# The name of a field that was deferred when the instance was loaded.
_UNKNOWN = object()


class DbFileField(models.FileField):
    """A ``FileField`` whose storage is ``db_file_storage`` unless another is given.

    ``upload_to`` is accepted for compatibility and ignored by
    ``DbFileStorage``: a saved file is always named ``<oid><ext>``.
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
            verbose_name, name, upload_to=upload_to, storage=storage or db_file_storage, **kwargs
        )

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        # The default storage is implied by the field: keep it out of migrations.
        if kwargs.get("storage") is db_file_storage:
            del kwargs["storage"]
        if not self.auto_delete:
            kwargs["auto_delete"] = False
        return name, path, args, kwargs

    def contribute_to_class(self, cls: type[models.Model], name: str, **kwargs: Any) -> None:
        super().contribute_to_class(cls, name, **kwargs)
        if self.auto_delete and not cls._meta.abstract:
            self._follow(cls)
            # Proxies send signals under their own name: follow those too.
            class_prepared.connect(self._follow_proxy, weak=False)

    def _follow(self, sender: type[models.Model]) -> None:
        post_init.connect(self._remember_name, sender=sender, weak=False)
        post_save.connect(self._unlink_replaced, sender=sender, weak=False)
        post_delete.connect(self._unlink_deleted, sender=sender, weak=False)

    def _follow_proxy(self, sender: type[models.Model], **kwargs: Any) -> None:
        if sender._meta.proxy and sender._meta.concrete_model is self.model:
            self._follow(sender)

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        file = super().pre_save(model_instance, add)
        if not self.auto_delete:
            return file
        if not add and (
            model_instance._state.adding or self._saved_name(model_instance) is _UNKNOWN
        ):
            # Only a name read from the database is trusted as the one being replaced:
            # not one given to the constructor (an upload's name is the client's choice),
            # nor a deferred field's. Ask the row.
            self._set_saved_name(model_instance, self._stored_name(model_instance))
        if file and (add or file.name != self._saved_name(model_instance)):
            # A new reference: hold the object's registry row until this save commits,
            # so that a concurrent unlink waits for it and then sees the reference.
            _hold_against_unlink(file.name)
        return file

    # -- signal receivers -------------------------------------------------------

    def _remember_name(self, instance: models.Model, **kwargs: Any) -> None:
        # Read the raw value: touching a deferred field would cost a query per row.
        value = instance.__dict__.get(self.attname, _UNKNOWN)
        self._set_saved_name(instance, value if value is _UNKNOWN else _name_of(value))

    def _unlink_replaced(
        self, instance: models.Model, created: bool, raw: bool, update_fields: Any, **kwargs: Any
    ) -> None:
        if raw or (update_fields is not None and self.attname not in update_fields):
            return
        previous = self._saved_name(instance)
        current = _name_of(getattr(instance, self.attname))
        # A new row replaced nothing, whatever name its constructor was given.
        if not created and previous is not _UNKNOWN and previous != current:
            self._unlink_unreferenced(previous)
        self._set_saved_name(instance, current)

    def _unlink_deleted(self, instance: models.Model, **kwargs: Any) -> None:
        self._unlink_unreferenced(_name_of(instance.__dict__.get(self.attname)))

    # -- helpers ----------------------------------------------------------------

    def _saved_name(self, instance: models.Model) -> Any:
        return instance.__dict__.get(_SAVED_NAMES, {}).get(self.attname)

    def _set_saved_name(self, instance: models.Model, name: Any) -> None:
        instance.__dict__.setdefault(_SAVED_NAMES, {})[self.attname] = name

    def _stored_name(self, instance: models.Model) -> str | None:
        rows = type(instance)._base_manager.using(instance._state.db or alias_for_writing())
        return rows.filter(pk=instance.pk).values_list(self.attname, flat=True).first() or None

    def _unlink_unreferenced(self, name: str | None) -> None:
        """Unlink the object named ``name`` unless something still points at it."""
        if not name or not isinstance(self.storage, DbFileStorage):
            return
        try:
            loid = oid_of(name)
        except FileNotFoundError:
            return  # not a name of this storage: nothing of ours to unlink
        using = alias_for_writing()
        with transaction.atomic(using=using):
            # Taken before looking: a save adding a reference now waits for this one.
            registry.lock(loid, using, share=False)
            # An oid column this role may not read could hold it: keep it for
            # warehouse_cleanup, which says why it cannot decide.
            if references.unreadable_oid_columns(using):
                return
            if loid not in references.referenced_among([loid], using):
                self.storage.delete(name)


def _hold_against_unlink(name: str) -> None:
    try:
        loid = oid_of(name)
    except FileNotFoundError:
        return
    using = alias_for_writing()
    if not registry.lock(loid, using, share=True) and not large_object_exists(
        database_connection(using), loid
    ):
        # Unlinked by a transaction that committed while this one waited for its lock.
        raise FileNotFoundError(f"The stored file {name!r} was deleted; it cannot be referenced.")


def _name_of(value: Any) -> str | None:
    """The name held by a file field's raw value (a str, a FieldFile or None)."""
    name = getattr(value, "name", value)
    return name or None
