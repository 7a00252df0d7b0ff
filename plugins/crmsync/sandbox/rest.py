"""The ``rest`` profile's endpoints: SUMIT's published REST API (listentities, getentity,
customers create and update), translated to and from the store's guide-shaped customers. The
triggers' subscribe and unsubscribe are rest endpoints too; they live in triggers.py.

Status is always numeric (0/1) here, as the published API says it, whatever the guide's
status style; a listed customer is an entity whose every property value is a list.
"""

from __future__ import annotations

from typing import Any

from crmsync.sandbox.base import Backend
from crmsync.sandbox.customers import ID_KEY, page_bounds
from crmsync.sandbox.faults import FOLDER_PROPERTIES, SandboxInputError

LIST_PATH = "/crm/data/listentities/"
UPDATE_PATH = "/accounting/customers/update/"
CREATE_PATH = "/accounting/customers/create/"
GET_ENTITY_PATH = "/crm/data/getentity/"
SUBSCRIBE_PATH = "/triggers/triggers/subscribe/"
UNSUBSCRIBE_PATH = "/triggers/triggers/unsubscribe/"
PATHS = (LIST_PATH, UPDATE_PATH, CREATE_PATH, GET_ENTITY_PATH, SUBSCRIBE_PATH, UNSUBSCRIBE_PATH)
# guide key -> (entity property in listentities, Details key in create/update)
TYPED = {"Name": ("Customers_FullName", "Name"), "Email": ("Customers_EmailAddress", "EmailAddress"),
         "Phone": ("Customers_Phone", "Phone"), "TaxID": ("Customers_CompanyNumber", "CompanyNumber"),
         "Address": ("Customers_Address", "Address"), "City": ("Customers_City", "City"),
         "ZipCode": ("Customers_ZipCode", "ZipCode")}
SEARCH_BY_EXTERNAL_IDENTIFIER = 2


def entity(record: dict[str, Any], customers_folder: str, properties: list[str] | None = None) -> dict[str, Any]:
    """A stored customer as listentities shows it: typed properties, every value a list; with
    ``properties`` (the folder's, the ``folder_properties`` knob), no other property."""
    key = record[ID_KEY]
    shown: dict[str, Any] = {"ID": int(key) if str(key).isdigit() else key, "Folder": customers_folder}
    for guide_key, value in record.items():
        if guide_key != ID_KEY and value is not None:
            if guide_key in TYPED:
                shown[TYPED[guide_key][0]] = [value]
            elif properties is None or guide_key in properties:
                shown[guide_key] = [value]
    return shown


def list_entities(state: Backend, body: dict[str, Any]) -> dict[str, Any]:
    """``/crm/data/listentities/``: the page ``Paging`` asks for of the customers folder."""
    if str(body.get("Folder")) != state.customers_folder:
        return state.failure(f"Folder {body.get('Folder')!r} not found", numeric=True)
    with state.lock:
        knobs, store = state.knobs, state.store
        if knobs.get("ignore_paging"):
            start, stop = 0, None
        else:
            try:
                start, size = page_bounds(body.get("Paging") or {}, state.max_page_size)
            except SandboxInputError as error:
                return state.failure(str(error), numeric=True)
            stop = start + size
        window = store.window(start, stop)
        count = len(store.order)
        # Customers become entities; raw records are served verbatim, as in getlist.
        folder, properties = state.customers_folder, knobs.get(FOLDER_PROPERTIES)
        entities = [entity(r, folder, properties) if i + start < count else r for i, r in enumerate(window)]
        more = (stop is not None and stop < store.listing_length()) or bool(knobs.get("ignore_paging_says_more"))
    return state.success({"Entities": entities, "HasNextPage": more}, numeric=True)


def get_entity(state: Backend, body: dict[str, Any]) -> dict[str, Any]:
    """``/crm/data/getentity/``: one customer by ``EntityID``, as listentities shows it (always
    with its properties, whatever ``IncludeFields`` says). An archived customer is still found,
    marked ``"IsArchived": true``; a deleted or unknown one is not."""
    entity_id = body.get("EntityID")
    if isinstance(entity_id, bool) or not isinstance(entity_id, (int, str)) or entity_id == "":
        return state.failure("EntityID is required: the customer's id, a number or text", numeric=True)
    folder = body.get("Folder")
    if folder is not None and str(folder) != state.customers_folder:
        return state.failure(f"Folder {folder!r} not found", numeric=True)
    with state.lock:
        key = str(entity_id)
        record = state.store.customers.get(key)
        if record is None:
            return state.failure(f"Entity {entity_id} was not found", numeric=True)
        shown = entity(record, state.customers_folder, state.knobs.get(FOLDER_PROPERTIES))
        if key in state.store.archived:
            shown["IsArchived"] = True
    return state.success({"Entity": shown}, numeric=True)


def save_details(state: Backend, body: dict[str, Any], *, create: bool) -> dict[str, Any]:
    """``/accounting/customers/create/`` and ``/update/``: Details in, Data.CustomerID out."""
    details = body.get("Details")
    if not isinstance(details, dict):
        return state.failure("Details are required", numeric=True)
    name = details.get("Name")
    # A create needs a name; an update may leave Name out (absent keys keep their stored values).
    if (create or "Name" in details) and (not isinstance(name, str) or not name.strip()):
        return state.failure("Customer name is required", numeric=True)
    record = {guide: details[rest] for guide, (_, rest) in TYPED.items() if rest in details}
    if isinstance(details.get("Properties"), dict):
        record.update(details["Properties"])  # company name, state, country, custom properties
    with state.lock:
        knobs, store = state.knobs, state.store
        folder_properties = knobs.get(FOLDER_PROPERTIES)
        if folder_properties is not None and isinstance(details.get("Properties"), dict):
            lacking = [prop for prop in details["Properties"] if prop not in folder_properties]
            if lacking:
                return state.failure(f"Property {lacking[0]!r} does not exist in folder {state.customers_folder!r}",
                                     numeric=True)
        if name in knobs.get("reject_names", []) or str(details.get("ID")) in map(
                str, knobs.get("reject_customer_ids", [])):
            return state.failure(f"Rejected by sandbox rule: customer name {name!r} is refused", numeric=True)
        external = details.get("ExternalIdentifier")
        if create:
            found = store.external_ids.get(str(external)) if external not in (None, "") else None
            if details.get("SearchMode") == SEARCH_BY_EXTERNAL_IDENTIFIER and found in store.customers:
                key = found  # "create customer or find an existing one according to SearchMode"
            else:
                key = str(store.store(record))
                if external not in (None, ""):
                    store.external_ids[str(external)] = key
        else:
            key = str(details.get("ID"))
            if store.merge(key, record) is None:
                return state.failure(f"Customer {details.get('ID')} not found", numeric=True)
    return state.success({"CustomerID": int(key) if key.isdigit() else key,
                          "CustomerHistoryURL": f"/accounting/customers/history/{key}"}, numeric=True)
