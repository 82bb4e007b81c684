"""The dashboard's credits page (placeholder: being built)."""

from django.http import Http404


def credits_page(request):
    raise Http404
