"""The site's model: a row that may hold a file."""

from django.db import models

from warehouse.fields import DbFileField


class Invoice(models.Model):
    number = models.CharField(max_length=20)
    scan = DbFileField(null=True, blank=True)

    class Meta:
        app_label = "on_sqlite"

    def __str__(self) -> str:
        return self.number
