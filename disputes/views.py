"""The dashboard's dispute forms (placeholder: being built)."""

from django.http import Http404


def dispute_file(request, task_id):
    raise Http404


def dispute_withdraw(request, dispute_id):
    raise Http404
