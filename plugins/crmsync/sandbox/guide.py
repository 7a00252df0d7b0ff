"""The ``guide`` profile's endpoints: the CRM synchronization guide's getlist and update, over
the store's guide-shaped customers.

Its style is configurable, as SUMIT accounts differ: ``status_style`` says Status as
``"Success"``/``"GeneralError"`` (``string``) or 0/1 (``numeric``); ``list_shape`` puts
``Customers`` and ``HasNextPage`` at the top level (``top``) or under ``Data`` (``data``).
"""

from __future__ import annotations

from typing import Any

from crmsync.sandbox.base import Backend
from crmsync.sandbox.customers import ID_KEY, is_blank, page_bounds
from crmsync.sandbox.faults import SandboxInputError

LIST_PATH = "/website/customers/getlist/"
UPDATE_PATH = "/website/customers/update/"
PATHS = (LIST_PATH, UPDATE_PATH)
STATUS_STYLES = ("string", "numeric")
LIST_SHAPES = ("top", "data")


def get_list(state: Backend, body: dict[str, Any]) -> dict[str, Any]:
    """``/website/customers/getlist/``: every record, or the page ``Paging`` asks for."""
    listing: dict[str, Any] = {}
    with state.lock:
        knobs, store = state.knobs, state.store
        if knobs.get("ignore_paging"):
            listing["Customers"] = store.window(0, None)
            if knobs.get("ignore_paging_says_more"):
                listing["HasNextPage"] = True  # a broken server: clients must not loop on it
        elif body.get("Paging") is None:
            listing["Customers"] = store.window(0, None)
        else:
            try:
                start, size = page_bounds(body["Paging"], state.max_page_size)
            except SandboxInputError as error:
                return state.failure(str(error))
            listing["Customers"] = store.window(start, start + size)
            listing["HasNextPage"] = start + size < store.listing_length()
    if state.list_shape == "data":
        return state.success(listing)
    return state.success(None, **listing)


def update(state: Backend, body: dict[str, Any]) -> dict[str, Any]:
    """``/website/customers/update/``: create (no CustomerID) or update one ``Customer``."""
    record = body.get("Customer")
    if not isinstance(record, dict):
        return state.failure("Customer is required")
    name = record.get("Name")
    given = record.get(ID_KEY)
    # A create needs a name; an update may leave Name out (absent keys keep their stored
    # values), but may not blank it.
    if (is_blank(given) or "Name" in record) and (not isinstance(name, str) or not name.strip()):
        return state.failure("Customer name is required")
    with state.lock:
        knobs = state.knobs
        if name in knobs.get("reject_names", []):
            return state.failure(f"Rejected by sandbox rule: customer name {name!r} is refused")
        if not is_blank(given) and str(given) in map(str, knobs.get("reject_customer_ids", [])):
            return state.failure(f"Rejected by sandbox rule: customer {given} is refused")
        if is_blank(given):
            return state.success({ID_KEY: state.store.store({k: v for k, v in record.items() if k != ID_KEY})})
        # The keys sent overwrite, the others (custom fields included) stay; the id keeps
        # the server's spelling whatever type the client sent it as.
        stored = state.store.merge(str(given), {k: v for k, v in record.items() if k != ID_KEY})
        if stored is None:
            return state.failure(f"Customer {given} not found")
        return state.success({ID_KEY: stored[ID_KEY]})
