"""Carrying stored files with ``dumpdata`` and ``loaddata``, which carry only their names.

A fixture holds what the rows held (``"16384.pdf"``), not the large object:
loaded into another database, such a row names a missing object, or
another one that happens to have that oid. ``warehouse_dumpdata`` writes,
beside the fixture, every file its rows name and a manifest of them (the
name, the registry's name and type, size and SHA-256);
``warehouse_loaddata`` stores each file as a new large object, checks its
SHA-256, rewrites the names in the fixture to the new objects' and loads
it, in one transaction. Which fields hold names is
:func:`warehouse.references.file_fields`'s decision.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.apps import apps
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import File
from django.db import models

from warehouse import references, registry
from warehouse.conf import alias_for_reading, alias_for_writing
from warehouse.io import CHUNK_SIZE
from warehouse.names import extension_of, is_large_object_name, oid_of
from warehouse.storage import db_file_storage

FIXTURE = "data.json"  # what dumpdata wrote
MANIFEST = "files.json"  # one entry per file, in the order of FILES' numbering
FILES = "files"  # the bytes, one file each
FORMAT = 1  # of the manifest


class FixtureFileError(Exception):
    """A file of the fixture cannot be carried: missing, unreadable, or not as dumped."""


def named_files(objects: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], models.Field]]:
    """Each (object, field) of a serialized fixture whose field holds the name of a stored file."""
    fields: dict[type[models.Model], list[models.Field]] = defaultdict(list)
    for model, field in references.file_fields():
        fields[model].append(field)
    for obj in objects:
        if not isinstance(obj, dict):
            continue  # loaddata will say what is wrong with it
        try:
            model = apps.get_model(obj["model"])._meta.concrete_model
        except (KeyError, LookupError, ValueError):
            continue  # loaddata will say what is wrong with it
        for field in fields.get(model, ()):
            if obj.get("fields", {}).get(field.name):
                yield obj, field


def dump(objects: list[dict[str, Any]], directory: Path) -> list[dict[str, Any]]:
    """Write the bytes of every file ``objects`` name under ``directory``; return the manifest.

    Each file once, however many rows name it. Raises
    :class:`FixtureFileError` listing every file that could not be read.
    """
    (directory / FILES).mkdir()
    entries: dict[str, dict[str, Any]] = {}
    problems = []
    for obj, field in named_files(objects):
        name = obj["fields"][field.name]
        if name in entries:
            continue
        storage = references.storage_of(field)
        path = f"{FILES}/{len(entries)}{extension_of(name)}"
        try:
            entries[name] = {"name": name, "path": path, **_copied(storage, name, directory / path)}
        except (OSError, ValueError, SuspiciousFileOperation) as exc:
            problems.append(f"{obj['model']} pk={obj.get('pk')} {field.name}={name!r}: {exc}")
    if problems:
        raise FixtureFileError("cannot read " + "; ".join(problems))
    manifest = list(entries.values())
    (directory / MANIFEST).write_text(json.dumps({"format": FORMAT, "files": manifest}, indent=1))
    return manifest


def _copied(storage: Any, name: str, target: Path) -> dict[str, Any]:
    """Copy one stored file to ``target``; return what the manifest says of it."""
    digest = registry.Digest()
    with storage.open(name, "rb") as source, open(target, "wb") as copy:
        for chunk in digest.passing(source.chunks(CHUNK_SIZE)):
            copy.write(chunk)
    # A previous storage's file has no row: its own name is the one it was saved under.
    row = registry.lookup(oid_of(name), alias_for_reading()) if is_large_object_name(name) else None
    return {
        "uploaded_as": (row.name if row is not None else "") or name,
        "content_type": row.content_type if row is not None else None,
        "size": digest.size,
        "sha256": digest.sha256,
    }


def load(objects: list[dict[str, Any]], directory: Path) -> list[dict[str, Any]]:
    """Store each file of the manifest as a new large object and point ``objects`` at them.

    In the caller's transaction, which a :class:`FixtureFileError` should
    roll back: a file missing, or not the bytes that were dumped, or a name
    the manifest does not hold. Returns the manifest.
    """
    manifest = _manifest(directory)
    limits: dict[str, int] = {}  # the longest name all the fields naming a file can hold
    for obj, field in named_files(objects):
        name = obj["fields"][field.name]
        if field.max_length:
            limits[name] = min(limits.get(name, field.max_length), field.max_length)
    renamed = {}
    for entry in manifest:
        renamed[entry["name"]] = _stored(directory, entry, limits.get(entry["name"]))
    for obj, field in named_files(objects):
        name = obj["fields"][field.name]
        if name not in renamed:
            raise FixtureFileError(
                f"{obj['model']} pk={obj.get('pk')} {field.name}={name!r}: not in {MANIFEST}"
            )
        obj["fields"][field.name] = renamed[name]
    return manifest


def _manifest(directory: Path) -> list[dict[str, Any]]:
    """The manifest's entries, each checked to have what :func:`_stored` reads."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise FixtureFileError(f"cannot read {directory / MANIFEST}: {exc}") from None
    entries = manifest.get("files") if isinstance(manifest, dict) else None
    if (
        not isinstance(entries, list)
        or manifest.get("format") != FORMAT
        or not all(_is_entry(entry) for entry in entries)
    ):
        raise FixtureFileError(f"{directory / MANIFEST} is not a manifest of format {FORMAT}")
    return entries


_TEXT_KEYS = ("name", "path", "uploaded_as", "sha256")


def _is_entry(entry: Any) -> bool:
    return (
        isinstance(entry, dict)
        and all(isinstance(entry.get(key), str) for key in _TEXT_KEYS)
        and isinstance(entry.get("size"), int)
        and isinstance(entry.get("content_type"), (str, type(None)))
    )


def _stored(directory: Path, entry: dict[str, Any], max_length: int | None) -> str:
    """Store one dumped file as a new large object, as dumped; return its name."""
    files = (directory / FILES).resolve()
    path = (directory / entry["path"]).resolve()
    if not path.is_relative_to(files):
        raise FixtureFileError(f"{entry['path']!r} is outside {FILES}/")
    uploaded_as = entry["uploaded_as"] or entry["name"]
    try:
        with open(path, "rb") as file:
            content = File(file, name=uploaded_as)
            content.content_type = entry.get("content_type")  # type: ignore[attr-defined]
            name = db_file_storage.save(uploaded_as, content, max_length=max_length)
    except (OSError, SuspiciousFileOperation) as exc:
        raise FixtureFileError(f"{entry['name']!r} ({entry['path']}): {exc}") from None
    row = registry.lookup(oid_of(name), alias_for_writing())
    if row is None or (row.size, row.sha256) != (entry["size"], entry["sha256"]):
        raise FixtureFileError(
            f"{entry['path']} is not the file that was dumped as {entry['name']!r}: "
            "its size or SHA-256 differs"
        )
    return name
