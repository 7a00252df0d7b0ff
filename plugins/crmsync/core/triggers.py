"""SUMIT's triggers (webhooks), read: what a trigger's body says, in either of its shapes (pure).

SUMIT posts a trigger when a record of a subscribed folder changes. Public integrations
receive it as a form post whose field ``json`` holds ``{"Folder", "Type", "EntityID"}``, and
sometimes as the positional array ``[FolderID, EntityID, Action, Properties]``; both are
accepted here, in a form field or as the whole (JSON) body. A trigger is a hint that an
entity changed, not its data: crm_apply_crm_events reads the entity fresh from SUMIT.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from crmsync.core.errors import InvalidRecord
from crmsync.core.mapping import clean_id
from crmsync.core.text import storable

MAX_BODY_BYTES = 1_000_000  # a trigger names one entity: a body this big is not one
MAX_EVENTS_PER_BODY = 1000  # a list of triggers in one body (accepted, never seen from SUMIT)
EXCERPT_CHARS = 300  # of a refused body, kept in crm_inbox for a person to read

# SUMIT's TriggerType names (subscribe) and the Type a trigger carries, as crmsync names them.
ACTIONS = {"create": "create", "update": "update", "createorupdate": "update", "archive": "archive",
           "delete": "delete"}
TRIGGER_TYPES = ("CreateOrUpdate", "Create", "Update", "Archive", "Delete")
GONE_ACTIONS = frozenset({"archive", "delete"})  # the entity left the folder's listing


class MalformedTrigger(ValueError):
    """A body with the right token that is not a trigger crmsync can read; says why."""


@dataclass(frozen=True)
class TriggerEvent:
    entity_id: str  # the CRM id, as sumit_customers.sumit_customer_id holds it
    action: str  # create, update, archive, delete, or "change" (a Type crmsync does not know)
    folder: str | None
    shape: str  # "object" or "array": which of SUMIT's two shapes it came in


def parse_body(body: bytes, content_type: str | None) -> list[TriggerEvent]:
    """The triggers in one request body: a form post (field ``json``) or a JSON body.

    Raises MalformedTrigger with the reason when the body holds no readable trigger; one
    unreadable trigger in a list refuses the whole body (nothing of it is stored).
    """
    if len(body) > MAX_BODY_BYTES:
        raise MalformedTrigger(f"the body is {len(body):,} bytes, more than {MAX_BODY_BYTES:,}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedTrigger("the body is not UTF-8 text") from None
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded" or (kind != "application/json" and _looks_like_form(text)):
        fields = parse_qs(text, keep_blank_values=True)
        values = fields.get("json")
        if not values:
            raise MalformedTrigger("the form post has no field 'json' (SUMIT puts the trigger there)")
        text = values[-1]
    try:
        document = json.loads(text)
    except ValueError:
        raise MalformedTrigger("the trigger is not JSON") from None
    return parse_document(document)


def parse_document(document: Any) -> list[TriggerEvent]:
    """One trigger (an object or a positional array), or a list of triggers."""
    if isinstance(document, dict):
        return [_from_object(document)]
    if isinstance(document, list) and document and all(isinstance(d, (dict, list)) for d in document):
        if len(document) > MAX_EVENTS_PER_BODY:
            raise MalformedTrigger(f"the body holds {len(document)} triggers, more than {MAX_EVENTS_PER_BODY}")
        return [_from_object(d) if isinstance(d, dict) else _from_array(d) for d in document]
    if isinstance(document, list):
        return [_from_array(document)]
    raise MalformedTrigger(f"the trigger is a JSON {type(document).__name__}, not an object or an array")


def _from_object(trigger: dict[str, Any]) -> TriggerEvent:
    keys = {str(k).lower(): v for k, v in trigger.items()}
    entity = keys.get("entityid", keys.get("id"))
    return TriggerEvent(_entity_id(entity), _action(keys.get("type", keys.get("action"))),
                        _folder(keys.get("folder", keys.get("folderid"))), "object")


def _from_array(trigger: list[Any]) -> TriggerEvent:
    if not 3 <= len(trigger) <= 4:
        raise MalformedTrigger(f"a positional trigger has {len(trigger)} items; SUMIT sends "
                               "[FolderID, EntityID, Action, Properties]")
    return TriggerEvent(_entity_id(trigger[1]), _action(trigger[2]), _folder(trigger[0]), "array")


def _entity_id(value: Any) -> str:
    if isinstance(value, (dict, list, bool)) or value is None:
        raise MalformedTrigger("the trigger names no EntityID")
    try:
        entity_id = clean_id(value)
    except InvalidRecord as exc:
        raise MalformedTrigger(f"the trigger's EntityID is not an id ({exc})") from None
    if entity_id is None:
        raise MalformedTrigger("the trigger names no EntityID")
    return entity_id


def _action(value: Any) -> str:
    """crmsync's name for a trigger's Type; a Type it does not know is a "change" (read fresh)."""
    if not isinstance(value, str):
        return "change"
    return ACTIONS.get(value.strip().lower().replace(" ", "").replace("_", ""), "change")


def _folder(value: Any) -> str | None:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return storable(str(value)).strip()[:200] or None  # no NUL or lone surrogate: PostgreSQL holds it
    return None


def _looks_like_form(text: str) -> bool:
    return text.startswith("json=")


def excerpt(body: bytes) -> str:
    """The start of a refused body, as text a person can read (never more than EXCERPT_CHARS)."""
    return storable(body[:EXCERPT_CHARS * 4].decode("utf-8", errors="replace"))[:EXCERPT_CHARS]


def receiver_url(public_base_url: str, token: str) -> str:
    """The URL SUMIT posts triggers to: the api-server's public address, the console's prefix."""
    return f"{public_base_url.rstrip('/')}/crmsync/webhooks/sumit/{token}"


def hide_token(url: str) -> str:
    """A receiver URL as logs and tables may show it: its token replaced by ``***``."""
    head, sep, _ = url.rpartition("/webhooks/sumit/")
    return f"{head}{sep}***" if sep else url
