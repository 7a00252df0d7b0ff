"""The SUMIT sandbox: a real HTTP server imitating SUMIT's ``guide`` profile API, for tests,
demos and trying crmsync without a SUMIT account.

Run it with ``python -m crmsync.sandbox --port 8765`` (``--help`` lists the flags), in
process with ``SandboxServer``, or as a subprocess with ``run_sandbox_process``.

API (every call ``POST`` with JSON and ``"Credentials": {"CompanyID", "APIKey"}``):
``/website/customers/getlist/`` (optional ``Paging``: ``StartIndex``, ``PageSize``) and
``/website/customers/update/`` (``Customer``; creates when it has no ``CustomerID``).

Control API (no credentials, JSON; ``SandboxControl`` wraps it):

- ``POST /_sandbox/reset`` ``{"customers": [...]?}``: empty customers, raw records and the
  request log, knobs back to the start-time ones, then seed -> ``{"ids": [...]}``
- ``POST /_sandbox/customers`` ``{"customers": [...]}``: upsert by CustomerID -> ``{"ids": [...]}``
- ``GET /_sandbox/customers`` -> ``{"customers": [...]}`` (raw records excluded)
- ``POST /_sandbox/customers/delete`` ``{"ids": [...]}`` -> ``{"deleted": n}``
- ``POST /_sandbox/raw`` ``{"records": [...]}``: getlist returns them verbatim after the customers
- ``POST /_sandbox/faults`` ``{knob: value, ...}`` merges knobs (``"reset": true`` first
  restores the start-time ones, ``null`` removes one); ``GET /_sandbox/faults`` shows them
- ``GET /_sandbox/requests`` -> ``{"requests": [{"path", "status", "body"}]}`` (status 0:
  dropped; the API key is ``***``); ``GET /_sandbox/stats`` -> ``{path: count}``

Knobs: ``latency_ms``, ``ignore_paging``, ``ignore_paging_says_more``, ``reject_names``,
``reject_customer_ids``, and the counted faults, each consumed by one API request whose path
contains ``endpoint`` (any request when null), before credentials are checked:
``fail_next {"count", "status": 503, "retry_after": null, "body": "json"|"html", "endpoint"}``,
``malformed_next {"count", "kind": "html"|"truncated"|"not_json"|"missing_customers", "endpoint"}``,
``drop_next {"count", "endpoint"}`` (closes the socket unanswered),
``drop_after_next {"count", "endpoint"}`` (carries the request out, then closes unanswered), and
``hang_next {"count", "seconds": 5, "endpoint"}`` (then answers normally).
"""

from crmsync.sandbox.control import SandboxControl, SandboxControlError, run_sandbox_process
from crmsync.sandbox.data import demo_customers
from crmsync.sandbox.server import SandboxServer, SandboxState

__all__ = ["SandboxControl", "SandboxControlError", "SandboxServer", "SandboxState", "demo_customers",
           "run_sandbox_process"]
