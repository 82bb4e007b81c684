"""The admin's login form, throttled: failed logins are counted per account and per address.

Guessing a reviewer's password would open the refund console, so after
ADMIN_LOGIN_FAILURES_PER_MINUTE failures for one account, or from one address, further attempts
are refused until the minute ends, right ones included (unlike the API's secrets, a password is
guessable, and a refusal that let the right one through would say which one was right).
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm

from city.api.throttling import seconds_left_in_window, window_count, window_peek
from city.identity.authentication import client_address


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    def clean(self):
        username = (self.data.get("username") or "").strip().lower()
        keys = [f"adminlogin:user:{username}", f"adminlogin:addr:{client_address(self.request)}"]
        limit = settings.ADMIN_LOGIN_FAILURES_PER_MINUTE
        if any(window_peek(key) >= limit for key in keys):
            raise forms.ValidationError(
                f"Too many failed logins. Try again in {seconds_left_in_window()} s.",
                code="throttled",
            )
        try:
            return super().clean()
        except forms.ValidationError:
            for key in keys:
                window_count(key)
            raise
