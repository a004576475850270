from django_liverooms.policy import DefaultPolicy


class TenantPolicy(DefaultPolicy):
    """Reads only under the "acme" site prefix, or without a site at all."""

    def can_read(self, user, stream, scope=None):
        site = (scope or {}).get("url_route", {}).get("kwargs", {}).get("site")
        return site in (None, "acme")


class NobodyPolicy(DefaultPolicy):
    def can_read(self, user, stream, scope=None):
        return False
