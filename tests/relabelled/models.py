"""The site's model: a row holding a file."""

from django.db import models

from warehouse.fields import DbFileField


class Contract(models.Model):
    scan = DbFileField(db_index=True)

    class Meta:
        app_label = "relabelled"

    def __str__(self) -> str:
        return self.scan.name
