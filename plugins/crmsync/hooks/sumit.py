"""SumitHook: the one place crmsync talks to SUMIT.

An ``HttpHook`` of the http provider, as hooks of other HTTP APIs are: the provider builds the
requests session from the connection, so the transport options users know from HTTP
connections (``proxies``, ``verify``, ``cert``, ``trust_env``) work on ``sumit`` connections
too, with TCP keep-alive. crmsync's own extras (``api_profile``, timeouts, paging, concurrency)
are read into :class:`~crmsync.sumit.connection.SumitSettings` and never become headers.
The hook puts the credentials in every body,
judges the answer envelope, retries transient faults with bounded exponential backoff and
jitter (honouring ``Retry-After``), and walks paged listings with a guard against servers
that ignore paging. What the requests and records look like is the API profile's business
(crmsync.sumit.api); what to do with the customers is the sync engine's.

The API key lives only in the request body. It is registered with Airflow's secrets masker,
and every message this hook builds is redacted again, because Airflow does not mask every
path (``airflow dags test`` output, for one).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any

import requests
import tenacity
from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter
from urllib3.exceptions import NewConnectionError

from airflow.providers.http.hooks.http import HttpHook

from crmsync.core.errors import (
    ConfigurationError,
    SumitAuthError,
    SumitError,
    SumitPermanentError,
    SumitProtocolError,
    SumitTransientError,
)
from crmsync.core.model import LocalCustomer, PushResult
from crmsync.core.pulled import PulledPage, customer_row, record_id
from crmsync.hooks.paging import PageWindow
from crmsync.hooks.transport import Poster, decode_answer, decode_body, retry_after_seconds
from crmsync.sumit.api import get_profile
from crmsync.sumit.api.base import ApiProfile, Listing, check_envelope
from crmsync.sumit.budget import ACCEPTED, BURST, OTHER, RATE_LIMITED, RequestBudget
from crmsync.sumit.connection import SumitSettings, http_options
from crmsync.sumit.redact import redact, shorten

log = logging.getLogger(__name__)

# 502/503 and 429 mean the server did not act on the request; 500/504 and cut connections may
# have come after it did.
_NOT_PROCESSED_STATUSES = {429, 502, 503}


class ListingCancelled(Exception):
    """A speculative listing request dropped before its try went out (never reaches a caller)."""


class SumitHook(HttpHook):
    """Talks to the SUMIT CRM API through the connection ``sumit_conn_id``."""

    conn_name_attr = "sumit_conn_id"
    default_conn_name = "sumit_default"
    conn_type = "sumit"
    hook_name = "SUMIT CRM"

    def __init__(self, sumit_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(method="POST", http_conn_id=sumit_conn_id, **kwargs)
        self.sumit_conn_id = sumit_conn_id
        self.retries = 0  # tries repeated after a transient fault (the task's metrics)

    # -- configuration -------------------------------------------------------------------

    @cached_property
    def settings(self) -> SumitSettings:
        conn = self.get_connection(self.sumit_conn_id)
        settings = SumitSettings.from_connection(
            self.sumit_conn_id,
            host=conn.host,
            login=conn.login,
            password=conn.password,
            extra=conn.extra_dejson,
            schema=conn.schema,
            port=conn.port,
        )
        _mask(settings.api_key)
        return settings

    @cached_property
    def profile(self) -> ApiProfile:
        return get_profile(self.settings)

    @cached_property
    def budget(self) -> RequestBudget:
        """This hook's (this task's) request budget: every call waits its turn there, pushers and
        listing reads alike, so SUMIT's 429s slow them all (crmsync.sumit.budget). Until the first 429
        it lets ``BURST`` times push_concurrency go at once (the push's thread pool is that big);
        listing reads never send more than read_concurrency."""
        settings = self.settings
        concurrency = max(settings.push_concurrency, settings.read_concurrency)  # what it grows back to
        return RequestBudget(concurrency, burst=BURST, max_rate=settings.max_requests_per_second,
                             max_pause=settings.backoff_max, log=self.log)

    @property
    def creates_are_idempotent(self) -> bool:
        """Whether a create sent twice makes one customer (else lost creates are looked up first)."""
        return self.profile.creates_are_idempotent

    def get_conn(self, headers: dict[str, str] | None = None, extra_options: dict[str, Any] | None = None
                 ) -> requests.Session:
        """A new session as HttpHook builds it, with SUMIT's JSON headers (they win over the extra's)."""
        settings = self.settings
        if self.adapter is None:
            # One pool, as big as the pushers (or listing readers) that share it; retries are ours (tenacity, below).
            size = max(10, BURST * settings.push_concurrency, settings.read_concurrency)
            self.adapter = TCPKeepAliveAdapter(idle=120, count=20, interval=30, pool_connections=1,
                                               pool_maxsize=size, max_retries=0)
        own = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json"}
        if settings.language:
            own["Content-Language"] = settings.language
        return super().get_conn(headers={**(headers or {}), **own}, extra_options=extra_options)

    def _set_base_url(self, connection: Any) -> None:
        self.base_url = self.settings.base_url  # checked and defaulted (https://api.sumit.co.il) by the settings
        self._base_url_initialized = True

    def _extract_auth(self, connection: Any) -> None:
        """None: SUMIT takes CompanyID and APIKey in the body. (HttpHook would make login and password
        an Authorization header, sending the key base64-encoded with every request.)"""
        return None

    def _configure_session_from_extra(self, session: requests.Session, connection: Any,
                                      extra_options: dict[str, Any]) -> requests.Session:
        """The extra's transport options, checked, for HttpHook; crmsync's own keys stay out of the headers."""
        transport, headers = http_options(connection.extra_dejson, self.sumit_conn_id)
        view = _ExtraView({**headers, **transport}, connection.host)
        return super()._configure_session_from_extra(session, view, extra_options)

    @cached_property
    def _session(self) -> requests.Session:
        return self.get_conn()

    @cached_property
    def _poster(self) -> Poster:
        """Sends each POST through the session's adapter, with what Session.post would merge per request merged once."""
        return Poster(self._session, self.settings.base_url)

    def observed(self) -> dict[str, int]:
        """What this hook's calls met: requests sent, SUMIT's 429s, tries repeated (for metrics)."""
        budget = self.__dict__.get("budget")
        return {"sumit_requests": budget.requests if budget else 0,
                "rate_limited": budget.rate_limited if budget else 0, "retries": self.retries}

    def close(self) -> None:
        summary = self.__dict__["budget"].summary() if "budget" in self.__dict__ else None
        if summary:
            self.log.info("%s", summary)
        self.__dict__.pop("_poster", None)
        if "_session" in self.__dict__:
            self._session.close()
            del self.__dict__["_session"]

    # -- one call ------------------------------------------------------------------------

    def call(self, endpoint: str, body: dict[str, Any], *, idempotent: bool = True,
             cancelled: threading.Event | None = None, raw: bool = False) -> Any:
        """POST ``body`` (plus credentials) to ``endpoint`` and return the successful answer
        (with ``raw``, its body as bytes when its envelope alone could be judged: a listing page
        held ahead of its turn takes a quarter of the memory so; :func:`decode_body` reads it).

        Transient faults are retried up to ``max_attempts`` times; a call that is not
        idempotent is retried only when the server surely did not act on it. Every try waits
        its turn in the hook's budget; after a 429 with Retry-After the budget, not this
        call, decides when the next try goes (it holds every caller until then). Once
        ``cancelled`` is set (a listing page nobody needs any more) no further try is sent.
        """
        settings = self.settings

        def should_retry(state: tenacity.RetryCallState) -> bool:
            error = state.outcome.exception() if state.outcome else None
            return isinstance(error, SumitTransientError) and (idempotent or not error.maybe_processed)

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, SumitTransientError) and error.retry_after is not None:
                if error.http_status == 429:
                    return 0.0  # the budget pauses every caller until Retry-After has passed
                return min(error.retry_after, settings.backoff_max)
            return _backoff(settings)(state)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            self.retries += 1  # for the task's metrics (a count under the GIL: close enough, never a decision)
            error = state.outcome.exception() if state.outcome else None
            # A 429 is the budget's to report, once per change of its limit, not once per request.
            level = logging.DEBUG if getattr(error, "http_status", None) == 429 else logging.WARNING
            self.log.log(
                level,
                "SUMIT %s: %s; try %d of %d in %.1f s",
                endpoint, error, state.attempt_number + 1, settings.max_attempts,
                state.next_action.sleep if state.next_action else 0,
            )

        stop = tenacity.stop_after_attempt(settings.max_attempts)
        if cancelled is not None:
            stop = stop | tenacity.stop_when_event_set(cancelled)
        retrying = tenacity.Retrying(
            retry=should_retry,
            stop=stop,
            wait=wait,
            before_sleep=before_sleep,
            reraise=True,
            **({} if cancelled is None else {"sleep": cancelled.wait}),  # a cancel cuts the wait short
        )
        payload = {"Credentials": {"CompanyID": settings.company_id, "APIKey": settings.api_key}, **body}
        return retrying(self._post_in_turn, endpoint, payload, cancelled, raw)

    def _post_in_turn(self, endpoint: str, payload: dict[str, Any],
                      cancelled: threading.Event | None = None, raw: bool = False) -> Any:
        """One try, when the budget lets it go; its outcome goes back to the budget."""
        if cancelled is not None and cancelled.is_set():
            raise ListingCancelled(f"SUMIT {endpoint}: not sent, the listing no longer needs this page")
        budget = self.budget
        ticket = budget.acquire()
        outcome, retry_after = OTHER, None
        try:
            answer = self._post_once(endpoint, payload, raw)
            outcome = ACCEPTED
            return answer
        except SumitTransientError as error:
            if error.http_status == 429:
                outcome, retry_after = RATE_LIMITED, error.retry_after
            raise
        except SumitPermanentError:
            outcome = ACCEPTED  # SUMIT answered, with a refusal that is not a rate limit
            raise
        finally:
            budget.release(ticket, outcome, retry_after=retry_after)

    def _post_once(self, endpoint: str, payload: dict[str, Any], raw: bool = False) -> Any:
        settings = self.settings
        url = settings.base_url + endpoint
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            response = self._poster.post(url, data, (settings.connect_timeout, settings.read_timeout))
        except requests.exceptions.SSLError as exc:
            raise self._tls_error(endpoint, exc) from None
        except requests.ConnectTimeout:
            raise self._transient(endpoint, f"no connection within {settings.connect_timeout:g} s", processed=False)
        except requests.Timeout:
            raise self._transient(endpoint, f"no answer within {settings.read_timeout:g} s", processed=True)
        except requests.ConnectionError as exc:
            refused = isinstance(getattr(exc.args[0] if exc.args else None, "reason", None), NewConnectionError)
            what = "connection refused" if refused else "connection lost before the answer"
            raise self._transient(endpoint, f"{what} ({settings.base_url})", processed=not refused)
        except requests.RequestException as exc:
            raise SumitPermanentError(self._clean(f"SUMIT {endpoint}: request failed: {exc}"), endpoint=endpoint)
        except OSError as exc:  # requests' own: a CA bundle or client certificate it cannot read
            raise ConfigurationError(self._clean(f"Airflow connection {self.sumit_conn_id!r}: {exc}")) from None
        return self._judge(endpoint, response, raw)

    def _tls_error(self, endpoint: str, exc: requests.exceptions.SSLError) -> SumitError:
        """A refused certificate is permanent (no retry can fix it) and says what to set; another
        TLS failure (a handshake cut short) is transient."""
        text = str(exc)
        match = _CERTIFICATE_REFUSED.search(text)
        base_url = self.settings.base_url
        if match or "CERTIFICATE_VERIFY_FAILED" in text:
            reason = match.group(1).strip().rstrip(".") if match else "certificate verify failed"
            return SumitPermanentError(self._clean(
                f"SUMIT {endpoint}: the TLS certificate of {base_url} was refused ({reason}), so nothing was sent "
                f"(Airflow connection {self.sumit_conn_id!r}). If a proxy or gateway with its own certificate "
                'authority stands in between, set the connection\'s extra "verify" to that authority\'s CA bundle '
                'file, e.g. {"verify": "/etc/ssl/certs/company-ca.pem"}.'), endpoint=endpoint)
        reason = shorten(self._clean(text), 300)  # redacted before it is cut: a cut never leaves part of a key
        return SumitTransientError(self._clean(
            f"SUMIT {endpoint}: TLS handshake with {base_url} failed ({reason}; Airflow connection "
            f"{self.sumit_conn_id!r})"), endpoint=endpoint, maybe_processed=False)

    def _judge(self, endpoint: str, response: requests.Response, raw: bool = False) -> Any:
        status = response.status_code
        if status == 429 or status >= 500:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            reason = "rate limited (HTTP 429)" if status == 429 else f"server error HTTP {status}"
            raise SumitTransientError(
                self._clean(f"SUMIT {endpoint}: {reason}"), endpoint=endpoint, http_status=status,
                retry_after=retry_after, maybe_processed=status not in _NOT_PROCESSED_STATUSES,
            )
        try:
            answer, enveloped = decode_answer(response, envelope_only=raw)
        except ValueError:
            start = shorten(self._clean(response.text.strip().replace("\n", " ")), 120)  # redacted, then cut
            raise SumitProtocolError(
                self._clean(f"SUMIT {endpoint} answered HTTP {status} with a body that is not JSON: {start!r}"),
                endpoint=endpoint, http_status=status,
            ) from None
        if not isinstance(answer, dict) or "Status" not in answer:
            raise SumitProtocolError(
                f"SUMIT {endpoint} answered HTTP {status} with JSON that is not a SUMIT envelope (no Status).",
                endpoint=endpoint, http_status=status,
            )
        try:
            check_envelope(answer, endpoint)
        except SumitError as exc:
            raise type(exc)(shorten(self._clean(str(exc))), endpoint=endpoint, http_status=status) from None
        if status >= 400:
            raise SumitPermanentError(f"SUMIT {endpoint} answered HTTP {status}", endpoint=endpoint, http_status=status)
        return response.content if enveloped else answer

    def _transient(self, endpoint: str, what: str, *, processed: bool) -> SumitTransientError:
        return SumitTransientError(self._clean(f"SUMIT {endpoint}: {what}"), endpoint=endpoint, maybe_processed=processed)

    def _clean(self, text: str) -> str:
        return redact(text, [self.settings.api_key])

    # -- what the sync needs ---------------------------------------------------------------

    def iter_customer_pages(self, page_size: int | None = None) -> Iterator[PulledPage]:
        """Yield the CRM's customers page by page, in listing order, decoded.

        With ``read_concurrency`` above 1 the pages after the one being read are requested
        meanwhile (crmsync.hooks.paging: speculatively, since SUMIT never says how many pages
        there are), every request through :meth:`call` and the hook's budget, and handed over in
        listing order whatever order they are answered in; at most ``read_concurrency`` pages are
        requested or held here at once. Speculation starts after the first page, stepping by the
        length of the page before, and never after a page longer than asked (a server ignoring
        paging). Guards, checked page by page in order as before: a server that ignores paging and
        repeats the same page ends the listing (the first answer already held everything), and one
        that promises more pages forever, or sends an empty page while promising more, is a
        protocol error. A page fetched beyond the end is never decoded or yielded.
        """
        settings = self.settings
        size = page_size or settings.page_size
        self._session, self.budget, self.profile  # noqa: B018 - made once, before several threads use them

        def fetch(start: int, cancelled: threading.Event) -> tuple[str, Any]:
            endpoint, body = self.profile.list_request(start, size)
            return endpoint, self.call(endpoint, body, cancelled=cancelled, raw=True)  # decoded when its turn comes

        start, previous_ids, step = 0, None, None
        with PageWindow(fetch, settings.read_concurrency) as pages:
            for number in range(1, settings.max_pages + 1):
                endpoint, answer = pages.get(start, step, ahead=settings.max_pages - number)
                listing = self._listing(endpoint, answer)
                del answer
                ids = listing.ids if listing.ids is not None else tuple(record_id(r) for r in listing.records)
                # Only pages whose every record has an id can prove the server repeats itself: two
                # pages of id-less (invalid) records are not the same page.
                if ids and all(ids) and ids == previous_ids:
                    self.log.warning(
                        "SUMIT %s sent page %d identical to page %d: the server ignores paging, so the "
                        "first answer was the whole list. Stopping here.", endpoint, number, number - 1,
                    )
                    return
                page = [PulledPage(number, records=listing.records, decode=self._row_decoder(), ids=ids, raw=listing.raw)]
                has_next, length = listing.has_next, len(listing.records)
                del listing  # the records, and (popped as it is yielded) the page: not held here meanwhile
                yield page.pop()
                if not has_next:
                    return
                if not length:
                    raise SumitProtocolError(
                        f"SUMIT {endpoint} sent an empty page {number} but said more pages follow.", endpoint=endpoint
                    )
                start += length
                previous_ids = ids
                # Speculate only on a server that pages: one sending more than asked ignores paging.
                step = length if length <= size else None
        raise SumitProtocolError(
            f"SUMIT listing did not end after {settings.max_pages} pages; raise extra.max_pages if that is real."
        )

    def _listing(self, endpoint: str, answer: Any) -> Listing:
        """A listing answer's records: left as sent (msgspec.Raw, parsed only when mapped: a re-pull
        hashes them and maps only those that changed) where the profile can, else parsed."""
        parse_raw = getattr(self.profile, "parse_raw_list", None)
        if parse_raw is not None and isinstance(answer, bytes):
            listing = parse_raw(answer)
            if listing is not None:
                return listing
        return self.profile.parse_list(decode_body(answer, endpoint), endpoint)

    def _row_decoder(self) -> Callable[[Any], list[Any]]:
        """The profile's record-to-row decoder (crmsync.core.pulled): straight to a row where it can."""
        profile = self.profile
        decode_row = getattr(profile, "decode_row", None)
        if decode_row is not None:
            return decode_row
        decode_customer = profile.decode_customer
        return lambda raw: customer_row(decode_customer(raw))

    @property
    def record_salt(self) -> str:
        """What decides how this hook maps a record, for the record hashes a re-pull compares
        (crmsync.core.fingerprint.record_hashes): the profile and its settings."""
        settings = {key: sorted(value) if isinstance(value, (set, frozenset)) else value
                    for key, value in vars(self.profile).items()}
        return f"{self.profile.name}:{json.dumps(settings, sort_keys=True, default=str)}"

    def push_customer(self, customer: LocalCustomer) -> PushResult:
        """Create or update one customer in SUMIT; returns the CRM id it answered, if any."""
        endpoint, body = self.profile.push_request(customer)
        answer = self.call(endpoint, body, idempotent=self.profile.is_idempotent(customer))
        return self.profile.parse_push(answer, endpoint)

    # -- SUMIT's triggers (rest profile) ---------------------------------------------------

    def _trigger_profile(self, what: str) -> Any:
        profile = self.profile
        if not hasattr(profile, "get_request"):
            raise ConfigurationError(
                f"{what} needs SUMIT's published REST API: set extra.api_profile to \"rest\" (and "
                f"extra.customers_folder) on Airflow connection {self.sumit_conn_id!r}; the guide's endpoints "
                "have no triggers and no way to read one customer."
            )
        return profile

    def get_customer(self, sumit_id: str) -> PulledPage | None:
        """One customer read fresh from SUMIT, as a one-record page (decoded, or rejected with
        the reason); None when SUMIT says it is not there, or archived (no longer listed)."""
        profile = self._trigger_profile("Reading one customer")
        endpoint, body = profile.get_request(sumit_id)
        try:
            answer = self.call(endpoint, body)
        except SumitPermanentError as exc:
            if not isinstance(exc, (SumitAuthError, SumitProtocolError)) and profile.is_not_found(str(exc)):
                return None
            raise
        entity = profile.parse_get(answer, endpoint)
        if profile.is_archived(entity):
            return None
        return PulledPage(0, records=[entity], decode=self._row_decoder())

    def subscribe(self, url: str, trigger_type: str, view: str | None = None) -> None:
        """Ask SUMIT to post ``trigger_type`` triggers of the customers folder to ``url``."""
        endpoint, body = self._trigger_profile("Subscribing to triggers").subscribe_request(url, trigger_type, view)
        self.call(endpoint, body)

    def unsubscribe(self, url: str) -> None:
        """Stop every trigger SUMIT posts to ``url``."""
        endpoint, body = self._trigger_profile("Unsubscribing from triggers").unsubscribe_request(url)
        self.call(endpoint, body)

    def test_connection(self) -> tuple[bool, str]:
        """One read-only call (a one-customer listing page): for the UI's Test button."""
        try:
            endpoint, body = self.profile.list_request(0, 1)
            self.profile.parse_list(self.call(endpoint, body), endpoint)
        except Exception as exc:  # the UI shows the text: the reason, redacted
            known = [self.settings.api_key] if "settings" in self.__dict__ else []
            return False, redact(str(exc), known)
        return True, f"Connected to SUMIT at {self.settings.base_url} as CompanyID {self.settings.company_id}."


class _ExtraView:
    """What HttpHook reads of a connection to configure a session: its extra (here only the
    transport options and headers crmsync passes on) and its host."""

    def __init__(self, extra: dict[str, Any], host: str | None) -> None:
        self.extra_dejson = extra
        self.extra = json.dumps(extra)
        self.host = host


_CERTIFICATE_REFUSED = re.compile(r"certificate verify failed: (.*?)(?: \(_ssl\.c:\d+\)|'\)|$)")


def _backoff(settings: SumitSettings) -> tenacity.wait.wait_base:
    return tenacity.wait_exponential_jitter(
        initial=settings.backoff_initial, max=settings.backoff_max, jitter=settings.backoff_initial
    )


def _mask(secret: str) -> None:
    """Register the key with Airflow's masker (best effort: it is not present outside tasks)."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older task SDK
        return
    mask_secret(secret)
