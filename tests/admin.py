from django.contrib import admin

from tests.models import Contract

admin.site.register(Contract)
