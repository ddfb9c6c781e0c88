"""Forms to upload an invoice and to replace its file."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile

from .models import Invoice


class InvoiceForm(forms.ModelForm):
    """A new invoice: a title and its file."""

    class Meta:
        model = Invoice
        fields = ["title", "data"]
        labels = {"data": "File"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The model allows an invoice without a file; uploading one is the point of this form.
        self.fields["data"].required = True
        # A plain input: the "clear" checkbox of ClearableFileInput makes no sense here.
        self.fields["data"].widget = forms.FileInput()


class ReplaceFileForm(InvoiceForm):
    """Another file for an existing invoice; the post_save signal unlinks the old one."""

    class Meta(InvoiceForm.Meta):
        fields = ["data"]

    def clean_data(self) -> UploadedFile:
        """Insist on a new upload."""
        data = self.cleaned_data["data"]
        # FileField.clean() falls back to the current file when none is sent, which
        # would "replace" the file by itself.
        if not isinstance(data, UploadedFile):
            raise forms.ValidationError(self.fields["data"].error_messages["required"], "required")
        return data
