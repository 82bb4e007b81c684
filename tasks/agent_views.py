"""The dashboard's "My agents" pages: the agents an owner operates, their task types and prices,
keys, earnings and record.

Only the operator sees an agent here; another owner's agent or key is a 404, as on the API. A new
agent's first key and every later key are shown once, in the response to the POST that made
them (only their hash is stored).
"""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from city.identity import services as identity
from city.identity.models import TASK_TYPE_PATTERN, Agent, AgentOffer, ApiSecret
from city.identity.principals import Principal
from city.identity.views import form_status, owner_required
from credits import selectors as ledger_selectors
from credits import services as ledger
from credits.money import CENTS, cents_of, credits_text
from tasks import selectors
from tasks.models import MAX_BUDGET

RECENT_TASKS = 10
# A dearer offer than the largest budget a task may have (API.md) could never be hired.
MAX_PRICE = MAX_BUDGET
MAX_CONCURRENT = 10_000
# A price as typed: credits with at most two decimals, no thousands separator (is "1,50" one
# and a half credits or a hundred and fifty?).
PRICE_PATTERN = r"^[0-9]+(\.[0-9]{1,2})?$"


class OffersField(forms.CharField):
    """Task types with their prices in credits, one per line: ``code_review 25.00``.

    Cleans to ``{task_type: price in cents}``; every bad line is reported with its number.
    """

    widget = forms.Textarea(
        attrs={"rows": 4, "spellcheck": "false", "autocapitalize": "none", "autocomplete": "off"}
    )

    def __init__(self, **kwargs):
        kwargs.setdefault("label", "Task types and prices (credits)")
        kwargs.setdefault(
            "help_text",
            "One per line: a task type, a space and its price in credits, e.g. "
            "<code>code_review 25.00</code>. A task type is lowercase letters, digits and _.",
        )
        kwargs.setdefault(
            "error_messages", {"required": "List at least one task type with its price."}
        )
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, dict):
            return "\n".join(f"{t} {Decimal(p) / CENTS:.2f}" for t, p in value.items())
        return value

    def to_python(self, value) -> dict[str, int]:
        text = super().to_python(value)
        offers: dict[str, int] = {}
        problems = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            problem = _offer_problem(line, offers)
            if problem:
                problems.append(f"Line {number}: {problem}")
        if problems:
            raise forms.ValidationError(problems)
        return offers


def _offer_problem(line: str, offers: dict[str, int]) -> str | None:
    """Parse one line into ``offers``; what is wrong with it, if anything."""
    parts = re.split(r"[\s=]+", line.strip())
    if len(parts) != 2:
        return f"“{line.strip()}” is not a task type and a price, e.g. “code_review 25.00”."
    task_type, price = parts
    if not re.fullmatch(TASK_TYPE_PATTERN, task_type):
        return (
            f"“{task_type}” is not a task type: use lowercase letters, digits and _ (at most 64)."
        )
    if task_type in offers:
        return f"{task_type} is listed twice."
    if not re.fullmatch(PRICE_PATTERN, price):
        return f"the price of {task_type} must be a number of credits, e.g. 25 or 25.50."
    cents = cents_of(Decimal(price))
    if not 1 <= cents <= MAX_PRICE:
        return f"the price of {task_type} must be from 0.01 to {credits_text(MAX_PRICE)} credits."
    offers[task_type] = cents
    return None


class AgentTermsForm(forms.Form):
    """What an agent takes and how much of it at once: editable after registration."""

    offers = OffersField()
    max_concurrent = forms.IntegerField(
        min_value=1,
        max_value=MAX_CONCURRENT,
        initial=10,
        label="Concurrency limit",
        help_text="How many of its tasks may be executing at once; routing skips it at the limit.",
    )


class AgentRegisterForm(AgentTermsForm):
    name = forms.CharField(max_length=200, label="Name")

    field_order = ["name", "offers", "max_concurrent"]


class KeyForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        required=False,
        label="Key name (optional)",
        help_text="Where the key is used, e.g. “production worker”.",
    )


def _operated(request) -> QuerySet[Agent]:
    return Agent.objects.filter(operator=request.user.owner)


def _with_record(agents: QuerySet[Agent]) -> QuerySet[Agent]:
    """``agents`` with their offers and the record the API's directory shows, suspended agents
    too: the directory lists active agents only, but an operator sees all of its own."""
    return selectors.with_record(agents).prefetch_related(
        Prefetch("offers", queryset=AgentOffer.objects.order_by("task_type"))
    )


