"""``SandboxState``: everything one sandbox holds (customers, fault knobs, request log,
trigger subscriptions) behind one lock, and the dispatch of an API call to its profile's endpoint.

A facade: the customer store (``customers``), the knobs (``faults``), the request log
(``requestlog``), the triggers (``triggers``) and the endpoints of both profiles (``guide``,
``rest``) live in their own modules; this class composes them, so tests and the HTTP side have
one object to talk to.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from crmsync.sandbox import guide, rest, triggers
from crmsync.sandbox.base import (INVALID_CREDENTIALS, credentials_ok, envelope_status, failure_envelope,
                                  success_envelope)
from crmsync.sandbox.customers import ID_KEY, CustomerStore, is_blank
from crmsync.sandbox.faults import (FOLDER_PROPERTIES, TRIGGER_SHAPE, FaultKnobs, SandboxInputError, normalize_knobs,
                                    whole_number)
from crmsync.sandbox.requestlog import RequestLog, count_by_path
from crmsync.sandbox.triggers import Change, TriggerHub

API_PATHS = guide.PATHS + rest.PATHS


class SandboxState:
    """Customers, raw records, fault knobs, the request log and triggers, behind one lock.

    Every public method takes the lock itself, so tests may call them directly from another
    thread while the server runs. Stored customer dicts are never mutated (an update stores
    a new dict), so a page can be JSON-encoded outside the lock without racing an update.

    The methods that change customers the way someone working in the CRM would (``upsert``,
    ``add_customers``, ``edit``, ``delete``, ``archive``: what the control API calls) post
    triggers to the subscribed URLs; ``reset``, ``add_raw`` and the API's own endpoints do not
    (triggers.py says why).
    """

    def __init__(self, *, company_id: int = 1000, api_key: str = "sandbox-key", status_style: str = "string",
                 list_shape: str = "top", numeric_ids: bool = False, max_page_size: int = 1000,
                 customers_folder: str = "customers", keep_sent_bodies: bool = False, **knobs: Any):
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("api_key must be a non-empty string")
        if status_style not in guide.STATUS_STYLES:
            raise ValueError(f"status_style must be 'string' or 'numeric', not {status_style!r}")
        if list_shape not in guide.LIST_SHAPES:
            raise ValueError(f"list_shape must be 'top' or 'data', not {list_shape!r}")
        self.lock = threading.RLock()
        self.company_id = int(company_id)
        self.api_key = api_key
        self.status_style = status_style
        self.list_shape = list_shape
        self.store = CustomerStore(numeric_ids=numeric_ids)
        self.max_page_size = whole_number("max_page_size", max_page_size, minimum=1)
        self.customers_folder = str(customers_folder)  # rest profile: the folder listentities serves
        self.request_log = RequestLog(api_key)
        self.faults = FaultKnobs(knobs)
        # Tests only: every API request body exactly as received, key and all, so a secret scan
        # can check what the client really sent (the request log is redacted).
        self.keep_sent_bodies = bool(keep_sent_bodies)
        self.sent_bodies: list[dict[str, Any]] = []
        self.triggers = TriggerHub()

    # -- customers --------------------------------------------------------------------------

    @property
    def customers(self) -> dict[str, dict[str, Any]]:
        """str(CustomerID) -> stored record (read it under ``lock`` while the server runs)."""
        return self.store.customers

    def upsert(self, record: dict[str, Any]) -> Any:
        """Store one customer (replacing the one with its CustomerID, if any); return its id."""
        return self.add_customers([record])[0]

    def add_customers(self, records: Iterable[dict[str, Any]]) -> list[Any]:
        """Store many customers in one lock hold (seeding a million must stay fast); return their
        ids. Triggers: Create for a new customer, Update for one whose record changed (or that
        was archived), nothing for one stored again unchanged."""
        with self.lock:
            if not self.triggers.active():  # the fast path: nobody listens
                return [self.store.store(record) for record in records]
            ids: list[Any] = []
            before: dict[str, tuple[dict[str, Any] | None, bool]] = {}  # key -> as it was before this call
            try:
                for record in records:
                    customer_id, previous, was_archived = self.store.replace(record)
                    ids.append(customer_id)
                    before.setdefault(str(customer_id), (previous, was_archived))
            finally:  # a bad record stops the call; the ones stored before it still changed
                changes = []
                for key, (previous, was_archived) in before.items():
                    now = self.store.customers[key]
                    if previous is None:
                        changes.append(Change("Create", key, now))
                    elif was_archived or previous != now:
                        changes.append(Change("Update", key, now))
                self._post(changes)
            return ids

    def edit(self, changes: Iterable[Any]) -> int:
        """Merge each change's keys into the customer its ``CustomerID`` names (the keys it leaves
        out stay); all or nothing: an unknown id changes nothing. Posts Update triggers; return
        how many customers really changed (an edit to the values they already have is none)."""
        with self.lock:
            edits: list[tuple[str, dict[str, Any]]] = []
            for change in changes:
                if not isinstance(change, dict) or is_blank(change.get(ID_KEY)):
                    raise SandboxInputError(f"each change must be a JSON object with the CustomerID of the customer "
                                            f"to edit, not {change!r}")
                key = str(change[ID_KEY])
                if key not in self.store.customers:
                    raise SandboxInputError(f"customer {change[ID_KEY]} does not exist; nothing was edited")
                edits.append((key, {k: v for k, v in change.items() if k != ID_KEY}))
            before: dict[str, dict[str, Any] | None] = {}
            for key, fields in edits:
                before.setdefault(key, self.store.merge(key, fields))
            updates = [Change("Update", key, self.store.customers[key]) for key, previous in before.items()
                       if self.store.customers[key] != previous]
            self._post(updates)
            return len(updates)

    def delete(self, ids: Iterable[Any]) -> int:
        """Remove customers by id (unknown ids are ignored); return how many were removed.
        Posts a Delete trigger for each."""
        with self.lock:
            removed = self.store.remove(ids)
            self._post([Change("Delete", key, record) for key, record in removed.items()])
            return len(removed)

    def archive(self, ids: Iterable[Any]) -> int:
        """Archive customers by id: listings leave them out, getentity still finds them (unknown
        and already archived ids are ignored). Posts an Archive trigger for each; return how many."""
        with self.lock:
            keys = self.store.archive(ids)
            self._post([Change("Archive", key, self.store.customers[key]) for key in keys])
            return len(keys)

    def archived_ids(self) -> list[Any]:
        with self.lock:
            return [self.store.customers[key][ID_KEY] for key in sorted(self.store.archived)]

    def _post(self, changes: list[Change]) -> None:
        """Queue the triggers of ``changes`` (under ``lock``: their properties are the change's)."""
        if changes and self.triggers.active():
            self.triggers.post(changes, folder=self.customers_folder, properties=self.knobs.get(FOLDER_PROPERTIES),
                               shape=self.knobs.get(TRIGGER_SHAPE, "object"))

    def add_raw(self, records: Iterable[Any]) -> int:
        """Append records ``getlist`` returns verbatim after the customers, to test hostile
        input; return how many raw records there are now."""
        with self.lock:
            self.store.raw.extend(records)
            return len(self.store.raw)

    def reset(self, customers: Iterable[dict[str, Any]] = ()) -> list[Any]:
        """Back to a fresh start: no customers, raw records, log or trigger deliveries (queued
        ones are dropped), start-time knobs; then seed, posting no triggers. Subscriptions stay:
        they are the account's configuration, not its data."""
        with self.lock:
            self.store.clear()
            self.request_log.clear()
            self.sent_bodies = []
            self.faults.reset()
            self.triggers.clear(subscriptions=False)
            return [self.store.store(record) for record in customers]

    def all_customers(self) -> list[dict[str, Any]]:
        """The customers listings show (archived ones are left out, as listings leave them out)."""
        with self.lock:
            return self.store.listed()

    # -- triggers ---------------------------------------------------------------------------

    def triggers_report(self) -> dict[str, Any]:
        """Subscriptions (URLs masked), the delivery log and how many posts are still queued."""
        return self.triggers.report()

    def clear_triggers(self) -> int:
        """Remove every subscription, the queued posts and the delivery log; return how many
        subscriptions there were."""
        return self.triggers.clear(subscriptions=True)

    def close(self) -> None:
        """Stop delivering triggers (the server is stopping)."""
        self.triggers.stop()

    # -- knobs ------------------------------------------------------------------------------

    @property
    def knobs(self) -> dict[str, Any]:
        """The knobs in force (read them under ``lock``; ``current_knobs`` is a safe copy)."""
        return self.faults.current

    def set_knobs(self, knobs: dict[str, Any]) -> dict[str, Any]:
        """Merge ``knobs`` into the current ones (``"reset": true`` first returns to the start-time
        knobs; a ``None`` value removes a knob); return the resulting knobs."""
        knobs = dict(knobs)
        reset = knobs.pop("reset", False)
        normalized = normalize_knobs(knobs)
        with self.lock:
            if reset:
                self.faults.reset()
            self.faults.merge(normalized)
            return self.current_knobs()

    def current_knobs(self) -> dict[str, Any]:
        """A deep copy: counted faults keep changing under the lock."""
        with self.lock:
            return self.faults.snapshot()

    def take_fault(self, path: str) -> tuple[str, dict[str, Any]] | None:
        """Consume and return the first pending counted fault that applies to ``path``."""
        with self.lock:
            return self.faults.take(path)

    def latency_seconds(self) -> float:
        with self.lock:
            return self.faults.latency_seconds()

    # -- request log ------------------------------------------------------------------------

    @property
    def log(self) -> list[dict[str, Any]]:
        """The request log itself (``requests`` is a safe copy)."""
        return self.request_log.entries

    def scrub(self, text: str) -> str:
        """``text`` with the configured API key and every subscribed trigger URL's path replaced:
        the last guard before any output."""
        return self.triggers.scrub(self.request_log.scrub(text))

    def redact(self, value: Any) -> Any:
        """A deep copy of a request body fit for logs, every API key in it replaced by ``***``."""
        return self.request_log.redact(value)

    def record_request(self, path: str, status: int, body: Any) -> None:
        """Log one API request; status 0 means the connection was dropped without an answer."""
        entry = self.request_log.entry(path, status, body)
        with self.lock:
            self.request_log.entries.append(entry)

    def requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.request_log.entries)

    def record_sent(self, path: str, raw: bytes) -> None:
        """Keep one API request body as received (only with ``keep_sent_bodies``)."""
        if self.keep_sent_bodies:
            with self.lock:
                self.sent_bodies.append({"path": path, "body": raw.decode("utf-8", "replace")})

    def sent(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.sent_bodies)

    def stats(self) -> dict[str, int]:
        """How many API requests each path received since the last reset."""
        return count_by_path(self.requests())

    # -- envelopes --------------------------------------------------------------------------

    def status(self, ok: bool, numeric: bool = False) -> Any:
        """``numeric``: the rest profile, which always says 0/1 as SUMIT's published API does."""
        return envelope_status(ok, "numeric" if numeric else self.status_style)

    def failure(self, message: str, numeric: bool = False) -> dict[str, Any]:
        return failure_envelope(message, "numeric" if numeric else self.status_style)

    def success(self, data: dict[str, Any] | None = None, numeric: bool = False, **top: Any) -> dict[str, Any]:
        return success_envelope(data, "numeric" if numeric else self.status_style, **top)

    # -- the API ----------------------------------------------------------------------------

    def credentials_ok(self, body: dict[str, Any]) -> bool:
        return credentials_ok(body, self.company_id, self.api_key)

    def answer(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """HTTP status and envelope for an API call that no fault intercepted."""
        if path not in API_PATHS:
            return 404, self.failure(f"Unknown endpoint {path}")
        if not self.credentials_ok(body):
            return 200, self.failure(INVALID_CREDENTIALS, numeric=path in rest.PATHS)
        if path == guide.LIST_PATH:
            return 200, self.get_list(body)
        if path == guide.UPDATE_PATH:
            return 200, self.update(body)
        if path == rest.LIST_PATH:
            return 200, self.list_entities(body)
        if path == rest.GET_ENTITY_PATH:
            return 200, rest.get_entity(self, body)
        if path == rest.SUBSCRIBE_PATH:
            return 200, triggers.subscribe(self, body)
        if path == rest.UNSUBSCRIBE_PATH:
            return 200, triggers.unsubscribe(self, body)
        return 200, self.save_details(body, create=path == rest.CREATE_PATH)

    def get_list(self, body: dict[str, Any]) -> dict[str, Any]:
        return guide.get_list(self, body)

    def update(self, body: dict[str, Any]) -> dict[str, Any]:
        return guide.update(self, body)

    def entity(self, record: dict[str, Any]) -> dict[str, Any]:
        """A stored customer as the rest profile's listentities shows it."""
        return rest.entity(record, self.customers_folder)

    def list_entities(self, body: dict[str, Any]) -> dict[str, Any]:
        return rest.list_entities(self, body)

    def save_details(self, body: dict[str, Any], *, create: bool) -> dict[str, Any]:
        return rest.save_details(self, body, create=create)
