"""The SUMIT sandbox over real HTTP: the guide API, its fault knobs, the control API, secrecy.

The in-process ``SandboxServer`` serves most tests (fast); the subprocess launcher serves the
tests of the CLI and of what the sandbox writes to stderr.
"""

from __future__ import annotations

import http.client
import itertools
import json
import re
import threading
import time
import urllib.error
import urllib.request

import pytest
import requests

from crmsync.sandbox import SandboxControl, SandboxControlError, SandboxServer, demo_customers, run_sandbox_process
from crmsync.sandbox.__main__ import main as sandbox_main
from crmsync.sandbox.server import LIST_PATH, UPDATE_PATH
from crmsync.testing.tls import make_test_ca

KEY = "unit-sandbox-key-7f3a9c"
CREDENTIALS = {"CompanyID": 1000, "APIKey": KEY}


def post(url: str, path: str, body=None, *, raw: bytes | None = None, timeout: float = 5):
    """(HTTP status, headers, body text) of a POST; an HTTP error status is an answer too."""
    data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(url + path, data=data, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read().decode("utf-8")


def api(url: str, path: str, credentials=None, timeout: float = 5, **body):
    """(HTTP status, parsed answer) of an API call carrying ``credentials`` (the right ones by default)."""
    status, _, text = post(url, path, {"Credentials": credentials or CREDENTIALS, **body}, timeout=timeout)
    return status, json.loads(text)


def get_list(url: str, **body):
    return api(url, LIST_PATH, **body)[1]


def push(url: str, customer: dict):
    return api(url, UPDATE_PATH, Customer=customer)[1]


@pytest.fixture
def server():
    with SandboxServer(company_id=1000, api_key=KEY) as sandbox:
        yield sandbox


@pytest.fixture
def control(server):
    return SandboxControl(server.url)


# -- transport and credentials --------------------------------------------------------------


@pytest.mark.parametrize("credentials", [
    {"CompanyID": 1000, "APIKey": "wrong"},
    {"CompanyID": 1001, "APIKey": KEY},
    {"CompanyID": "not-a-number", "APIKey": KEY},
    {"CompanyID": 1000},
    "1000:" + KEY,
])
def test_wrong_credentials_are_a_failure_envelope_with_http_200(server, credentials):
    status, answer = api(server.url, LIST_PATH, credentials=credentials)
    assert status == 200
    assert answer["Status"] == "GeneralError"
    assert answer["UserErrorMessage"] == "Invalid credentials (CompanyID/APIKey)"
    assert "Customers" not in answer


def test_missing_credentials_and_a_numeric_string_company_id(server):
    _, _, text = post(server.url, LIST_PATH, {})
    assert json.loads(text)["UserErrorMessage"] == "Invalid credentials (CompanyID/APIKey)"
    assert get_list(server.url, credentials={"CompanyID": "1000", "APIKey": KEY})["Status"] == "Success"


@pytest.mark.parametrize("raw", [b"{not json", b"\xff\xfe", b"[1, 2]"])
def test_body_that_is_not_a_json_object_is_http_400_with_a_failure_envelope(server, raw):
    status, _, text = post(server.url, LIST_PATH, raw=raw)
    answer = json.loads(text)
    assert status == 400
    assert answer["Status"] == "GeneralError" and answer["UserErrorMessage"]


def test_unknown_endpoint_and_wrong_method(server):
    status, _, text = post(server.url, "/website/customers/nope/", {"Credentials": CREDENTIALS})
    assert status == 404 and "Unknown endpoint" in json.loads(text)["UserErrorMessage"]
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server.url + LIST_PATH, timeout=5)
    assert info.value.code == 405
    info.value.close()


def test_numeric_status_style():
    with SandboxServer(api_key=KEY, status_style="numeric") as sandbox:
        assert get_list(sandbox.url)["Status"] == 0
        assert api(sandbox.url, LIST_PATH, credentials={"CompanyID": 1000, "APIKey": "x"})[1]["Status"] == 1
        assert push(sandbox.url, {"Name": ""})["Status"] == 1


# -- customers ------------------------------------------------------------------------------


