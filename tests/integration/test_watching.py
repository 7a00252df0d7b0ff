"""crmsync seen from the tools data teams watch: the DAGs run through Airflow (`airflow dags
test`, a process of its own) with Airflow's openlineage provider writing to its file transport
and Airflow's metrics going to a real StatsD listener (a UDP socket on localhost). The events
and packets are read back: datasets and their direction per task, the facets with the run's
counts, the metric names with the run's counts, and no API key anywhere."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import API_KEY, airflow_cli, assert_no_key, ensure_schema, insert_local, rows, set_sumit_connection

CRM = [{"Name": f"Watched {i}", "Email": f"watched{i}@example.co.il", "City": "חיפה"} for i in range(7)]
LOCAL = ("Local Alpha", "Local Beta")


class StatsdListener:
    """A StatsD server as far as the packets go: every datagram on a UDP socket, kept."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.packets: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.packets.extend(line for line in data.decode("utf-8", "replace").splitlines() if line)

    def counters(self, prefix: str = "airflow.crmsync.") -> dict[str, int]:
        """Sum of every counter under ``prefix``: name (without the prefix) -> total."""
        totals: dict[str, int] = {}
        for packet in self.packets:
            name, _, rest = packet.partition(":")
            value, _, kind = rest.partition("|")
            if name.startswith(prefix) and kind.startswith("c"):
                key = name[len(prefix):]
                totals[key] = totals.get(key, 0) + int(float(value))
        return totals

    def timers(self, prefix: str = "airflow.crmsync.") -> set[str]:
        return {p.partition(":")[0][len(prefix):] for p in self.packets
                if p.startswith(prefix) and p.rpartition("|")[2].startswith("ms")}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def statsd():
    listener = StatsdListener()
    yield listener
    listener.close()


def watched(statsd: StatsdListener, events: Path) -> dict[str, str]:
    """The environment of a run the tools watch: the file transport and StatsD on localhost."""
    return {"AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(events),
                                                          "append": True}),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "crmsync-test",
            "AIRFLOW__METRICS__STATSD_ON": "True", "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(statsd.port), "AIRFLOW__METRICS__STATSD_PREFIX": "airflow"}


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def task_event(events: list[dict], job: str, kind: str) -> dict:
    found = [e for e in events if e["job"]["name"] == job and e["eventType"] == kind]
    assert found, f"no {kind} event for {job}: {[(e['job']['name'], e['eventType']) for e in events]}"
    return found[-1]


def datasets(event: dict, side: str) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in event[side]]


