"""The sync console: a FastAPI app the crmsync plugin mounts on Airflow's api-server at /crmsync.

Pages (server-rendered HTML, every value escaped by Jinja2's autoescape; one small script,
no build step): Customers (search, sync-state filter, push, pull, sync), a customer's page
with its history, Runs (table and chart), Errors (the retry queue), Conflicts, Mass changes,
and a tab for one DAG run; and the receiver of SUMIT's triggers (console/webhooks.py). Every
action is a DAG run made through Airflow's REST API with the user's own token
(console/airflow_api.py). Who may do what: console/security.py.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from crmsync.console import airflow_api, db, webhooks
from crmsync.console.answers import Detail, answer
from crmsync.console.inputs import (API_PREFIX, MAX_DAYS, MAX_ID, MAX_ID_TEXT, MAX_PAGE, MAX_SEARCH_LENGTH, NO_NUL,
                                    check_conf, clean_errors, refusals, whole_number)
from crmsync.console.limits import MAX_API_BODY_BYTES, ApiBodyLimit
from crmsync.console.outcome import (ACTION_DAGS, DAG_IDS, FINISHED, PUSH_DAG, STATE_KEYS, airflow_run_url,
                                     outcome_text)
from crmsync.console.pages import (HERE, airflow_root, conflicts_page_values, customers_page_values, errors_page_values,
                                   matches_page_values, render, render_customers, runs_page_values)
from crmsync.console.queries import ConsoleQueries, CustomerQuery
from crmsync.console.security import ReaderDep, require_trigger, same_origin, user_token

log = logging.getLogger(__name__)
MAX_IDS = 1000  # customers or records one console action may name

# What every route may answer besides its own success (for the OpenAPI description the suite
# fuzzes: tests/integration/test_fuzz_http.py): pages answer in HTML, /api/... in JSON.
_HTML = {"content": {"text/html": {"schema": {"type": "string"}}}}


PAGE_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A refused parameter, named on the page", **_HTML},
    401: {"description": "Not logged in to Airflow", **_HTML},
    403: {"description": "The user may not read the crmsync DAGs", **_HTML},
    # ... or Airflow's own JSON 404 for a path the api-server does not route to the console (a line break in it)
    404: {"description": "Nothing with this id",
          "content": {**_HTML["content"], "application/json": {"schema": Detail.model_json_schema()}}},
}
API_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: answer("Refused: the reason in words"), 401: answer("Not logged in to Airflow"),
    403: answer("Not allowed, or a call from another site"), 404: answer("Not a crmsync DAG, or no such run"),
    413: answer(f"The body is over {MAX_API_BODY_BYTES:,} bytes"), 415: answer("The body is not application/json"),
    502: answer("Airflow's REST API did not answer (the api-server's own address: CRMSYNC_CONSOLE_AIRFLOW_URL)"),
}

app = FastAPI(title="crmsync console", docs_url=None, redoc_url=None, openapi_url=None)
app.add_middleware(ApiBodyLimit)  # a body over 256 KB to /api/... gets a 413 before it is read
app.add_middleware(webhooks.HideToken)  # outermost: the receiver's token out of the path before routing or a log
app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
app.include_router(webhooks.router)  # SUMIT's triggers in: the one route that takes no Airflow login (its token)


# -- the customers database ------------------------------------------------------------------------

@contextlib.contextmanager
def open_queries() -> Iterator[ConsoleQueries]:
    conn = db.connect()
    try:
        yield ConsoleQueries(conn)
    finally:
        with contextlib.suppress(Exception):
            conn.rollback()
        conn.close()


class TablesMissing(Exception):
    """crmsync's tables are not in the customers database yet."""


@contextlib.contextmanager
def queries_or_setup() -> Iterator[ConsoleQueries]:
    with open_queries() as queries:
        if not queries.tables_exist():
            raise TablesMissing()
        yield queries


# -- rendering ----------------------------------------------------------------------------------------

def _root(request: Request) -> str:
    return request.scope.get("root_path", "").rstrip("/")


def _airflow_root(request: Request) -> str:
    return airflow_root(_root(request))


