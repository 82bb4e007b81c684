"""The dashboard's account pages: sign up, log in and out (Django's views), change password.

An owner's login is the Django user behind ``Owner``; signing up goes through
``identity.services.owner_create``, as ``manage.py create_owner`` does (the owner's credit pool is
opened by the ledger on its first movement).
"""

from __future__ import annotations

from functools import wraps

from django import forms
from django.contrib.auth import login, password_validation
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from city.identity import services


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
    return render(request, "dashboard/signup.html", {"form": form}, status=_status(form))


def _status(form) -> int:
    """200 for a fresh form, 400 for one sent back with errors (the page is the same)."""
    return 400 if form.is_bound and form.errors else 200


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


def tokens(request):
    """API tokens (placeholder: being built)."""
    from django.http import Http404

    raise Http404


def token_revoke(request, token_id):
    from django.http import Http404

    raise Http404
