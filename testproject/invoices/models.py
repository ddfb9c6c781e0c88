"""The README's Invoice model and the signals that unlink files no invoice uses any more.

The ``DbFileField`` already does what these signals do; they stay to show the
pattern a site written before it keeps, done right: they call
``storage.delete_unreferenced()``, never ``storage.delete()``, so a file that
another row still names (a copied invoice: ``pk = None; save()``) is kept.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.signals import post_delete, post_init, post_save
from django.dispatch import receiver

from warehouse.fields import DbFileField
from warehouse.storage import DbFileStorage


class Invoice(models.Model):
    """An invoice of a user, with its file in a large object."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    title = models.CharField(max_length=200, blank=True)
    data = DbFileField(null=True, blank=True, db_index=True)
    # Served under /invoice/ instead of WAREHOUSE_BASE_URL; the signals below do not look
    # after it, exactly as in the README.
    or_just_so = models.FileField(
        storage=DbFileStorage("/invoice"), null=True, blank=True, db_index=True
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self) -> str:
        return self.title or f"Invoice #{self.pk}"


def _file_state(instance: Invoice) -> dict[str, str | None]:
    """The file names the database holds for ``instance``, to compare with after a save."""
    return {"data": instance.data.name if instance.data else None}


@receiver(post_init, sender=Invoice)
def user_file_initialized(sender: type[Invoice], instance: Invoice, **kwargs: Any) -> None:
    """Remember which file the invoice had when it was loaded."""
    instance._lo_prev_state = _file_state(instance)


@receiver(post_save, sender=Invoice)
def user_file_saved(sender: type[Invoice], instance: Invoice, created: bool, **kwargs: Any) -> None:
    """Unlink the previous file once the invoice points to another one, unless still used."""
    # this is safe because large objects support transactions
    if not created and hasattr(instance, "_lo_prev_state"):
        state = instance._lo_prev_state
        # The README deletes the previous file on every update, so saving an invoice
        # only to change its title would unlink the file it still points to. Only a
        # file that was replaced or cleared is unlinked.
        if state["data"] and state["data"] != instance.data.name:
            instance.data.storage.delete_unreferenced(state["data"])
    # The saved file is now the previous one: a second save must not unlink it again.
    instance._lo_prev_state = _file_state(instance)


@receiver(post_delete, sender=Invoice)
def user_file_deleted(sender: type[Invoice], instance: Invoice, **kwargs: Any) -> None:
    """Unlink the file of a deleted invoice, unless another invoice uses it too."""
    # this is safe because large objects support transactions
    if instance.data:
        instance.data.storage.delete_unreferenced(instance.data.name)