def test_create_assigns_string_ids_in_sequence(server, control):
    answers = [push(server.url, {"Name": name, "Email": f"{name}@example.com"}) for name in ("A", "B")]
    assert [a["Status"] for a in answers] == ["Success", "Success"]
    assert [a["Data"]["CustomerID"] for a in answers] == ["100001", "100002"]
    assert [(c["CustomerID"], c["Name"]) for c in control.customers()] == [("100001", "A"), ("100002", "B")]


def test_numeric_ids_are_json_numbers_and_string_ids_still_find_them():
    with SandboxServer(api_key=KEY, numeric_ids=True) as sandbox:
        assert push(sandbox.url, {"Name": "A"})["Data"]["CustomerID"] == 100001
        assert push(sandbox.url, {"CustomerID": "100001", "Name": "A2"})["Data"]["CustomerID"] == 100001
        assert get_list(sandbox.url)["Customers"] == [{"CustomerID": 100001, "Name": "A2"}]


def test_update_overwrites_the_keys_sent_and_keeps_custom_fields(server, control):
    [customer_id] = control.add_customers([{"Name": 'חברת אלפא בע"מ', "Email": "old@example.co.il", "City": "חיפה",
                                            "Segment": "VIP", "מקור": "אתר"}])
    answer = push(server.url, {"CustomerID": customer_id, "Name": 'חברת אלפא בע"מ', "Email": "new@example.co.il",
                               "TaxID": "012345678"})
    assert answer["Status"] == "Success" and answer["Data"] == {"CustomerID": customer_id}
    assert control.customers() == [{"CustomerID": customer_id, "Name": 'חברת אלפא בע"מ', "Email": "new@example.co.il",
                                    "City": "חיפה", "Segment": "VIP", "מקור": "אתר", "TaxID": "012345678"}]
    assert get_list(server.url)["Customers"] == control.customers()


@pytest.mark.parametrize("customer", [{"Email": "x@example.com"}, {"Name": ""}, {"Name": "   "}, {"Name": None}])
def test_a_customer_without_a_name_is_refused(server, control, customer):
    answer = push(server.url, customer)
    assert answer["Status"] == "GeneralError" and answer["UserErrorMessage"] == "Customer name is required"
    assert control.customers() == []


def test_updating_an_unknown_id_fails_and_an_empty_id_creates(server, control):
    assert push(server.url, {"CustomerID": "999", "Name": "X"})["UserErrorMessage"] == "Customer 999 not found"
    assert push(server.url, {"CustomerID": "", "Name": "New"})["Data"]["CustomerID"] == "100001"
    assert push(server.url, {"CustomerID": None, "Name": "Newer"})["Data"]["CustomerID"] == "100002"


def test_per_record_rejection_rules(server, control):
    [kept] = control.add_customers([{"Name": "Kept"}])
    control.set_faults(reject_names=["Refused"], reject_customer_ids=[kept])
    refused = [push(server.url, {"Name": "Refused"}), push(server.url, {"CustomerID": kept, "Name": "Renamed"})]
    assert all(a["Status"] == "GeneralError" and a["UserErrorMessage"].startswith("Rejected by sandbox rule: ")
               for a in refused)
    assert push(server.url, {"Name": "Fine"})["Status"] == "Success"
    assert [c["Name"] for c in control.customers()] == ["Kept", "Fine"]


