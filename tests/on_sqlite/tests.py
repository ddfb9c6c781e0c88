"""The site's own tests: none stores a file, so none needs PostgreSQL."""

from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.test import TestCase

from tests.on_sqlite.models import Invoice


class FileFreeTests(TestCase):
    def test_a_user_is_created(self):
        User.objects.create_user("ann", password="secret")
        self.assertTrue(User.objects.filter(username="ann").exists())

    def test_a_row_without_a_file_is_created_changed_and_deleted(self):
        invoice = Invoice.objects.create(number="1")
        invoice.number = "2"
        invoice.save()
        Invoice.objects.filter(pk=invoice.pk).delete()
        invoice = Invoice.objects.create(number="3")
        invoice.delete()
        self.assertFalse(Invoice.objects.exists())

    def test_storing_a_file_says_the_database_cannot_keep_it(self):
        with self.assertRaisesMessage(ImproperlyConfigured, "which is sqlite"):
            Invoice.objects.create(number="4", scan=ContentFile(b"%PDF", name="a.pdf"))
