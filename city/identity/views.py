"""The dashboard's account pages: sign up, log in and out (Django's views), change password, and
the owner's API tokens.

An owner's login is the Django user behind ``Owner``; signing up goes through
``identity.services.owner_create``, as ``manage.py create_owner`` does (the owner's credit pool is
opened by the ledger on its first movement).
"""

from __future__ import annotations

from functools import wraps

from django import forms
from django.contrib import messages
from django.contrib.auth import login, password_validation
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from city.identity import services
from city.identity.models import ApiSecret
from city.identity.principals import Principal


class SignupForm(forms.Form):
    email = forms.EmailField(
        max_length=150, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )
    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(username=email).exists():
            raise forms.ValidationError("An account with this email exists: log in instead.")
        return email

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        password_validation.validate_password(password)
        return password


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("dashboard:home")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        owner, _token = services.owner_create(
            email=form.cleaned_data["email"], password=form.cleaned_data["password"]
        )
        login(request, owner.user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("dashboard:home")
    return render(request, "dashboard/signup.html", {"form": form}, status=form_status(form))


def form_status(form) -> int:
    """A dashboard page's status: 200 for a fresh form, 400 for one sent back with errors (the
    page is the same)."""
    return 400 if form.is_bound and form.errors else 200


def owner_principal(request) -> Principal:
    """The logged-in owner of an ``owner_required`` page, as the services and selectors take it."""
    return Principal(owner=request.user.owner)


def owner_required(view):
    """The page is an owner's: anonymous visitors log in first; a login that is not an owner's
    (an admin's) is refused."""

    @login_required
    @wraps(view)
    def run(request, *args, **kwargs):
        if not hasattr(request.user, "owner"):
            raise PermissionDenied("This login has no owner account.")
        return view(request, *args, **kwargs)

    return run


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=100,
        required=False,
        label="Name (optional)",
        help_text="What the token is for, e.g. “CI” or “my laptop”.",
    )


@never_cache  # the response to a POST holds a new secret: no cache may keep it
@owner_required
@require_http_methods(["GET", "POST"])
def tokens(request):
    """The owner's API tokens; a new one's secret is shown in the POST's response, and only
    there (it is stored as a hash: no later page could show it)."""
    owner = request.user.owner
    form = TokenForm(request.POST if request.method == "POST" else None)
    issued = None
    if form.is_bound and form.is_valid():
        issued = services.owner_token_issue(owner=owner, name=form.cleaned_data["name"].strip())
        form = TokenForm()
    return render(
        request,
        "dashboard/tokens.html",
        {
            "form": form,
            "issued": issued,
            "tokens": owner.tokens.order_by("-created_at", "-id"),
        },
        status=201 if issued else form_status(form),
    )


@owner_required
@require_POST
def token_revoke(request, token_id: int):
    # Scoped to the owner: another owner's token is a 404, as if it did not exist.
    tokens = ApiSecret.objects.filter(
        owner=request.user.owner, kind=ApiSecret.Kind.OWNER, pk=token_id
    )
    token = get_object_or_404(tokens)
    label = f"{token.name} ({token.hint})" if token.name else token.hint
    if services.secrets_revoke(secrets=tokens):
        messages.success(request, f"Revoked the token {label}: the API now refuses it.")
    else:
        messages.info(request, f"The token {label} was already revoked.")
    return redirect("dashboard:tokens")
