"""Models of the tests. Invoice and its signals are the README's (the seed's, post_save fixed).

tests/test_seed_example.py checks that README.rst shows these very receivers.
"""

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.db.models.signals import post_delete, post_init, post_save
from django.dispatch import receiver

from warehouse.fields import DbFileField
from warehouse.models import OidField
from warehouse.storage import DbFileStorage


class Invoice(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    data = DbFileField(null=True, blank=True)
    or_just_so = models.FileField(storage=DbFileStorage("/invoice"), null=True, blank=True)


@receiver(post_init, sender=Invoice)
def user_file_initialized(sender, instance, **kwargs):
    instance._lo_prev_state = {"data": instance.data.name if instance.data else None}


@receiver(post_save, sender=Invoice)
def user_file_saved(sender, instance, created, **kwargs):
    # this is safe because large objects support transactions
    if not created and hasattr(instance, "_lo_prev_state"):
        previous = instance._lo_prev_state["data"]
        if previous and previous != instance.data.name:
            instance.data.storage.delete(previous)
    instance._lo_prev_state = {"data": instance.data.name if instance.data else None}


@receiver(post_delete, sender=Invoice)
def user_file_deleted(sender, instance: Invoice, **kwargs):
    # this is safe because large objects support transactions
    if instance.data:
        instance.data.storage.delete(instance.data.name)


class Contract(models.Model):
    """A model with no signals, for the field on its own."""

    title = models.CharField(max_length=100, blank=True)
    document = DbFileField(blank=True, db_index=True)


class Folder(models.Model):
    """Owns documents, to delete them by cascade."""

    name = models.CharField(max_length=100, default="folder")

    def __str__(self) -> str:
        return self.name


class Document(models.Model):
    """A file with the automatic lifecycle, and a second file field beside it."""

    folder = models.ForeignKey(Folder, null=True, blank=True, on_delete=models.CASCADE)
    title = models.CharField(max_length=100, blank=True)
    file = DbFileField(null=True, blank=True, db_index=True)
    attachment = DbFileField(null=True, blank=True, db_index=True)

    def __str__(self) -> str:
        return self.title


class DocumentProxy(Document):
    """What admin customisations often are: the same table under another class."""

    class Meta:
        proxy = True


class Draft(models.Model):
    """A file whose lifecycle is switched off."""

    file = DbFileField(auto_delete=False, blank=True)

    def __str__(self) -> str:
        return self.file.name


class LegacyBlob(models.Model):
    """An oid column of the kind vacuumlo and the cleanup honour."""

    loid = OidField()

    def __str__(self) -> str:
        return str(self.loid)


class DocumentHistory(models.Model):
    """A history table's copy of a document's file name, in a plain CharField."""

    file = models.CharField(max_length=100, blank=True, db_index=True)

    def __str__(self) -> str:
        return self.file


class Receipt(models.Model):
    """A file moved over from the file system: rows hold names in ``upload_to`` folders."""

    title = models.CharField(max_length=100, blank=True)
    file = DbFileField(upload_to="receipts/%Y", max_length=255, blank=True, db_index=True)

    def __str__(self) -> str:
        return self.title


class ReceiptOnDisk(models.Model):
    """The same table as the site had it before the move: a FileField in MEDIA_ROOT."""

    title = models.CharField(max_length=100, blank=True)
    file = models.FileField(
        upload_to="receipts/%Y", storage=FileSystemStorage(), max_length=255, blank=True
    )

    class Meta:
        managed = False
        db_table = "tests_receipt"

    def __str__(self) -> str:
        return self.title