def test_concurrent_creates_get_distinct_ids(server):
    ids: list[str] = []

    def create(worker: int) -> None:
        for i in range(15):
            ids.append(push(server.url, {"Name": f"W{worker}-{i}"})["Data"]["CustomerID"])

    threads = [threading.Thread(target=create, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(ids)) == 90 and len(get_list(server.url)["Customers"]) == 90


# -- listing --------------------------------------------------------------------------------


def test_paging_slices_in_insertion_order_and_says_whether_more_follows(server, control):
    ids = control.add_customers([{"Name": f"C{i}"} for i in range(5)])
    pages = [get_list(server.url, Paging={"StartIndex": start, "PageSize": 2}) for start in (0, 2, 4, 6)]
    assert [[c["CustomerID"] for c in page["Customers"]] for page in pages] == [ids[0:2], ids[2:4], ids[4:], []]
    assert [page["HasNextPage"] for page in pages] == [True, True, False, False]
    everything = get_list(server.url)
    assert [c["CustomerID"] for c in everything["Customers"]] == ids and "HasNextPage" not in everything


def test_page_size_is_capped_and_the_data_shape_nests_the_list():
    with SandboxServer(api_key=KEY, max_page_size=2, list_shape="data") as sandbox:
        sandbox.state.add_customers([{"Name": f"C{i}"} for i in range(3)])
        answer = get_list(sandbox.url, Paging={"StartIndex": 0, "PageSize": 100})
        assert "Customers" not in answer and "HasNextPage" not in answer
        assert len(answer["Data"]["Customers"]) == 2 and answer["Data"]["HasNextPage"] is True


@pytest.mark.parametrize("paging", [{"StartIndex": -1, "PageSize": 2}, {"StartIndex": 0, "PageSize": 0},
                                    {"StartIndex": "x"}, [0, 2]])
def test_invalid_paging_is_a_failure_envelope(server, paging):
    answer = get_list(server.url, Paging=paging)
    assert answer["Status"] == "GeneralError" and "Paging" in answer["UserErrorMessage"]


def test_ignore_paging_answers_everything_and_may_claim_more(server, control):
    control.add_customers([{"Name": f"C{i}"} for i in range(3)])
    control.set_faults(ignore_paging=True)
    answer = get_list(server.url, Paging={"StartIndex": 2, "PageSize": 1})
    assert len(answer["Customers"]) == 3 and "HasNextPage" not in answer
    control.set_faults(ignore_paging_says_more=True)
    answer = get_list(server.url, Paging={"StartIndex": 2, "PageSize": 1})
    assert len(answer["Customers"]) == 3 and answer["HasNextPage"] is True


def test_raw_records_come_verbatim_after_the_customers_and_page_with_them(server, control):
    control.add_customers([{"Name": "A"}, {"Name": "B"}])
    hostile = [{"Name": "no id"}, {"CustomerID": 7, "Name": None, "Email": 5}, "not an object"]
    assert control.add_raw(hostile) == 3
    assert get_list(server.url)["Customers"][2:] == hostile
    page = get_list(server.url, Paging={"StartIndex": 1, "PageSize": 2})
    assert [c["Name"] for c in page["Customers"]] == ["B", "no id"] and page["HasNextPage"] is True
    assert [c["Name"] for c in control.customers()] == ["A", "B"]


# -- faults ---------------------------------------------------------------------------------


def test_fail_next_is_counted_and_filtered_by_endpoint(server, control):
    control.set_faults(fail_next={"count": 2, "status": 503, "endpoint": "getlist"})
    assert post(server.url, UPDATE_PATH, {"Credentials": CREDENTIALS, "Customer": {"Name": "A"}})[0] == 200
    statuses = [post(server.url, LIST_PATH, {"Credentials": CREDENTIALS})[0] for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert control.faults()["fail_next"]["count"] == 0


def test_fail_next_429_sends_retry_after_and_html_bodies_are_possible(server, control):
    control.set_faults(fail_next={"count": 1, "status": 429, "retry_after": 2})
    status, headers, text = post(server.url, LIST_PATH, {"Credentials": CREDENTIALS})
    assert status == 429 and headers["Retry-After"] == "2" and json.loads(text)
    control.set_faults(fail_next={"count": 1, "status": 502, "body": "html"})
    status, headers, text = post(server.url, LIST_PATH, {"Credentials": CREDENTIALS})
    assert status == 502 and "Retry-After" not in headers and text.startswith("<!DOCTYPE html>")


def test_faults_are_consumed_before_credentials_are_checked(server, control):
    control.set_faults(fail_next={"count": 1, "status": 500})
    assert post(server.url, LIST_PATH, {"Credentials": {"CompanyID": 1, "APIKey": "wrong"}})[0] == 500


@pytest.mark.parametrize("kind, starts", [("html", "<!DOCTYPE html>"), ("truncated", '{"Status": "Success"'),
                                          ("not_json", "Service temporarily unavailable")])
def test_malformed_answers_are_http_200_bodies_that_do_not_parse(server, control, kind, starts):
    control.set_faults(malformed_next={"count": 1, "kind": kind})
    status, _, text = post(server.url, LIST_PATH, {"Credentials": CREDENTIALS})
    assert status == 200 and text.startswith(starts)
    with pytest.raises(ValueError):
        json.loads(text)
    assert get_list(server.url)["Status"] == "Success"  # one request only


def test_malformed_missing_customers_is_a_valid_success_without_a_list(server, control):
    control.add_customers([{"Name": "A"}])
    control.set_faults(malformed_next={"count": 1, "kind": "missing_customers"})
    answer = get_list(server.url, Paging={"StartIndex": 0, "PageSize": 10})
    assert answer["Status"] == "Success" and "Customers" not in answer and "Customers" not in answer["Data"]


def test_drop_next_closes_the_connection_without_an_answer(server, control):
    control.set_faults(drop_next={"count": 1})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        post(server.url, LIST_PATH, {"Credentials": CREDENTIALS})
    assert get_list(server.url)["Status"] == "Success"
    assert [r["status"] for r in control.requests()] == [0, 200]


def test_drop_after_next_carries_the_request_out_then_loses_the_answer(server, control):
    control.set_faults(drop_after_next={"count": 1, "endpoint": "update"})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        post(server.url, UPDATE_PATH, {"Credentials": CREDENTIALS, "Customer": {"Name": "Created anyway"}})
    assert [c["Name"] for c in control.customers()] == ["Created anyway"]
    assert [r["status"] for r in control.requests()] == [0]


def test_hang_next_outlasts_a_client_timeout_then_answers_normally(server, control):
    control.set_faults(hang_next={"count": 2, "seconds": 0.4})
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        post(server.url, LIST_PATH, {"Credentials": CREDENTIALS}, timeout=0.1)
    started = time.monotonic()
    assert get_list(server.url)["Status"] == "Success"
    assert time.monotonic() - started >= 0.4


def test_latency_delays_every_api_answer_but_not_the_control_api():
    with SandboxServer(api_key=KEY, latency_ms=150) as sandbox:
        started = time.monotonic()
        SandboxControl(sandbox.url).customers()
        assert time.monotonic() - started < 0.15
        get_list(sandbox.url)
        assert time.monotonic() - started >= 0.15


# -- control API ----------------------------------------------------------------------------


def test_reset_empties_everything_and_restarts_ids(server, control):
    control.add_customers([{"Name": "A"}])
    control.add_raw([{"Name": "raw"}])
    control.set_faults(fail_next={"count": 5})
    assert control.reset([{"Name": "Seeded"}, {"CustomerID": "42", "Name": "Given"}]) == ["100001", "42"]
    assert control.faults() == {} and control.requests() == []
    assert [c["Name"] for c in get_list(server.url)["Customers"]] == ["Seeded", "Given"]


def test_upsert_by_id_delete_and_ids_skip_seeded_ones(server, control):
    assert control.add_customers([{"CustomerID": "100001", "Name": "Seeded"}, {"Name": "New"}]) == ["100001", "100002"]
    assert control.add_customers([{"CustomerID": "100001", "Name": "Replaced"}]) == ["100001"]
    assert [c["Name"] for c in control.customers()] == ["Replaced", "New"]
    assert control.delete(["100001", "nope"]) == 1
    assert [c["CustomerID"] for c in control.customers()] == ["100002"]


def test_knobs_merge_remove_and_reset_to_the_start_time_ones():
    with SandboxServer(api_key=KEY, ignore_paging=True) as sandbox:
        control = SandboxControl(sandbox.url)
        control.set_faults(latency_ms=1, reject_names=["X"])
        assert control.set_faults(reject_names=None) == {"ignore_paging": True, "latency_ms": 1}
        assert control.clear_faults() == {"ignore_paging": True}


@pytest.mark.parametrize("knobs, words", [
    ({"fail_nxt": {"count": 1}}, "unknown knob 'fail_nxt'"),
    ({"malformed_next": {"kind": "xml"}}, "malformed_next.kind"),
    ({"fail_next": {"count": 1, "status": 200}}, "fail_next.status"),
    ({"drop_next": {"count": -1}}, "drop_next.count"),
    ({"hang_next": {"secs": 1}}, "hang_next has no field secs"),
    ({"latency_ms": "slow"}, "latency_ms"),
])
def test_bad_knobs_are_refused_with_the_reason(control, knobs, words):
    with pytest.raises(SandboxControlError, match=re.escape(words)):
        control.set_faults(**knobs)
    assert control.faults() == {}


def test_bad_control_input_is_http_400(server, control):
    with pytest.raises(SandboxControlError, match="HTTP 400"):
        control.add_customers(["not an object"])
    with pytest.raises(SandboxControlError, match="HTTP 400"):
        control.add_customers([{"CustomerID": 1.5, "Name": "float id"}])
    assert post(server.url, "/_sandbox/customers", raw=b"{oops")[0] == 400
    assert post(server.url, "/_sandbox/nothing-here", {})[0] == 404


def test_request_log_and_stats_never_hold_the_key(server, control):
    get_list(server.url)
    api(server.url, LIST_PATH, credentials={"CompanyID": 1000, "APIKey": "someone-elses-real-key"})
    push(server.url, {"Name": f"pasted {KEY} by mistake"})
    log = control.requests()
    assert [entry["path"] for entry in log] == [LIST_PATH, LIST_PATH, UPDATE_PATH]
    assert [entry["body"]["Credentials"]["APIKey"] for entry in log] == ["***"] * 3
    assert log[2]["body"]["Customer"]["Name"] == "pasted *** by mistake"
    assert KEY not in json.dumps(log) and "someone-elses-real-key" not in json.dumps(log)
    assert control.stats() == {LIST_PATH: 2, UPDATE_PATH: 1}


def test_stop_ends_idle_keep_alive_connections_promptly():
    sandbox = SandboxServer(api_key=KEY).start()
    host, port = sandbox.httpd.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=5)
    connection.request("GET", "/_sandbox/stats")
    assert connection.getresponse().read() == b"{}"  # the connection stays open (HTTP/1.1)
    started = time.monotonic()
    sandbox.stop()
    assert time.monotonic() - started < 1
    connection.close()


# -- HTTPS ----------------------------------------------------------------------------------


def test_https_sandbox_answers_a_client_that_trusts_its_ca(tmp_path):
    files = make_test_ca(tmp_path)
    with SandboxServer(api_key=KEY, tls_cert=files.server_cert, tls_key=files.server_key) as sandbox:
        assert re.fullmatch(r"https://127\.0\.0\.1:\d+", sandbox.url)
        assert SandboxControl(sandbox.url, cafile=files.ca_cert).add_customers([{"Name": "A"}]) == ["100001"]
        answer = requests.post(sandbox.url + LIST_PATH, json={"Credentials": CREDENTIALS}, verify=files.ca_cert,
                               timeout=5).json()
        assert answer["Status"] == "Success" and [c["Name"] for c in answer["Customers"]] == ["A"]
        localhost = sandbox.url.replace("127.0.0.1", "localhost")  # the certificate names both
        assert requests.post(localhost + LIST_PATH, json={"Credentials": CREDENTIALS}, verify=files.ca_cert,
                             timeout=5).json()["Status"] == "Success"


def test_a_client_refusing_the_certificate_costs_one_log_line_and_the_server_serves_on(tmp_path, capsys):
    files = make_test_ca(tmp_path)
    with SandboxServer(api_key=KEY, tls_cert=files.server_cert, tls_key=files.server_key) as sandbox:
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            requests.post(sandbox.url + LIST_PATH, json={"Credentials": CREDENTIALS}, timeout=5)  # system CAs
        answer = requests.post(sandbox.url + LIST_PATH, json={"Credentials": CREDENTIALS}, verify=files.ca_cert,
                               timeout=5).json()
        assert answer["Status"] == "Success"
        output, deadline = "", time.monotonic() + 2  # the refused handshake's thread logs on its own time
        while "TLS handshake" not in output and time.monotonic() < deadline:
            output += capsys.readouterr().err
            time.sleep(0.01)
    output += capsys.readouterr().err
    assert re.search(r"^TLS handshake with 127\.0\.0\.1 failed: \S+$", output, re.MULTILINE)
    assert output.count("TLS handshake") == 1 and KEY not in output


def test_tls_needs_both_a_certificate_and_a_key(tmp_path, capsys):
    files = make_test_ca(tmp_path)
    with pytest.raises(ValueError, match="tls_cert and tls_key go together"):
        SandboxServer(api_key=KEY, tls_cert=files.server_cert)
    with pytest.raises(ValueError, match="cannot serve TLS with certificate"):
        SandboxServer(api_key=KEY, tls_cert=files.server_cert, tls_key=files.ca_cert)
    with pytest.raises(SystemExit) as info:
        sandbox_main(["--tls-key", str(files.server_key)])
    assert info.value.code == 2 and "--tls-cert and --tls-key go together" in capsys.readouterr().err


# -- the process and its output -------------------------------------------------------------


def test_help_says_the_sandbox_serves_both_profiles_and_the_control_api(capsys):
    with pytest.raises(SystemExit) as info:
        sandbox_main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert info.value.code == 0
    assert "guide" in text and "rest" in text and "/_sandbox/" in text and "guide profile API." not in text
    assert "--tls-cert PATH" in text and "--tls-key PATH" in text


def test_process_serves_https_with_the_tls_flags(tmp_path):
    files = make_test_ca(tmp_path)
    with run_sandbox_process(api_key=KEY, tls_cert=files.server_cert, tls_key=files.server_key) as sandbox:
        assert re.fullmatch(r"https://127\.0\.0\.1:\d+", sandbox.url)
        assert sandbox.control.add_customers([{"Name": "A"}]) == ["100001"]  # it trusts the sandbox's certificate
        answer = requests.post(sandbox.url + LIST_PATH, json={"Credentials": CREDENTIALS}, verify=files.ca_cert,
                               timeout=5).json()
        assert [c["Name"] for c in answer["Customers"]] == ["A"]
    assert KEY not in sandbox.stderr() and sandbox.process.returncode == 0


def test_process_logs_each_request_without_the_key_and_stops_cleanly_on_sigterm():
    options = {"company_id": 1000, "api_key": KEY, "verbose": True, "seed_demo": 3, "status_style": "numeric"}
    with run_sandbox_process(**options) as sandbox:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sandbox.url)
        assert get_list(sandbox.url)["Status"] == 0 and len(get_list(sandbox.url)["Customers"]) == 3
        push(sandbox.url, {"Name": f"pasted {KEY} by mistake"})
        api(sandbox.url, LIST_PATH, credentials={"CompanyID": 1000, "APIKey": "someone-elses-real-key"})
        assert KEY not in json.dumps(sandbox.control.requests())
    output = sandbox.stderr()
    assert re.search(r"^POST /website/customers/getlist/ 200 \d+\.\dms ", output, re.MULTILINE)
    assert re.search(r"^POST /website/customers/update/ 200 \d+\.\dms ", output, re.MULTILINE)
    assert '"APIKey": "***"' in output and "pasted *** by mistake" in output
    assert KEY not in output and "someone-elses-real-key" not in output
    assert sandbox.process.returncode == 0


