"""SUMIT over HTTPS, as production is: the sandbox serves TLS with a certificate authority the
test makes, and the sumit connection's HTTP extras (verify, proxies, trust_env), applied by
the http provider's HttpHook, decide whether crmsync trusts it.

- by default (the system's authorities) the certificate is refused, at once, with a message
  naming the connection and the TLS problem, and nothing is sent;
- ``"verify": "<CA file>"`` connects, and retries, paging and key redaction work as over HTTP;
- the same through Airflow: a DAG run over HTTPS, and one refused.
"""

from __future__ import annotations

import http.client
import json
import logging
import secrets
import socket
import socketserver
import threading
import urllib.parse

import pytest
import requests

from conftest import API_KEY, COMPANY_ID, assert_no_key, set_sumit_connection
from crmsync.core.errors import ConfigurationError, SumitAuthError, SumitPermanentError, SumitTransientError
from crmsync.core.model import LocalCustomer
from crmsync.hooks.sumit import SumitHook
from crmsync.sandbox import SandboxServer
from crmsync.sandbox.control import run_sandbox_process
from crmsync.testing.tls import make_test_ca
from test_sumit_hook import connection_hook

KEY = "tls-key-" + secrets.token_hex(8)
LIST_PATH = {"guide": "/website/customers/getlist/", "rest": "/crm/data/listentities/"}
FAST = {"backoff_initial": 0.01, "backoff_max": 0.2, "max_attempts": 4, "read_timeout": 2, "connect_timeout": 2,
        "page_size": 10, "customers_folder": "customers"}


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_test_ca(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def https_server(tls):
    with SandboxServer(company_id=1000, api_key=KEY, tls_cert=str(tls.server_cert), tls_key=str(tls.server_key)) as server:
        yield server


@pytest.fixture(params=["guide", "rest"])
def profile(request):
    return request.param


def hook_for(monkeypatch, url, *, api_key=KEY, **extra) -> SumitHook:
    return connection_hook(monkeypatch, url, api_key=api_key, **{**FAST, **extra})


def pulled_ids(hook):
    return [c.sumit_id for page in hook.iter_customer_pages() for c in page.customers]


def test_the_sandbox_serves_https(https_server):
    assert https_server.url.startswith("https://127.0.0.1:")


def test_by_default_an_unknown_certificate_authority_is_refused_at_once_naming_connection_and_problem(
        https_server, monkeypatch, profile):
    https_server.state.upsert({"Name": "A"})
    hook = hook_for(monkeypatch, https_server.url, api_profile=profile)
    with pytest.raises(SumitPermanentError) as info:
        pulled_ids(hook)
    message = str(info.value)
    assert hook.sumit_conn_id in message and https_server.url in message
    assert "TLS certificate" in message and "refused" in message
    assert "unable to get local issuer certificate" in message or "self-signed" in message
    assert '"verify"' in message  # what to set
    assert KEY not in message
    assert https_server.state.log == []  # nothing reached the API: the handshake failed, and no retry was made


def test_verify_with_the_ca_file_connects_pages_and_retries(https_server, tls, monkeypatch, profile):
    for i in range(25):
        https_server.state.upsert({"Name": f"C{i}"})
    https_server.state.set_knobs({"fail_next": {"count": 2, "status": 503, "retry_after": 0}})
    # one page at a time: the exact calls are counted (read ahead, up to 7 more would go past the end)
    hook = hook_for(monkeypatch, https_server.url, api_profile=profile, verify=str(tls.ca_cert), read_concurrency=1)
    assert pulled_ids(hook) == [str(100001 + i) for i in range(25)]
    assert [e["status"] for e in https_server.state.log] == [503, 503, 200, 200, 200]
    assert {e["path"] for e in https_server.state.log} == {LIST_PATH[profile]}


def test_over_https_the_key_travels_only_in_the_body_and_never_in_a_message(https_server, tls, monkeypatch):
    hook = hook_for(monkeypatch, https_server.url, verify=str(tls.ca_cert), api_profile="guide",
                    **{"X-Request-Source": "crmsync-test"})
    session = hook.get_conn()
    assert session.auth is None  # HttpHook would make login/password an Authorization header
    assert KEY not in json.dumps(dict(session.headers))
    assert session.headers["X-Request-Source"] == "crmsync-test"  # other extras are headers, as on HTTP connections
    assert not {"api_profile", "page_size", "customers_folder", "max_attempts"} & set(session.headers)
    assert session.verify == str(tls.ca_cert)

    wrong = hook_for(monkeypatch, https_server.url, api_key=KEY + "-wrong", verify=str(tls.ca_cert))
    with pytest.raises(SumitAuthError) as info:
        pulled_ids(wrong)
    assert KEY not in str(info.value)
    assert KEY not in json.dumps(https_server.state.requests())


def test_verify_false_connects_to_any_certificate(https_server, monkeypatch):
    https_server.state.upsert({"Name": "A"})
    with pytest.warns(Warning, match="Unverified HTTPS request"):
        assert pulled_ids(hook_for(monkeypatch, https_server.url, verify=False)) == ["100001"]


def test_a_ca_file_that_is_not_there_is_a_configuration_error_before_any_call(https_server, monkeypatch):
    hook = hook_for(monkeypatch, https_server.url, verify="/nonexistent/company-ca.pem")
    with pytest.raises(ConfigurationError, match=r"extra.verify .*'/nonexistent/company-ca.pem'.* not a readable file"):
        pulled_ids(hook)
    assert https_server.state.log == []


def test_proxies_and_trust_env_reach_the_session(https_server, tls, monkeypatch):
    https_server.state.upsert({"Name": "A"})
    dead_proxy = "http://127.0.0.1:9"  # nothing listens there
    via_proxy = hook_for(monkeypatch, https_server.url, verify=str(tls.ca_cert), max_attempts=1,
                         proxies={"https": dead_proxy})
    with pytest.raises(SumitTransientError):
        pulled_ids(via_proxy)
    assert https_server.state.log == []  # the request went to the proxy, not to SUMIT

    monkeypatch.setenv("HTTPS_PROXY", dead_proxy)
    monkeypatch.setenv("NO_PROXY", "")
    with pytest.raises(SumitTransientError):
        pulled_ids(hook_for(monkeypatch, https_server.url, verify=str(tls.ca_cert), max_attempts=1))
    ignoring_env = hook_for(monkeypatch, https_server.url, verify=str(tls.ca_cert), trust_env=False)
    assert pulled_ids(ignoring_env) == ["100001"]


class ForwardProxy:
    """A forward HTTP proxy, as companies run one: a plain-HTTP request arrives with the whole URL
    on its request line and is passed on; HTTPS goes through a CONNECT tunnel. It records each
    request line."""

    def __init__(self):
        self.lines: list[str] = []
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self):
                while head := self.rfile.readline().decode("latin-1").strip():  # requests kept alive, one by one
                    proxy.lines.append(head)
                    method, target, _ = head.split(" ", 2)
                    headers = {}
                    while (line := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                        name, value = line.decode("latin-1").split(":", 1)
                        headers[name.strip()] = value.strip()
                    if method == "CONNECT":
                        host, port = target.rsplit(":", 1)
                        self.tunnel(socket.create_connection((host, int(port)), timeout=10))
                        return
                    url = urllib.parse.urlsplit(target)  # the whole URL: a proxy's request line
                    body = self.rfile.read(int(headers.get("Content-Length", 0)))
                    upstream = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
                    upstream.request(method, url.path, body=body, headers={
                        k: v for k, v in headers.items() if k.lower() not in ("connection", "proxy-connection")})
                    answer = upstream.getresponse()
                    data = answer.read()
                    upstream.close()
                    kept = [(k, v) for k, v in answer.getheaders()
                            if k.lower() not in ("connection", "content-length", "transfer-encoding")]
                    self.wfile.write(f"HTTP/1.1 {answer.status} {answer.reason}\r\n".encode("latin-1")
                                     + "".join(f"{k}: {v}\r\n" for k, v in kept).encode("latin-1")
                                     + f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
                    self.wfile.flush()

            def tunnel(self, upstream):
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()

                def copy(source, target):
                    try:
                        while data := source.recv(65536):
                            target.sendall(data)
                    except OSError:
                        pass
                    for end in (source, target):
                        try:
                            end.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass

                back = threading.Thread(target=copy, args=(upstream, self.connection), daemon=True)
                back.start()
                copy(self.connection, upstream)
                back.join(5)
                upstream.close()

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def forward_proxy():
    proxy = ForwardProxy()
    yield proxy
    proxy.close()


def test_a_forward_proxy_carries_pulls_and_pushes_over_http_and_https(https_server, tls, forward_proxy, monkeypatch):
    """A proxy that works: plain HTTP reaches it with the whole URL on the request line, HTTPS
    through a CONNECT tunnel; pages, pushes and answers go both ways, every request by the proxy."""
    with SandboxServer(company_id=1000, api_key=KEY) as plain:
        for server in (plain, https_server):
            for name in ("A", "B", "C"):
                server.state.upsert({"Name": name})
        over_http = hook_for(monkeypatch, plain.url, api_profile="guide", page_size=2,
                             proxies={"http": forward_proxy.url}, trust_env=False)
        assert pulled_ids(over_http) == ["100001", "100002", "100003"]
        pushed = over_http.push_customer(LocalCustomer(id=7, sumit_id=None, fields={"name": "D"}, fingerprint="f"))
        assert pushed.sumit_id == "100004"
        over_http.close()
        plain_lines = list(forward_proxy.lines)
        # Every request by the proxy, each with the whole URL (pages read ahead included), the push last.
        assert len(plain_lines) == len(plain.state.log) >= 3
        assert all(line.startswith(f"POST {plain.url}/website/customers/") for line in plain_lines)
        assert plain_lines[-1] == f"POST {plain.url}/website/customers/update/ HTTP/1.1"
        assert plain.state.customers["100004"]["Name"] == "D"

        over_https = hook_for(monkeypatch, https_server.url, api_profile="guide", page_size=2, verify=str(tls.ca_cert),
                              proxies={"https": forward_proxy.url}, trust_env=False)
        assert pulled_ids(over_https) == ["100001", "100002", "100003"]
        over_https.close()
        tunnels = forward_proxy.lines[len(plain_lines):]
        assert tunnels and all(line.startswith(f"CONNECT {https_server.url.split('//')[1]} ") for line in tunnels)
        assert len(https_server.state.log) >= 2


def test_a_client_certificate_is_presented_from_the_extra(tls, monkeypatch):
    """``cert`` reaches requests: a missing file is named before any call."""
    hook = hook_for(monkeypatch, "https://127.0.0.1:9", cert=[str(tls.server_cert), "/nonexistent/key.pem"])
    with pytest.raises(ConfigurationError, match=r"extra.cert\[1\] \(its key\)"):
        hook.get_conn()
    hook = hook_for(monkeypatch, "https://127.0.0.1:9", cert=[str(tls.server_cert), str(tls.server_key)])
    assert hook.get_conn().cert == (str(tls.server_cert), str(tls.server_key))


# -- through Airflow ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def https_sandbox(tls):
    with run_sandbox_process(company_id=COMPANY_ID, api_key=API_KEY, tls_cert=str(tls.server_cert),
                             tls_key=str(tls.server_key)) as server:
        yield server


def last_run(pg):
    with pg.connect() as conn:
        return conn.execute("SELECT status, fetched, created, message FROM crm_sync_runs ORDER BY id DESC LIMIT 1"
                            ).fetchone()


def test_a_pull_dag_over_https_with_the_ca_file(pg, env, profile, https_sandbox, tls, run_dag, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    https_sandbox.control.reset([{"Name": f"Customer {i}"} for i in range(120)])
    https_sandbox.control.set_faults(fail_next={"count": 1, "status": 503, "retry_after": 0})
    set_sumit_connection(https_sandbox.url, verify=str(tls.ca_cert), read_concurrency=1)  # calls counted below
    assert run_dag("crm_pull_customers") == "success"
    assert last_run(pg)[:3] == ("success", 120, 120)
    statuses = [r["status"] for r in https_sandbox.control.requests()]
    assert statuses[0] == 503 and statuses[1:] == [200] * (120 // 50 + 1)  # retried, then pages of 50
    # Everything the run wrote, wherever it went: stdout, stderr, log records, the sandbox's own output.
    out, err = capfd.readouterr()
    everything = {"stdout": out, "stderr": err, "log records": caplog.text,
                  "the sandbox's stderr": https_sandbox.stderr()}
    assert "Counts: fetched=120 created=120" in out + err + caplog.text  # the run's output was captured
    for where, text in everything.items():
        assert_no_key(text, where)


def test_a_pull_dag_refuses_an_unknown_certificate_and_says_so(pg, guide_env, https_sandbox, run_dag):
    https_sandbox.control.reset([{"Name": "A"}])
    set_sumit_connection(https_sandbox.url)
    assert run_dag("crm_pull_customers") == "failed"
    status, _, _, message = last_run(pg)
    assert status == "failed"
    assert "'sumit_default'" in message and "TLS certificate" in message and "refused" in message
    assert https_sandbox.control.requests() == []
