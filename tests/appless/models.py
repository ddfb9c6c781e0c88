from django.db import models

from warehouse.fields import DbFileField


class Scan(models.Model):
    file = DbFileField(db_index=True)

    class Meta:
        app_label = "appless"

    def __str__(self) -> str:
        return self.file.name