def test_process_takes_a_key_that_starts_with_a_dash():
    """Random test keys start with "-" one time in 64: never read as a flag."""
    key = "-" + KEY
    with run_sandbox_process(company_id=1000, api_key=key, seed_demo=2) as sandbox:
        answer = api(sandbox.url, LIST_PATH, credentials={"CompanyID": 1000, "APIKey": key})[1]
        assert len(answer["Customers"]) == 2  # the key was taken as given


def test_process_that_cannot_start_reports_its_stderr(tmp_path):
    seed = tmp_path / "customers.json"
    seed.write_text('{"not": "a list"}', encoding="utf-8")
    with pytest.raises(RuntimeError, match=r"(?s)did not start \(exit code 2\).*--seed-file .*customers"):
        with run_sandbox_process(seed_file=seed):
            pass


def test_process_seeds_from_a_file(tmp_path):
    seed = tmp_path / "customers.json"
    seed.write_text(json.dumps([{"Name": "מוסך הצפון", "TaxID": "012345678"}], ensure_ascii=False), encoding="utf-8")
    with run_sandbox_process(api_key=KEY, seed_file=seed, numeric_ids=True) as sandbox:
        assert sandbox.control.customers() == [{"CustomerID": 100001, "Name": "מוסך הצפון", "TaxID": "012345678"}]


