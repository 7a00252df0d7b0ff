"""The sandbox's triggers (SUMIT's webhooks): subscriptions made through the rest API, and the
posts that tell each subscribed URL that a customer changed.

What posts a trigger: a customer changed through the control API (``SandboxState``'s
``add_customers``, ``edit``, ``delete`` and ``archive``), that is by "someone working in the
CRM". Changes made through the API itself (crmsync's pushes to the update and create
endpoints) post none, on purpose: a test then sees exactly the changes it made in the CRM,
not our client's own writes echoed back. A real SUMIT may well echo them, so a receiver must
tolerate a trigger for a customer it has just pushed. ``reset`` and ``raw`` post none either.

Delivery is asynchronous, as SUMIT's is: a control call queues its posts and returns; one
background thread sends them in order, each with a 5 s timeout and up to 3 tries 0.5 s apart
when the receiver cannot be reached or answers 5xx or 429 (any other answer is final).

Shapes (the ``trigger_shape`` knob), both met in public integrations, both a form post
(``application/x-www-form-urlencoded``) whose one field ``json`` holds JSON text:

- ``object`` (the default): ``{"Folder": ..., "Type": "Create|Update|Delete|Archive", "EntityID": ...}``
- ``array``: ``[Folder, EntityID, Type, {properties as listentities shows them}]`` (``{}`` for a Delete)
- ``alternate``: object, array, object, ... so one test can check a receiver takes both.

Secrets: SUMIT documents no signature scheme, so a receiver's URL carries a secret token in
its path. Nothing the sandbox prints or logs shows that path: deliveries and log lines name
``scheme://host:port`` only, the subscription list masks the URL's last path segment (with a
SHA-256 of the whole URL to match it by), request bodies are logged with the URL's origin
only, and every printed line is scrubbed of the subscribed URLs as a last guard.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import queue
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from crmsync.sandbox.rest import entity

if TYPE_CHECKING:
    from crmsync.sandbox.base import Backend

TRIGGER_TYPES = ("CreateOrUpdate", "Create", "Update", "Archive", "Delete")
DELIVERY_TIMEOUT_SECONDS = 5.0
DELIVERY_TRIES = 3
RETRY_PAUSE_SECONDS = 0.5
FORM_TYPE = "application/x-www-form-urlencoded"
MASK = "***"
_MIN_SCRUBBED_TOKEN = 8  # a shorter last path segment ("hook") is a word, not a secret worth scrubbing


@dataclass(frozen=True)
class Change:
    """One customer changed in the CRM: what a trigger reports."""

    type: str  # Create, Update, Delete or Archive
    key: str  # str(CustomerID)
    record: dict[str, Any]  # the customer as stored after the change (as it was, for a Delete)


@dataclass(frozen=True)
class _Post:
    """One trigger on its way to one subscribed URL."""

    generation: int  # a reset or clear drops the posts queued before it
    url: str
    entity_id: Any
    type: str
    shape: str
    form: bytes


# -- URLs and their secrets ---------------------------------------------------------------------


def valid_url(url: Any) -> bool:
    """Whether ``url`` is an absolute http:// or https:// URL a trigger can be posted to."""
    if not isinstance(url, str) or not url or any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def origin(url: str) -> str:
    """``scheme://host:port`` of a URL: what logs may show of it (no path, no user, no query)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "?", parts.port
    except ValueError:
        return "(not a URL)"
    scheme = parts.scheme.lower()
    if ":" in host:
        host = f"[{host}]"  # IPv6
    return f"{scheme}://{host}:{port or (443 if scheme == 'https' else 80)}"


def _last_segment(url: str) -> str:
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


def masked_url(url: str) -> str:
    """The URL with its last path segment (where the secret token sits) replaced by ``***``,
    and its query, if any, too: what the subscription list shows."""
    parts = urlsplit(url)
    path = parts.path
    token = _last_segment(url)
    if token:
        cut = path.rstrip("/")
        path = cut[: len(cut) - len(token)] + MASK + path[len(cut):]
    return origin(url) + path + ("?" + MASK if parts.query else "")


def url_sha256(url: str) -> str:
    """How a test matches a subscription's URL without printing it."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()


def _trigger_type(value: Any) -> str | None:
    """The canonical spelling of a TriggerType given in any case; None when it is none of them."""
    if isinstance(value, str):
        for known in TRIGGER_TYPES:
            if value.strip().lower() == known.lower():
                return known
    return None


def _matches(trigger_type: str, change_type: str) -> bool:
    return trigger_type == change_type or (trigger_type == "CreateOrUpdate" and change_type in ("Create", "Update"))


