"""The API renders JSON with orjson: the same bytes DRF's encoder writes, and what orjson cannot
encode (an integer past 64 bits in a caller's input) still renders."""

from __future__ import annotations

import json

from django.utils.translation import gettext_lazy
from rest_framework.renderers import JSONRenderer

from city.api.renderers import OrjsonRenderer
from tests.actions import get_task, submit


def test_it_writes_what_drfs_renderer_writes(alice, rex):
    task = get_task(alice, submit(alice, agentId=rex.id, input={"description": "Ünïcode ✓"})["id"])

    assert OrjsonRenderer().render(task) == JSONRenderer().render(task)
    assert "Ünïcode ✓".encode() in OrjsonRenderer().render(task)  # UTF-8, not \\u escapes


def test_an_integer_past_64_bits_falls_back_to_drfs_encoder(alice, rex):
    big = 2**70
    tid = submit(alice, agentId=rex.id, input={"description": "d", "n": big})["id"]
    response = alice.api.get(f"/api/v1/tasks/{tid}")

    assert response.status_code == 200
    assert json.loads(response.content)["input"]["n"] == big


def test_lazy_text_renders_as_its_string():
    assert (
        OrjsonRenderer().render({"message": gettext_lazy("Not found.")})
        == b'{"message":"Not found."}'
    )
