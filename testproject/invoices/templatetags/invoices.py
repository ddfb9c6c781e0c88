"""How the demo's pages show a file: by the name it was uploaded as, and a size people read."""

from __future__ import annotations

import os

from django import template
from django.db.models.fields.files import FieldFile

from warehouse.progress import human_size
from warehouse.storage import DbFileStorage

register = template.Library()


def shown_name(file: FieldFile) -> str:
    """The name a person uploaded ``file`` as ("Rechnung März.pdf"), not its oid's."""
    if isinstance(file.storage, DbFileStorage):
        return file.storage.uploaded_name(file.name)
    return os.path.basename(file.name)


@register.filter(name="uploaded_name")
def uploaded_name_filter(file: FieldFile) -> str:
    """``{{ invoice.data|uploaded_name }}``."""
    return shown_name(file) if file else ""


@register.filter(name="human_size")
def human_size_filter(size: int | None) -> str:
    """``{{ size|human_size }}``: "3.3 MiB", or a dash for a file that is not there."""
    return "—" if size is None else human_size(size)