def wait_for(predicate, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_a_sync_tells_openlineage_what_each_task_read_and_wrote_and_statsd_its_counts(
        env, pg, sandbox, statsd, tmp_path, profile):
    sandbox.control.reset(CRM)
    ensure_schema(pg)
    for name in LOCAL:
        insert_local(pg, name, email=f"{name.split()[1].lower()}@local.example")
    events_file = tmp_path / "openlineage.jsonl"

    result = airflow_cli("dags", "test", "crm_bidirectional_sync", **watched(statsd, events_file))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    wait_for(lambda: "airflow.crmsync.run.success:1|c" in statsd.packets)

    events = read_events(events_file)
    pg_conn = json.loads(os.environ["AIRFLOW_CONN_CRM_POSTGRES"])
    table = (f"postgres://{pg_conn['host']}:{pg_conn['port']}", f"{pg_conn['schema']}.public.sumit_customers")
    sumit_url = urlsplit(json.loads(os.environ["AIRFLOW_CONN_SUMIT_DEFAULT"])["host"])
    sumit = (f"{sumit_url.scheme}://{sumit_url.hostname}:{sumit_url.port}",
             "customers/customers" if profile == "rest" else "customers")

    pull = task_event(events, "crm_bidirectional_sync.pull_from_crm", "COMPLETE")
    assert datasets(pull, "inputs") == [sumit] and datasets(pull, "outputs") == [table]
    counts = pull["run"]["facets"]["crmsync"]["counts"]
    assert counts["fetched"] == len(CRM) and counts["created"] == len(CRM)
    written = pull["outputs"][0]
    assert written["outputFacets"]["outputStatistics"]["rowCount"] == len(CRM)
    columns = {f["name"]: f["type"] for f in written["facets"]["schema"]["fields"]}
    assert columns["email"] == "text" and columns["id"] == "bigint" and "sumit_customer_id" in columns

    push = task_event(events, "crm_bidirectional_sync.push_changed", "COMPLETE")
    assert datasets(push, "inputs") == [table] and datasets(push, "outputs") == [sumit]
    assert push["run"]["facets"]["crmsync"]["counts"]["pushed"] == len(LOCAL)
    [total] = rows(pg, "SELECT count(*) FROM sumit_customers")[0]
    assert push["inputs"][0]["inputFacets"]["dataQualityMetrics"]["rowCount"] == total == len(CRM) + len(LOCAL)
    prepare = task_event(events, "crm_bidirectional_sync.prepare_customers_table", "COMPLETE")
    assert prepare["inputs"] == [] and prepare["outputs"] == []
    assert_no_key(events_file.read_text(encoding="utf-8"), "the OpenLineage events")

    counted = statsd.counters()
    assert counted["pull.fetched"] == len(CRM) and counted["pull.created"] == len(CRM)
    assert counted["push.pushed"] == len(LOCAL) and counted["run.success"] == 1
    assert counted["pull.sumit_requests"] >= 1 and counted["push.sumit_requests"] >= len(LOCAL)
    assert {"pull.duration", "pull.read_duration", "pull.merge_duration", "push.duration",
            "push.push_duration", "prepare.duration"} <= statsd.timers()
    assert "push.failed" not in counted and "task.failed" not in counted
    assert_no_key("\n".join(statsd.packets), "the StatsD packets")


def test_a_failing_run_emits_fail_with_its_datasets_and_counts_the_failure(guide_env, pg, sandbox, statsd, tmp_path):
    sandbox.control.reset(CRM)
    wrong = "wrong-" + API_KEY[::-1]
    set_sumit_connection(sandbox.url, api_key=wrong)
    events_file = tmp_path / "openlineage.jsonl"

    result = airflow_cli("dags", "test", "crm_pull_customers", **watched(statsd, events_file))
    assert result.returncode == 1
    wait_for(lambda: "airflow.crmsync.run.failed:1|c" in statsd.packets)

    failed = task_event(read_events(events_file), "crm_pull_customers.pull_from_crm", "FAIL")
    assert [d["name"] for d in failed["inputs"]] == ["customers"]
    assert [d["name"].rpartition(".")[2] for d in failed["outputs"]] == ["sumit_customers"]
    assert "refused the credentials" in failed["run"]["facets"]["errorMessage"]["message"]
    text = events_file.read_text(encoding="utf-8")
    assert_no_key(text, "the OpenLineage events")
    assert_no_key(text, "the OpenLineage events", key=wrong)
    counted = statsd.counters()
    assert counted["task.failed"] == 1 and counted["run.failed"] == 1 and "pull.created" not in counted
    assert counted["pull.sumit_requests"] == 1  # refused credentials are not retried


def test_without_a_transport_or_statsd_a_run_sends_nothing_and_logs_no_lineage(guide_env, sandbox, statsd):
    sandbox.control.reset(CRM)
    result = airflow_cli("dags", "test", "crm_pull_customers")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "openlineage" not in (result.stdout + result.stderr).lower()
    assert statsd.packets == []


def test_the_receiver_counts_triggers_received_stored_and_refused(rest_env, pg, sandbox, dagbag, statsd, monkeypatch):
    """The api-server's own metrics client, as its lifespan sets it up, with StatsD on."""
    import secrets

    import httpx
    from airflow._shared.observability.metrics import stats
    from airflow._shared.observability.metrics.base_stats_logger import NoStatsLogger
    from airflow.api_fastapi.app import _initialize_api_server_stats

    from console_server import ConsoleServer

    for name, value in watched(statsd, Path("/dev/null")).items():
        if name.startswith("AIRFLOW__METRICS__"):
            monkeypatch.setenv(name, value)
    token = secrets.token_urlsafe(24)
    ensure_schema(pg)
    with ConsoleServer(pg, dagbag, webhook_token=token) as server:
        _initialize_api_server_stats()
        try:
            url = f"{server.console_url}/webhooks/sumit"
            answers = [httpx.post(f"{url}/{token}", json={"EntityID": 5, "Type": "Update"}, timeout=30),
                       httpx.post(f"{url}/{token}", json={"EntityID": 5, "Type": "Update"}, timeout=30),
                       httpx.post(f"{url}/{token}", json={"Type": "Update"}, timeout=30),
                       httpx.post(f"{url}/{token}x", json={"EntityID": 6}, timeout=30)]
        finally:
            stats.initialize(factory=NoStatsLogger, export_legacy_names=True)
    assert [a.status_code for a in answers] == [202, 202, 400, 404]
    wait_for(lambda: statsd.counters().get("receiver.refused.token") == 1)
    counted = statsd.counters()
    assert counted["receiver.received"] == 3 and counted["receiver.stored"] == 1
    assert counted["receiver.collapsed"] == 1 and counted["receiver.refused.malformed"] == 1
    assert "airflow.crmsync.receiver.inbox_pending:1|g" in statsd.packets
    assert not any(token in packet for packet in statsd.packets)