def _entity_id(key: str) -> Any:
    """The id as a trigger names it: a number when it is one, as SUMIT's ids are."""
    return int(key) if key.isascii() and key.isdigit() else key


def _json_text(payload: Any) -> str:
    """JSON text for the form field; text holding a lone surrogate has no UTF-8 form, so then
    every non-ASCII character goes out as a ``\\uXXXX`` escape instead."""
    text = json.dumps(payload, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(payload)
    return text


def _stderr(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


# -- the API endpoints --------------------------------------------------------------------------


def subscribe(state: Backend, body: dict[str, Any]) -> dict[str, Any]:
    """``/triggers/triggers/subscribe/``: post ``TriggerType`` changes of ``Folder`` to ``URL``.

    ``View`` is kept but scopes nothing: the sandbox has no views, every customer is in all of
    them. The same URL and TriggerType again replaces that subscription.
    """
    url = body.get("URL")
    if not valid_url(url):
        return state.failure("URL must be an http(s) URL", numeric=True)
    folder = body.get("Folder")
    if str(folder) != state.customers_folder:
        return state.failure(f"Folder {folder!r} not found", numeric=True)
    trigger_type = _trigger_type(body.get("TriggerType"))
    if trigger_type is None:
        return state.failure(f"TriggerType must be one of {', '.join(TRIGGER_TYPES)}, not "
                             f"{body.get('TriggerType')!r}", numeric=True)
    state.triggers.subscribe(url, folder, body.get("View"), trigger_type)
    return state.success({}, numeric=True)


def unsubscribe(state: Backend, body: dict[str, Any]) -> dict[str, Any]:
    """``/triggers/triggers/unsubscribe/``: remove every subscription of ``URL`` (none is fine)."""
    url = body.get("URL")
    if not isinstance(url, str) or not url:
        return state.failure("URL is required: the URL that was subscribed", numeric=True)
    return state.success({"Removed": state.triggers.unsubscribe(url)}, numeric=True)


# -- subscriptions and delivery -----------------------------------------------------------------


class TriggerHub:
    """The subscriptions, the delivery queue and its thread, and the delivery log.

    Its own lock guards subscriptions, log and queue; ``SandboxState`` calls ``post`` under its
    lock (so a trigger's properties are those of the change), never the other way round, and
    the delivery thread takes only this one. ``emit`` writes a log line (the server sets its own,
    which scrubs the line).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.subscriptions: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.pending = 0  # queued and not yet delivered (or given up on)
        self.generation = 0
        self.turn = 0  # the alternate shape: even posts are objects, odd ones arrays
        self.emit: Callable[[str], None] = _stderr
        self._queue: queue.Queue[_Post | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        # What scrub replaces: every URL ever subscribed (by its masked form) and its token.
        self._urls: dict[str, str] = {}
        self._tokens: frozenset[str] = frozenset()

    def active(self) -> bool:
        """Whether anything is subscribed (when not, a change costs nothing)."""
        return bool(self.subscriptions)

    def subscribe(self, url: str, folder: Any, view: Any, trigger_type: str) -> None:
        with self.lock:
            self.subscriptions = [s for s in self.subscriptions
                                  if not (s["URL"] == url and s["TriggerType"] == trigger_type)]
            self.subscriptions.append({"Folder": folder, "View": view, "TriggerType": trigger_type, "URL": url})
            self._remember(url)

    def unsubscribe(self, url: str) -> int:
        with self.lock:
            kept = [s for s in self.subscriptions if s["URL"] != url]
            removed = len(self.subscriptions) - len(kept)
            self.subscriptions = kept
            return removed

    def _remember(self, url: str) -> None:
        """Scrub this URL (and its token) from every line printed from now on."""
        self._urls = {**self._urls, url: masked_url(url)}  # replaced, not changed: scrub reads it unlocked
        token = _last_segment(url)
        if len(token) >= _MIN_SCRUBBED_TOKEN:
            self._tokens = self._tokens | {token}

    def scrub(self, text: str) -> str:
        """``text`` without any subscribed URL's path: the last guard before a line is printed."""
        for url, masked in self._urls.items():  # whole URLs first, so they keep their origin
            text = text.replace(url, masked)
        for token in self._tokens:
            text = text.replace(token, MASK)
        return text

    def post(self, changes: list[Change], *, folder: str, properties: list[str] | None, shape: str) -> int:
        """Queue one post per change and subscription whose TriggerType matches it; return how many."""
        queued = 0
        with self.lock:
            for change in changes:
                for subscription in self.subscriptions:
                    if not _matches(subscription["TriggerType"], change.type):
                        continue
                    chosen = shape
                    if shape == "alternate":
                        chosen = ("object", "array")[self.turn % 2]
                        self.turn += 1
                    form = urlencode({"json": _json_text(_payload(change, folder, properties, chosen))})
                    self._queue.put(_Post(self.generation, subscription["URL"], _entity_id(change.key), change.type,
                                          chosen, form.encode("ascii")))
                    queued += 1
            self.pending += queued
            if queued and self._thread is None and not self._stopping.is_set():
                self._thread = threading.Thread(target=self._deliver_all, name="sumit-sandbox-triggers", daemon=True)
                self._thread.start()
        return queued

    def clear(self, *, subscriptions: bool) -> int:
        """Drop the queued posts and the delivery log (and, with ``subscriptions``, every
        subscription); return how many subscriptions were removed."""
        with self.lock:
            removed = len(self.subscriptions) if subscriptions else 0
            if subscriptions:
                self.subscriptions = []
            self.deliveries = []
            self.pending = 0
            self.generation += 1
            self.turn = 0
            return removed

    def report(self) -> dict[str, Any]:
        """What ``GET /_sandbox/triggers`` answers: no URL path in it but masked ones."""
        with self.lock:
            subscriptions = [{**s, "URL": masked_url(s["URL"]), "url_sha256": url_sha256(s["URL"])}
                             for s in self.subscriptions]
            return {"subscriptions": subscriptions, "deliveries": [dict(d) for d in self.deliveries],
                    "pending": self.pending}

    def stop(self) -> None:
        """End the delivery thread (a post under way gets up to a second to finish)."""
        self._stopping.set()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=1)

    # -- the delivery thread ------------------------------------------------------------------

    def _deliver_all(self) -> None:
        while True:
            post = self._queue.get()
            if post is None or self._stopping.is_set():
                return
            if post.generation != self.generation:
                continue  # queued before a reset or clear
            try:
                status, tries = self._deliver(post)
            except Exception as error:  # noqa: BLE001 - a sandbox bug must not stop the deliveries after it
                self.emit(f"trigger {post.type} {post.entity_id} -> {origin(post.url)}: sandbox error: "
                          f"{type(error).__name__}")
                status, tries = 0, 1
            entry = {"entity_id": post.entity_id, "type": post.type, "shape": post.shape, "status": status,
                     "tries": tries, "at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                     "url": origin(post.url), "url_sha256": url_sha256(post.url)}
            outcome = f"HTTP {status}" if status else "could not connect"
            # The line first: once a delivery is off the pending count, its line exists (tests read it at once).
            self.emit(f"trigger {post.type} {post.entity_id} -> {origin(post.url)} ({post.shape}): {outcome}, "
                      f"{tries} {'try' if tries == 1 else 'tries'}")
            with self.lock:
                if post.generation == self.generation:
                    self.deliveries.append(entry)
                    self.pending -= 1

    def _deliver(self, post: _Post) -> tuple[int, int]:
        """(the last HTTP status, 0 when the receiver could not be reached; how many tries)."""
        status = 0
        for attempt in range(1, DELIVERY_TRIES + 1):
            status = _send(post)
            if status and status < 500 and status != 429:
                return status, attempt  # delivered, or refused for good (4xx)
            if attempt < DELIVERY_TRIES and self._stopping.wait(RETRY_PAUSE_SECONDS):
                return status, attempt  # the sandbox is stopping
        return status, DELIVERY_TRIES


def _payload(change: Change, folder: str, properties: list[str] | None, shape: str) -> Any:
    entity_id = _entity_id(change.key)
    if shape == "object":
        return {"Folder": folder, "Type": change.type, "EntityID": entity_id}
    shown: dict[str, Any] = {}
    if change.type != "Delete":
        shown = {k: v for k, v in entity(change.record, folder, properties).items() if k not in ("ID", "Folder")}
    return [folder, entity_id, change.type, shown]


def _send(post: _Post) -> int:
    """One try: the receiver's HTTP status, 0 when it could not be reached or did not answer."""
    parts = urlsplit(post.url)
    if parts.scheme.lower() == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=DELIVERY_TIMEOUT_SECONDS, context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=DELIVERY_TIMEOUT_SECONDS)
    target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    try:
        connection.request("POST", target, body=post.form,
                           headers={"Content-Type": FORM_TYPE, "User-Agent": "SUMIT-sandbox-triggers"})
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):  # refused, reset, timed out, not HTTP
        return 0
    finally:
        connection.close()
