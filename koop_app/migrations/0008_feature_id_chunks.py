from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('koop_app', '0007_refresh_progress'),
    ]

    operations = [
        migrations.CreateModel(
            name='FeatureIdChunk',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('cache_key', models.CharField(db_index=True, max_length=500)),
                ('data', models.BinaryField()),
                ('created', models.DateTimeField(auto_now_add=True)),
            ],
        ),
    ]
