"""The receiver's settings: the Airflow connection ``crmsync_webhook`` (pure, no Airflow import).

- password: the token, the secret last segment of the receiver's URL
  (``/crmsync/webhooks/sumit/<token>``). SUMIT documents no signature for its triggers, so
  whoever knows the URL can post to it: make it long and random
  (``python -c 'import secrets; print(secrets.token_urlsafe(32))'``), at least 24 characters
  of letters, digits, ``-`` and ``_``.
- extra ``public_url`` (or the host field): the address SUMIT reaches the api-server at, for
  example ``https://airflow.example.com``; only crm_sumit_triggers (subscribing) needs it.

``CRMSYNC_WEBHOOK_CONN_ID`` names another connection.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from crmsync.core.errors import ConfigurationError
from crmsync.core.triggers import receiver_url

CONN_ID_ENV = "CRMSYNC_WEBHOOK_CONN_ID"
DEFAULT_CONN_ID = "crmsync_webhook"
MIN_TOKEN_LENGTH = 24
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


def conn_id() -> str:
    return os.environ.get(CONN_ID_ENV, "").strip() or DEFAULT_CONN_ID


@dataclass(frozen=True)
class WebhookSettings:
    token: str = field(repr=False)
    public_url: str | None = None

    @classmethod
    def from_connection(cls, conn_id: str, *, password: str | None, host: str | None,
                        extra: dict[str, Any] | str | None) -> "WebhookSettings":
        where = f"Airflow connection {conn_id!r}"
        token = (password or "").strip()
        if len(token) < MIN_TOKEN_LENGTH or not _TOKEN.fullmatch(token):
            raise ConfigurationError(
                f"{where}: the password is the receiver's token and must be at least {MIN_TOKEN_LENGTH} characters "
                "of letters, digits, '-' and '_' (python -c 'import secrets; print(secrets.token_urlsafe(32))')."
            )
        if isinstance(extra, str):
            try:
                extra = json.loads(extra) if extra.strip() else {}
            except ValueError:
                raise ConfigurationError(f"{where}: extra is not JSON.") from None
        public_url = str((extra or {}).get("public_url") or host or "").strip() or None
        if public_url is not None:
            parts = urlsplit(public_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigurationError(
                    f"{where}: extra.public_url must be the api-server's address as SUMIT reaches it, "
                    f"such as https://airflow.example.com (not {public_url!r})."
                )
        return cls(token=token, public_url=public_url)

    def url(self, conn_id: str) -> str:
        """The receiver's full URL (with the token): only for SUMIT's subscribe call."""
        if not self.public_url:
            raise ConfigurationError(
                f"Airflow connection {conn_id!r} has no extra.public_url: the address SUMIT reaches the "
                "api-server at, such as https://airflow.example.com, is needed to subscribe."
            )
        return receiver_url(self.public_url, self.token)
