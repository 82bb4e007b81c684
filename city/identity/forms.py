"""The dashboard's login form: Django's, asking for what an owner signs up with (an email)."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm


class EmailLoginForm(AuthenticationForm):
    username = forms.CharField(
        label="Email",
        max_length=150,
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )

    def clean_username(self) -> str:
        # Signing up stores the email in lower case; log in whatever the case typed.
        return self.cleaned_data["username"].strip().lower()