# -- demo data ------------------------------------------------------------------------------


def test_demo_customers_are_deterministic_lazy_and_realistically_messy():
    records = list(demo_customers(1000))
    assert records == list(demo_customers(1000)) and records != list(demo_customers(1000, seed=1))
    assert next(iter(demo_customers(10**12)))  # lazy: nothing is built up front
    assert all("CustomerID" not in r and isinstance(r["TaxID"], str) and re.fullmatch(r"\d{9}", r["TaxID"])
               for r in records)
    assert any(r["TaxID"].startswith("0") for r in records)
    phones = {r["Phone"] for r in records}
    assert any(re.fullmatch(r"05\d-\d{7}", p) for p in phones) and any(re.fullmatch(r"\+9725\d{8}", p) for p in phones)
    assert any(re.fullmatch(r"05\d{8}", p) for p in phones) and "" in phones
    assert any('בע"מ' in r["Name"] for r in records) and any(r["Name"].isascii() for r in records)
    assert {"תל אביב", "Tel Aviv", "Haifa", "ירושלים"} <= {r["City"] for r in records}
    emails = [r["Email"] for r in records if r["Email"]]
    assert len(emails) > len(set(emails))  # duplicates across customers
    assert 0 < sum("Country" not in r for r in records) < 300 and all(r.get("Country", "IL") == "IL" for r in records)
    assert any("Segment" in r for r in records) and any("מקור" in r for r in records)


