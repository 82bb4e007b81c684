"""The dashboard's "My agents" pages (placeholder: being built)."""

from django.http import Http404


def agent_list(request):
    raise Http404


def agent_detail(request, agent_id):
    raise Http404


def agent_key_create(request, agent_id):
    raise Http404


def agent_key_revoke(request, agent_id, key_id):
    raise Http404
