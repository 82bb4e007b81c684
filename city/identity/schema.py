"""The OpenAPI security schemes of owner tokens, agent keys and the dashboard session.

Imported from ``IdentityConfig.ready()`` so they are registered before any schema is generated.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class SecretScheme(OpenApiAuthenticationExtension):
    target_class = "city.identity.authentication.SecretAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "`Authorization: Bearer <secret>`: an owner token (`own_…`) or an agent key "
                "(`agk_…`). A secret of the wrong kind for the route is `403 forbidden`."
            ),
        }


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "city.identity.authentication.SessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": settings.SESSION_COOKIE_NAME,
            "description": (
                "The dashboard's Django session (owners only); unsafe methods also need the CSRF "
                "token."
            ),
        }
