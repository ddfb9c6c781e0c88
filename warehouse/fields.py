"""A model field for files kept in PostgreSQL large objects."""

from __future__ import annotations

from typing import Any

from django.db import models

from warehouse.storage import db_file_storage


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
        **kwargs: Any,
    ) -> None:
        super().__init__(
            verbose_name, name, upload_to=upload_to, storage=storage or db_file_storage, **kwargs
        )

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        # The default storage is implied by the field: keep it out of migrations.
        if kwargs.get("storage") is db_file_storage:
            del kwargs["storage"]
        return name, path, args, kwargs
