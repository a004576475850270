import re

from django_liverooms.policy import DefaultPolicy, MessageRejected


class TenantPolicy(DefaultPolicy):
    """Reads only under the "acme" site prefix, or without a site at all."""

    def can_read(self, user, stream, scope=None):
        site = (scope or {}).get("url_route", {}).get("kwargs", {}).get("site")
        return site in (None, "acme")


class NobodyPolicy(DefaultPolicy):
    def can_read(self, user, stream, scope=None):
        return False


class EditorsReadPolicy(DefaultPolicy):
    """Live blogs readable only by users who may publish entries."""

    def can_read(self, user, stream, scope=None):
        return bool(user.is_authenticated and user.has_perm("django_liverooms.add_entry"))


class WordListPolicy(DefaultPolicy):
    """Stars out "darn" and "heck"; refuses any message with "spam" in it."""

    STARRED = re.compile(r"\b(darn|heck)\b", re.IGNORECASE)

    def clean_message(self, user, room, body, scope=None):
        if "spam" in body.lower():
            raise MessageRejected("No spam here.")
        return self.STARRED.sub(lambda match: "*" * len(match[0]), body)
