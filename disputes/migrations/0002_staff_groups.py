"""The Staff and Reviewers groups (city.identity.roles), with their permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations


def groups(apps, schema_editor):
    from city.identity import roles

    # Permissions are otherwise made only after the whole migrate run: make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    roles.ensure_groups(apps=apps)


class Migration(migrations.Migration):
    dependencies = [
        ("disputes", "0001_initial"),
        ("identity", "0001_initial"),
        ("credits", "0002_ledger_guards"),
        ("tasks", "0001_initial"),
        ("api", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(groups, migrations.RunPython.noop)]
