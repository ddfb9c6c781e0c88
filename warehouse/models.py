"""The registry of stored files: one row per large object the storage made.

The oid lives in a real PostgreSQL ``oid`` column. ``vacuumlo`` (and the
``lo`` extension's way of thinking) counts a large object as referenced only
when its oid is in a column of type ``oid`` or ``lo``; storage names
(``"16384.pdf"``) sit in varchar columns, where it cannot see them. With
this table, ``vacuumlo`` keeps every registered file.

The large object stays the truth: an object without a row still exists,
opens and serves. The row adds what is known without opening the object::

    SELECT m.oid, f.size, f.sha256
    FROM pg_largeobject_metadata m LEFT JOIN warehouse_storedfile f USING (oid)
"""

from __future__ import annotations

from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from warehouse.objects import MAX_OID


class OidField(models.BigIntegerField):
    """An integer kept in PostgreSQL's ``oid`` type."""

    description = "PostgreSQL object identifier"
    default_validators = [MinValueValidator(1), MaxValueValidator(MAX_OID)]

    def db_type(self, connection: Any) -> str:
        return "oid"

    def rel_db_type(self, connection: Any) -> str:
        return "oid"

    def cast_db_type(self, connection: Any) -> str:
        return "oid"


class StoredFile(models.Model):
    """What the storage knows about one large object it made."""

    oid = OidField(primary_key=True)
    name = models.CharField(max_length=255, blank=True, help_text="The name it was uploaded as.")
    extension = models.CharField(
        max_length=255,
        blank=True,
        help_text='The extension of its storage name, which rows hold (".pdf" of "16384.pdf").',
    )
    content_type = models.CharField(max_length=255, blank=True)
    size = models.BigIntegerField(help_text="In bytes.")
    sha256 = models.CharField(
        max_length=64, help_text="Hex digest of the content; empty when no longer known."
    )
    utf8 = models.BooleanField(
        null=True, help_text="Whether a text file was valid UTF-8 when written; null if not text."
    )
    upload = models.BooleanField(
        default=False,
        help_text="Streamed in by the upload handler and not saved to a file field yet.",
    )
    created = models.DateTimeField(default=timezone.now)
    modified = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "stored file"

    def __str__(self) -> str:
        return f"{self.oid} ({self.name})" if self.name else str(self.oid)