def page(request: Request, template: str, tab: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    html = render(template, root=_root(request), tab=tab, **values)
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


@app.exception_handler(TablesMissing)
def _tables_missing(request: Request, exc: TablesMissing) -> HTMLResponse:
    return page(request, "message.html", "", title="No customers table yet", status_code=200,
                message="crmsync's tables are not in the customers database yet: the first task of any crmsync "
                        "run creates them. Start one with “Pull from CRM”.", offer_pull=True)


ERROR_TITLES = {401: "Log in to Airflow", 403: "Not allowed", 404: "Not found"}


def _wantsanswer(request: Request) -> bool:
    return request.url.path.startswith(f"{_root(request)}{API_PREFIX}") or request.method != "GET"


@app.exception_handler(HTTPException)
def _http_error(request: Request, exc: HTTPException) -> Response:
    if _wantsanswer(request):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    title = ERROR_TITLES.get(exc.status_code, "Not possible")
    return page(request, "message.html", "", title=title, message=str(exc.detail), status_code=exc.status_code)


@app.exception_handler(RequestValidationError)
def _refused(request: Request, exc: RequestValidationError) -> Response:
    """A parameter out of range, a text with a NUL, a body that is not the model: 422 JSON
    naming each parameter for /api/..., a 400 page naming them for a page. Nothing ran."""
    errors = exc.errors()
    if _wantsanswer(request):
        return JSONResponse({"detail": clean_errors(errors)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
    return page(request, "message.html", "", title="Not possible", status_code=status.HTTP_400_BAD_REQUEST,
                message="This page cannot be shown for these values: " + "; ".join(refusals(errors)) + ".")


# -- pages --------------------------------------------------------------------------------------------

@app.get("/", include_in_schema=False)
def home(request: Request, _user: ReaderDep) -> RedirectResponse:
    return RedirectResponse(f"{_root(request)}/customers", status_code=status.HTTP_303_SEE_OTHER)


SearchText = Annotated[str, Query(max_length=MAX_SEARCH_LENGTH, pattern=NO_NUL)]
StateName = Literal[("", *STATE_KEYS)]  # "" is the form's "every state"
PageNumber = Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)]
LocalId = Annotated[int, Path(ge=1, le=MAX_ID)]
DagIdPart = Annotated[str, Path(min_length=1, max_length=MAX_ID_TEXT, pattern=NO_NUL)]
RunIdPart = Annotated[str, Path(min_length=1, max_length=MAX_ID_TEXT, pattern=NO_NUL)]


@app.get("/customers", response_class=HTMLResponse, responses=PAGE_ANSWERS)
def customers(request: Request, _user: ReaderDep, q: SearchText = "", state: StateName = "",
              page_number: PageNumber = 1) -> HTMLResponse:
    try:
        query = CustomerQuery.parse(q, state, page_number)
    except ValueError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    with queries_or_setup() as queries:
        values = customers_page_values(queries, query)
    return HTMLResponse(render_customers(values, _root(request)), headers={"Cache-Control": "no-store"})


@app.get("/customers/{customer_id}", response_class=HTMLResponse, responses=PAGE_ANSWERS)
def customer(request: Request, customer_id: LocalId, _user: ReaderDep) -> HTMLResponse:
    with queries_or_setup() as queries:
        row = queries.customer(customer_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"No customer with local id {customer_id}.")
        history = queries.history(customer_id)
    return page(request, "customer.html", "customers", customer=row, history=history)


@app.get("/runs", response_class=HTMLResponse, responses=PAGE_ANSWERS)
def runs(request: Request, _user: ReaderDep, days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 28) -> HTMLResponse:
    with queries_or_setup() as queries:
        values = runs_page_values(queries, days)
    return page(request, "runs.html", "runs", **values,
                run_url=lambda r: airflow_run_url(_airflow_root(request), r["dag_id"], r["dag_run_id"]))


@app.get("/errors", response_class=HTMLResponse, responses=PAGE_ANSWERS)
def errors(request: Request, _user: ReaderDep,
           show: Literal["queued", "pending", "gave_up", "ignored"] = "queued") -> HTMLResponse:
    with queries_or_setup() as queries:
        values = errors_page_values(queries, show)
    return page(request, "errors.html", "errors", **values)


@app.get("/conflicts", response_class=HTMLResponse, responses=PAGE_ANSWERS)
def conflicts(request: Request, _user: ReaderDep) -> HTMLResponse:
    with queries_or_setup() as queries:
        values = conflicts_page_values(queries)
    return page(request, "conflicts.html", "conflicts", **values)


@app.get("/matches", response_class=HTMLResponse, responses=PAGE_ANSWERS)
def matches(request: Request, _user: ReaderDep) -> HTMLResponse:
    with queries_or_setup() as queries:
        values = matches_page_values(queries)
    return page(request, "matches.html", "matches", **values)


@app.get("/mass-changes", response_class=HTMLResponse, responses=PAGE_ANSWERS)
def mass_changes(request: Request, _user: ReaderDep) -> HTMLResponse:
    with queries_or_setup() as queries:
        plans = queries.plans()
    for plan in plans:
        plan["approval_url"] = airflow_run_url(_airflow_root(request), plan["dag_id"], plan["dag_run_id"])
    return page(request, "plans.html", "plans", plans=plans)


@app.get("/run/{dag_id}/{dag_run_id}", response_class=HTMLResponse, responses=PAGE_ANSWERS)
def run_tab(request: Request, dag_id: DagIdPart, dag_run_id: RunIdPart, _user: ReaderDep) -> HTMLResponse:
    if dag_id not in DAG_IDS:
        return page(request, "message.html", "", title="Not a crmsync DAG",
                    message=f"{dag_id} is not one of crmsync's DAGs: this tab has nothing to show for it.")
    with queries_or_setup() as queries:
        row = queries.run(dag_id, dag_run_id)
        changes = queries.run_changes(dag_id, dag_run_id)
        failures = queries.run_errors(dag_id, dag_run_id)
    return page(request, "run.html", "", dag_id=dag_id, dag_run_id=dag_run_id, run=row, changes=changes,
                failures=failures, outcome=outcome_text(dag_id, "success", row) if row else None)


# -- actions ------------------------------------------------------------------------------------------

class TriggerBody(BaseModel):
    model_config = ConfigDict(strict=True)  # `"unpause": 0` is not a yes/no: refused, not read as false

    dag_id: Literal[ACTION_DAGS]  # type: ignore[valid-type]  # the DAGs the console starts
    conf: Annotated[dict[str, Any], AfterValidator(check_conf)] = Field(default_factory=dict)
    unpause: bool = False
    note: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)


