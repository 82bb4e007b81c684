"""Staff roles as Django groups: "Staff" may look at everything in the admin, "Reviewers" may
also act on disputes. Nobody is made a superuser by City.

The groups are made by a data migration and again after every ``migrate`` or ``flush``
(``post_migrate``, connected by the disputes app, whose permission the Reviewers need), since a
test database's flush empties them.
"""

from __future__ import annotations

STAFF = "Staff"
REVIEWERS = "Reviewers"

# The apps whose models staff may view in the admin.
VIEWABLE_APPS = ("identity", "credits", "tasks", "disputes", "api")
REVIEW_PERMISSION = ("disputes", "review_dispute")


def ensure_groups(apps=None, **_) -> None:
    """Create the groups with their permissions, or bring them up to date; idempotent."""
    get = apps.get_model if apps is not None else _live_model
    Group, Permission = get("auth", "Group"), get("auth", "Permission")
    views = list(
        Permission.objects.filter(
            codename__startswith="view_", content_type__app_label__in=VIEWABLE_APPS
        )
    )
    staff, _ = Group.objects.get_or_create(name=STAFF)
    staff.permissions.add(*views)
    reviewers, _ = Group.objects.get_or_create(name=REVIEWERS)
    app_label, codename = REVIEW_PERMISSION
    review = Permission.objects.filter(content_type__app_label=app_label, codename=codename)
    reviewers.permissions.add(*views, *review)


def _live_model(app_label: str, model: str):
    from django.apps import apps

    return apps.get_model(app_label, model)
