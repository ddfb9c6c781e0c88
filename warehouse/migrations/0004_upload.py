from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("warehouse", "0003_extension")]

    operations = [
        migrations.AddField(
            model_name="storedfile",
            name="upload",
            field=models.BooleanField(
                default=False,
                help_text="Streamed in by the upload handler and not saved to a file field yet.",
            ),
        ),
    ]
