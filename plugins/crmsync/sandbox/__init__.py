"""The SUMIT sandbox: a real HTTP (or HTTPS) server imitating the SUMIT API in both profiles
crmsync speaks, ``guide`` and ``rest``, over one store of customers, for tests, demos and
trying crmsync without a SUMIT account.

Run it with ``python -m crmsync.sandbox --port 8765`` (``--help`` lists the flags), in
process with ``SandboxServer``, or as a subprocess with ``run_sandbox_process``. With
``--tls-cert PATH --tls-key PATH`` (``SandboxServer(tls_cert=..., tls_key=...)``; PEM files,
the key unencrypted) it serves HTTPS and its URL starts with ``https://``; each connection's
handshake runs in its own thread, so a client refusing the certificate costs one stderr line
(``TLS handshake with HOST failed: REASON``), never the server. ``crmsync.testing.tls``
makes a throwaway CA and server certificate for tests.

API (every call ``POST`` with JSON and ``"Credentials": {"CompanyID", "APIKey"}``):

- guide profile (Status ``"Success"``/``"GeneralError"``, or 0/1 with ``--status-style
  numeric``): ``/website/customers/getlist/`` (optional ``Paging``: ``StartIndex``,
  ``PageSize``) and ``/website/customers/update/`` (``Customer``; creates when it has no
  ``CustomerID``).
- rest profile (Status always 0/1): ``/crm/data/listentities/`` (``Folder``, the
  ``--customers-folder``; ``Paging``) lists customers as entities whose property values are
  lists (``Customers_FullName``, ...); ``/accounting/customers/create/`` and ``update/``
  take ``Details`` (``ID`` to update; ``ExternalIdentifier`` with ``SearchMode`` 2 finds the
  customer an earlier create made) and answer ``Data.CustomerID``; ``/crm/data/getentity/``
  (``EntityID``, ``Folder``?) answers ``Data.Entity``, the customer as listentities shows it
  (an archived one too, marked ``"IsArchived": true``; else ``Entity <id> was not found``).
- triggers (rest profile, Status 0/1; triggers.py): ``/triggers/triggers/subscribe/`` (``URL``
  http(s), ``Folder`` the customers folder, ``View``?, ``TriggerType`` CreateOrUpdate, Create,
  Update, Archive or Delete, any case; the same URL and type again replaces it) and
  ``/triggers/triggers/unsubscribe/`` (``URL``) -> ``Data.Removed``. Customers changed through
  the control API (add, edit, archive, delete; not reset, raw or the API's own pushes) post one
  trigger each to every matching URL, asynchronously and in order: a form post whose field
  ``json`` holds ``{"Folder", "Type", "EntityID"}`` or, with the ``trigger_shape`` knob,
  ``[Folder, EntityID, Type, {properties}]``; 5 s timeout, 3 tries 0.5 s apart on no
  connection, 5xx or 429. No log shows a trigger URL's path (it holds the receiver's secret).

Control API (no credentials, JSON; ``SandboxControl`` wraps it):

- ``POST /_sandbox/reset`` ``{"customers": [...]?}``: empty customers, raw records, the
  request log and the trigger deliveries, knobs back to the start-time ones, then seed (no
  triggers) -> ``{"ids": [...]}``; trigger subscriptions stay
- ``POST /_sandbox/customers`` ``{"customers": [...]}``: upsert by CustomerID (an archived one
  comes back) -> ``{"ids": [...]}``; triggers Create, or Update when the record changed
- ``POST /_sandbox/customers/edit`` ``{"changes": [{"CustomerID", key: value...}]}``: merge the
  keys into existing customers (an unknown id: HTTP 400, nothing changed) -> ``{"edited": n}``
  (the customers that changed); triggers Update
- ``GET /_sandbox/customers`` -> ``{"customers": [...], "archived": [ids]}`` (raw and archived
  records are not in ``customers``)
- ``POST /_sandbox/customers/delete`` ``{"ids": [...]}`` -> ``{"deleted": n}``; triggers Delete
- ``POST /_sandbox/customers/archive`` ``{"ids": [...]}`` -> ``{"archived": n}``: listings leave
  them out, getentity still finds them; triggers Archive
- ``GET /_sandbox/triggers`` -> ``{"subscriptions": [{"Folder", "View", "TriggerType", "URL"
  (last path segment ``***``), "url_sha256"}], "deliveries": [{"entity_id", "type", "shape",
  "status" (0: no connection), "tries", "at", "url" (scheme://host:port), "url_sha256"}],
  "pending": n}``; ``POST /_sandbox/triggers/clear``: no subscriptions, deliveries or queued posts
- ``POST /_sandbox/raw`` ``{"records": [...]}``: both listings return them verbatim after the customers
- ``POST /_sandbox/faults`` ``{knob: value, ...}`` merges knobs (``"reset": true`` first
  restores the start-time ones, ``null`` removes one); ``GET /_sandbox/faults`` shows them
- ``GET /_sandbox/requests`` -> ``{"requests": [{"path", "status", "body"}]}`` (status 0:
  dropped; the API key is ``***``); ``GET /_sandbox/stats`` -> ``{path: count}``
- ``GET /_sandbox/sent`` -> ``{"sent": [{"path", "body"}]}``: every API request body as
  received, key included, only with ``--keep-sent-bodies`` (tests that scan what a client
  really sent); empty otherwise

An update changes the keys it sends and keeps the stored value of every key it leaves out
(``Name`` included: only a create needs one). SUMIT does not document what its updates do with
an absent key; crmsync's field rules rely on this behaviour (docs/field-rules.md).

Knobs: ``latency_ms``, ``ignore_paging``, ``ignore_paging_says_more``, ``reject_names``,
``reject_customer_ids``, ``rate_limit`` (below), ``trigger_shape`` (``object``, the default,
``array``, or ``alternate``: object and array in turn; ``--trigger-shape``),
``folder_properties`` (rest profile: the list of properties the customers folder has; a
create or update naming another in ``Properties`` is refused, ``Property 'X' does not exist
in folder 'customers'``, and listentities, getentity and array triggers show no other; null:
any), and the counted faults, each consumed by one
API request whose path contains ``endpoint`` (any request when null), before credentials are
checked:
``fail_next {"count", "status": 503, "retry_after": null, "body": "json"|"html", "endpoint"}``,
``malformed_next {"count", "kind": "html"|"truncated"|"not_json"|"missing_customers", "endpoint"}``,
``drop_next {"count", "endpoint"}`` (closes the socket unanswered),
``drop_after_next {"count", "endpoint"}`` (carries the request out, then closes unanswered), and
``hang_next {"count", "seconds": 5, "endpoint"}`` (then answers normally).

``rate_limit`` (``--rate-limit N``): at most N API requests per second (a positive number;
control calls do not count; ``null`` removes the limit). A token bucket holding one second's
worth, full whenever the knob is set: N requests pass at once, then N per second. A request
beyond it is answered HTTP 429 with ``Retry-After: 1`` (a JSON body, as a gateway sends it;
after ``latency_ms``, like every answer): it is not carried out, takes no counted fault, and is
logged with status 429.

Modules: ``state`` (``SandboxState``, the facade holding it all behind one lock),
``customers`` (the store, paging, archiving), ``faults`` (knobs, counted faults, canned faulty
answers), ``base`` (the envelope and credentials both profiles share), ``guide`` and
``rest`` (each profile's endpoints), ``triggers`` (subscriptions, delivery, their secrecy),
``requestlog`` (the log and key redaction),
``encoding`` (JSON in and out), ``server`` (HTTP(S), the control API, ``SandboxServer``),
``control`` (client and subprocess launcher), ``data`` (demo customers).
"""

from crmsync.sandbox.control import SandboxControl, SandboxControlError, run_sandbox_process
from crmsync.sandbox.data import demo_customers
from crmsync.sandbox.server import SandboxServer
from crmsync.sandbox.state import SandboxState

__all__ = ["SandboxControl", "SandboxControlError", "SandboxServer", "SandboxState", "demo_customers",
           "run_sandbox_process"]
