from django.db import migrations, models


class Migration(migrations.Migration):
    """The storage name's extension, so that listdir() lists the names rows hold.

    Rows made before have none, and their objects are listed by bare oid:
    guessing from the uploaded name would be what made listdir() wrong.
    """

    dependencies = [
        ("warehouse", "0002_utf8"),
    ]

    operations = [
        migrations.AddField(
            model_name="storedfile",
            name="extension",
            field=models.CharField(
                blank=True,
                help_text='The extension of its storage name, which rows hold (".pdf" of "16384.pdf").',
                max_length=255,
            ),
        ),
    ]