class IgnoreBody(BaseModel):
    model_config = ConfigDict(strict=True)

    error_ids: list[Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(whole_number)]] = Field(
        min_length=1, max_length=MAX_IDS)


class Started(BaseModel):
    dag_id: str
    dag_run_id: str
    airflow_url: str
    tab_url: str


class Paused(BaseModel):
    paused: bool
    detail: str


class RunStatus(BaseModel):
    state: str | None
    finished: bool
    outcome: str
    counts: dict[str, Any] | None


class Ignored(BaseModel):
    ignored: list[int]


@app.post("/api/trigger", dependencies=[Depends(same_origin)], status_code=201,
          responses={**API_ANSWERS, 201: answer("The run was made", Started),
                     409: answer("The DAG is paused: send unpause=true to unpause it and start the run", Paused)})
def trigger(request: Request, body: TriggerBody, user: ReaderDep) -> JSONResponse:
    """Start a run of a crmsync DAG with ``conf``, as ``POST /api/v2/dags/{dag_id}/dagRuns`` would."""
    require_trigger(user, body.dag_id)
    token = user_token(request)
    dag = airflow_api.dag(body.dag_id, token)
    if not dag.ok:
        return JSONResponse({"detail": f"Airflow does not know {body.dag_id}: {dag.detail()}"}, status_code=dag.status)
    paused = bool(dag.body.get("is_paused"))
    if paused and not body.unpause:
        return JSONResponse({"paused": True, "detail": f"{body.dag_id} is paused in Airflow: its runs would wait. "
                             "Unpause it (its schedule starts too) and start the run?"}, status_code=409)
    # The run first (it waits while the DAG is paused), the unpause only once Airflow took it:
    # a run Airflow refuses (a param that fails validation) leaves the DAG as it was.
    answer = airflow_api.trigger(body.dag_id, body.conf, token, note=body.note,
                                 referer=str(request.url_for("customers")))
    if not answer.ok:
        return JSONResponse({"detail": f"Airflow refused the run: {answer.detail()}"}, status_code=answer.status)
    run_id = answer.body["dag_run_id"]
    if paused:
        unpaused = airflow_api.unpause(body.dag_id, token)
        if not unpaused.ok:
            return JSONResponse({"detail": f"The run {run_id} was made, but Airflow refused to unpause {body.dag_id} "
                                           f"(it waits until someone does): {unpaused.detail()}"},
                                status_code=unpaused.status)
    log.info("crmsync console: %s started %s %s", user.get_name(), body.dag_id, run_id)
    return JSONResponse({"dag_id": body.dag_id, "dag_run_id": run_id,
                         "airflow_url": airflow_run_url(_airflow_root(request), body.dag_id, run_id),
                         "tab_url": f"{_root(request)}/run/{quote(body.dag_id, safe='')}/{quote(run_id, safe='')}"}, status_code=201)


@app.get("/api/runs/{dag_id}/{dag_run_id}", responses={**API_ANSWERS, 200: answer("The run's state and outcome", RunStatus)})
def run_status(request: Request, dag_id: DagIdPart, dag_run_id: RunIdPart, _user: ReaderDep) -> JSONResponse:
    """A run's state in Airflow and its outcome in the guide's words, for the console's notifications."""
    if dag_id not in DAG_IDS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{dag_id} is not a crmsync DAG")
    answer = airflow_api.dag_run(dag_id, dag_run_id, user_token(request))
    if not answer.ok:
        return JSONResponse({"detail": answer.detail()}, status_code=answer.status)
    state = answer.body.get("state")
    with open_queries() as queries:
        row = queries.run(dag_id, dag_run_id) if queries.tables_exist() else None
    counts = {k: row[k] for k in ("fetched", "created", "updated", "pushed", "failed", "skipped", "conflicts",
                                  "vanished", "gave_up", "changed", "linked", "held", "status")} if row else None
    return JSONResponse({"state": state, "finished": state in FINISHED, "outcome": outcome_text(dag_id, state, row),
                         "counts": counts})


@app.post("/api/errors/ignore", dependencies=[Depends(same_origin)],
          responses={**API_ANSWERS, 200: answer("The records now ignored", Ignored)})
def ignore_errors(body: IgnoreBody, user: ReaderDep) -> JSONResponse:
    """Stop retrying these records (they stay in crm_sync_errors, marked ignored)."""
    require_trigger(user, PUSH_DAG)
    with queries_or_setup() as queries:
        changed = queries.ignore_errors(body.error_ids)
    log.info("crmsync console: %s ignored retry-queue records %s", user.get_name(), changed)
    return JSONResponse({"ignored": changed})
