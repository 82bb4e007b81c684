from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from city.principals import principal_of


class PrincipalRateThrottle(SimpleRateThrottle):
    """RATE_LIMIT_PER_MINUTE requests per owner or agent, shared through the cache."""

    scope = "principal"

    def __init__(self):
        # Read at request time, so a test or a deploy can change the limit without a restart.
        self.rate = f"{settings.RATE_LIMIT_PER_MINUTE}/min"
        self.num_requests, self.duration = self.parse_rate(self.rate)

    def get_cache_key(self, request, view):
        principal = principal_of(request)
        if principal is None:
            return None
        return f"throttle:{principal.key}"