@never_cache  # the response to a registration holds the agent's first key
@owner_required
@require_http_methods(["GET", "POST"])
def agent_list(request):
    """The agents I operate, and registering one."""
    form = AgentRegisterForm(request.POST if request.method == "POST" else None)
    created = issued = None
    if form.is_bound and form.is_valid():
        try:
            with transaction.atomic():
                created, issued = identity.agent_create(
                    operator=request.user.owner,
                    name=form.cleaned_data["name"],
                    offers=form.cleaned_data["offers"],
                    max_concurrent=form.cleaned_data["max_concurrent"],
                )
                # As manage.py create_owner and the test factories do; the ledger would
                # also open them on the agent's first movement.
                ledger.accounts_open(agent=created)
        except identity.IdentityError as error:
            form.add_error(None, error.message)
        else:
            form = AgentRegisterForm()
    agents = list(_with_record(_operated(request)).order_by("created_at", "id"))
    balances = ledger_selectors.agent_balances(agents)
    for agent in agents:
        agent.balance = balances[agent.pk]
    return render(
        request,
        "dashboard/agents.html",
        {"form": form, "agents": agents, "created": created, "issued": issued},
        status=201 if issued else form_status(form),
    )


def _detail_page(request, agent: Agent, *, terms=None, key_form=None, issued=None, status=200):
    agent = _with_record(Agent.objects.filter(pk=agent.pk)).get()
    offers = {offer.task_type: offer.price for offer in agent.offers.all()}
    recent = (
        # The tasks it was assigned, as the agent itself lists them (role=assignee).
        selectors.task_list(principal=Principal(agent=agent), role="assignee").defer(
            "input", "output"
        )[:RECENT_TASKS]
    )
    context = {
        "agent": agent,
        "terms": terms
        or AgentTermsForm(initial={"offers": offers, "max_concurrent": agent.max_concurrent}),
        "key_form": key_form or KeyForm(prefix="key"),
        "keys": agent.keys.order_by("-created_at", "-id"),
        "balance": ledger_selectors.balance_get(agent=agent),
        "recent": recent,
        "issued": issued,
    }
    return render(request, "dashboard/agent_detail.html", context, status=status)


@never_cache
@owner_required
@require_http_methods(["GET", "POST"])
def agent_detail(request, agent_id: str):
    """One of my agents; a POST edits its task types, prices and concurrency limit."""
    agent = get_object_or_404(_operated(request), pk=agent_id)
    if request.method != "POST":
        return _detail_page(request, agent)
    terms = AgentTermsForm(request.POST)
    if terms.is_valid():
        try:
            identity.agent_update(
                agent=agent,
                offers=terms.cleaned_data["offers"],
                max_concurrent=terms.cleaned_data["max_concurrent"],
            )
        except identity.IdentityError as error:
            terms.add_error(None, error.message)
        else:
            messages.success(request, f"Saved {agent.name}'s task types and concurrency limit.")
            return redirect("dashboard:agent", agent.pk)
    return _detail_page(request, agent, terms=terms, status=400)


@never_cache  # the response holds the new key
@owner_required
@require_POST
def agent_key_create(request, agent_id: str):
    agent = get_object_or_404(_operated(request), pk=agent_id)
    key_form = KeyForm(request.POST, prefix="key")
    if not key_form.is_valid():
        return _detail_page(request, agent, key_form=key_form, status=400)
    issued = identity.agent_key_issue(agent=agent, name=key_form.cleaned_data["name"].strip())
    return _detail_page(request, agent, issued=issued, status=201)


@owner_required
@require_POST
def agent_key_revoke(request, agent_id: str, key_id: int):
    agent = get_object_or_404(_operated(request), pk=agent_id)
    keys = ApiSecret.objects.filter(agent=agent, kind=ApiSecret.Kind.AGENT, pk=key_id)
    key = get_object_or_404(keys)
    label = f"{key.name} ({key.hint})" if key.name else key.hint
    if not identity.secrets_revoke(secrets=keys):
        messages.info(request, f"The key {label} was already revoked.")
        return redirect("dashboard:agent", agent.pk)
    messages.success(request, f"Revoked the key {label}: the API now refuses it.")
    if not agent.keys.filter(revoked_at__isnull=True).exists():
        messages.warning(
            request, f"{agent.name} has no key left: create one before it calls the API again."
        )
    return redirect("dashboard:agent", agent.pk)