def test_demo_customers_are_cheap_enough_for_a_million():
    started = time.monotonic()
    assert sum(1 for _ in itertools.islice(demo_customers(1_000_000), 200_000)) == 200_000
    assert time.monotonic() - started < 2.5


# -- rate limit -----------------------------------------------------------------------------


def test_rate_limit_refuses_what_is_beyond_it_with_429_and_carries_nothing_out(server, control):
    control.set_faults(rate_limit=2, fail_next={"count": 1, "status": 503})
    answers = [post(server.url, UPDATE_PATH, {"Credentials": CREDENTIALS, "Customer": {"Name": f"C{i}"}})
               for i in range(4)]
    assert [a[0] for a in answers] == [503, 200, 429, 429]  # the refused ones took no counted fault
    status, headers, text = answers[2]
    assert headers["Retry-After"] == "1" and json.loads(text) == {"error": "429 Too Many Requests"}
    assert [c["Name"] for c in control.customers()] == ["C1"]  # the refused creates were not made
    assert [r["status"] for r in control.requests()] == [503, 200, 429, 429]
    assert control.faults()["rate_limit"] == 2  # control calls are not counted: none was refused


def test_rate_limit_is_a_bucket_of_one_seconds_worth_refilled_at_the_rate():
    from crmsync.sandbox.faults import FaultKnobs

    knobs = FaultKnobs({"rate_limit": 5})
    assert [knobs.admit(100.0) for _ in range(6)] == [True] * 5 + [False]  # a burst of 5, then refused
    assert [knobs.admit(100.1), knobs.admit(100.2), knobs.admit(100.2)] == [False, True, False]  # 5 a second
    assert [knobs.admit(200.0) for _ in range(6)] == [True] * 5 + [False]  # a long quiet refills 5, no more
    knobs.merge({"rate_limit": 0.5})  # slower than one a second: one at a time, every 2 s
    assert [knobs.admit(200.0), knobs.admit(201.0), knobs.admit(202.0)] == [True, False, True]
    knobs.merge({"rate_limit": 0.5})  # setting the knob again fills the bucket
    assert knobs.admit(202.0)
    knobs.merge({"rate_limit": None})
    assert all(knobs.admit(202.0) for _ in range(100))
    knobs.merge({"rate_limit": 1})
    assert [knobs.admit(300.0), knobs.admit(300.0)] == [True, False]
    knobs.reset()  # back to the start-time knobs: none
    assert knobs.admit(300.0) and knobs.admit(300.0)


@pytest.mark.parametrize("value", [0, -1, "5", True, [5], float("inf")])
def test_a_bad_rate_limit_is_refused_with_the_reason(control, value):
    with pytest.raises(SandboxControlError, match="rate_limit must be a positive number"):
        control.set_faults(rate_limit=value)
    assert control.faults() == {}


def test_rate_limit_flag_of_the_process(capsys):
    with run_sandbox_process(api_key=KEY, rate_limit=2) as sandbox:
        assert sandbox.control.faults() == {"rate_limit": 2.0}
        statuses = [post(sandbox.url, LIST_PATH, {"Credentials": CREDENTIALS})[0] for _ in range(3)]
        assert statuses == [200, 200, 429]
        assert sandbox.control.clear_faults() == {"rate_limit": 2.0}  # a start-time knob outlives a reset
    with pytest.raises(SystemExit) as info:
        sandbox_main(["--rate-limit", "0", "--port", "0"])
    assert info.value.code == 2 and "rate_limit must be a positive number" in capsys.readouterr().err
