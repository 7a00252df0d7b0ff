"""Runs say how they went: CrmSyncNotifier, as the DAG files wire it, reports a failed run as a
failure, a partial one as a warning and a clean one as a success, through its file channel and
by e-mail to a real (local) SMTP server, never with the API key."""

from __future__ import annotations

import email
import email.policy
import html
import json
import os
import re
import secrets
import socketserver
import threading

import pytest

from conftest import API_KEY, _prepare, airflow_cli, set_sumit_connection

pytestmark = pytest.mark.usefixtures("guide_env")


@pytest.fixture
def notifications(tmp_path, monkeypatch):
    """Every notification of every type goes to a JSON-lines file; returns a reader of it."""
    path = tmp_path / "notifications.jsonl"
    monkeypatch.setenv("CRMSYNC_NOTIFY_FILE", str(path))
    monkeypatch.setenv("CRMSYNC_NOTIFY_ON", "success,warning,failure")
    monkeypatch.delenv("CRMSYNC_NOTIFY_EMAIL", raising=False)

    def read() -> list[dict]:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []

    return read


def test_a_failed_run_notifies_once_as_a_failure_naming_the_cause_without_the_key(sandbox, run_dag, notifications,
                                                                                     capfd):
    wrong_key = "wrong-" + secrets.token_hex(12)
    set_sumit_connection(sandbox.url, api_key=wrong_key)
    assert run_dag("crm_pull_customers") == "failed"

    # The report task's failure callback speaks; the DAG's failure callback runs, sees that, and stays silent.
    output = "".join(capfd.readouterr())
    assert "Executing on_failure dag callback: <crmsync.airflow_side.notifiers.CrmSyncNotifier" in output
    assert "Callback failed" not in output
    [note] = notifications()
    assert note["type"] == "failure" and note["dag_id"] == "crm_pull_customers"
    assert note["title"].startswith("crm_pull_customers: Pull failed. Pulled: 0")
    assert "refused the credentials" in note["body"] and note["run_id"] in note["body"]
    text = json.dumps(note)
    assert wrong_key not in text and API_KEY not in text


def test_a_partial_run_notifies_as_a_warning_by_file_and_email(pg, sandbox, run_dag, notifications, smtp_server,
                                                                monkeypatch):
    monkeypatch.setenv("CRMSYNC_NOTIFY_EMAIL", "ops@example.com, sales@example.com")
    refused = "{{ conn.sumit_default.password }} Ltd"  # CRM text that looks like a template
    ids = _local_customers(pg, "Good Customer", refused)
    sandbox.control.set_faults(reject_names=[refused])
    assert run_dag("crm_push_customers", {"customer_ids": ids, "max_reject_ratio": 1}) == "success"  # green, 1 refused

    [note] = notifications()
    assert note["type"] == "warning"
    assert note["title"] == "crm_push_customers: Push completed. Pushed: 1 (Failed: 1), Changed: 1"
    assert "failed=1" in note["body"] and refused in note["body"]

    [mail] = smtp_server.messages
    assert mail["rcpt"] == ["ops@example.com", "sales@example.com"]
    message = email.message_from_bytes(mail["data"], policy=email.policy.default)
    assert message["Subject"] == "[crmsync warning] crm_push_customers: Push completed. Pushed: 1 (Failed: 1), Changed: 1"
    body = message.get_body(("html", "plain")).get_content()
    assert "failed=1" in body and note["run_id"] in body
    # CRM text is sent as text, never rendered as a template (which would reveal the key).
    assert html.escape(refused) in body
    assert API_KEY not in mail["data"].decode("utf-8", "replace")


def test_a_clean_run_notifies_success_only_when_asked(sandbox, run_dag, notifications, monkeypatch):
    sandbox.control.add_customers([{"Name": "Galil Software"}])
    assert run_dag("crm_pull_customers") == "success"
    [note] = notifications()
    assert (note["type"], note["title"]) == ("success", "crm_pull_customers: Pull completed. Pulled: 1, Changed: 1")

    monkeypatch.delenv("CRMSYNC_NOTIFY_ON")  # the default: warnings and failures only
    assert run_dag("crm_pull_customers") == "success"
    assert len(notifications()) == 1


def test_a_run_that_fails_before_its_report_still_notifies(dagbag, notifications):
    """E.g. a run timeout: the DAG processor calls the DAG's failure callback with this context."""
    dag = dagbag.get_dag("crm_bidirectional_sync")
    dag.on_failure_callback({"dag": dag, "run_id": "scheduled__2026-11-25T01:00:00+00:00", "reason": "timed_out"})
    [note] = notifications()
    assert (note["type"], note["title"]) == ("failure", "crm_bidirectional_sync: run failed (timed_out)")
    assert "before the report task" in note["body"] and "scheduled__2026-11-25T01:00:00+00:00" in note["body"]


def test_a_failed_push_run_notifies_without_a_param_error(pg, sandbox, run_dag, notifications, capfd):
    """crm_push_customers has a required param: its DAG-level failure callback must still run."""
    ids = _local_customers(pg, "Good Customer")
    set_sumit_connection(sandbox.url, api_key="wrong-" + secrets.token_hex(8))
    assert run_dag("crm_push_customers", {"customer_ids": ids}) == "failed"
    output = "".join(capfd.readouterr())
    assert "Executing on_failure dag callback: <crmsync.airflow_side.notifiers.CrmSyncNotifier" in output
    assert "ParamValidationError" not in output and "Callback failed" not in output
    [note] = notifications()
    assert note["type"] == "failure" and note["title"].startswith("crm_push_customers: Push failed")


def test_a_failed_push_run_notifies_under_airflow_dags_test(pg, sandbox, tmp_path):
    """The same through the CLI, whose in-process runner builds the DAG callback's context itself."""
    ids = _local_customers(pg, "Good Customer")
    notes = tmp_path / "notes.jsonl"
    wrong = json.loads(os.environ["AIRFLOW_CONN_SUMIT_DEFAULT"])
    wrong["password"] = "wrong-" + secrets.token_hex(8)
    result = airflow_cli("dags", "test", "crm_push_customers", "-c", json.dumps({"customer_ids": ids}),
                         home=tmp_path, AIRFLOW_CONN_SUMIT_DEFAULT=json.dumps(wrong),
                         CRMSYNC_NOTIFY_FILE=str(notes), CRMSYNC_NOTIFY_ON="success,warning,failure")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "ParamValidationError" not in output and "Callback failed" not in output, output[-3000:]
    kinds = [json.loads(line)["type"] for line in notes.read_text(encoding="utf-8").splitlines()]
    assert kinds == ["failure"]


# The one verdict: Airflow's state, the crm_sync_runs row, the report's "Status:" line and the
# notification's type, for every way a run can end.
VERDICTS = {"success": ("success", "success", "success"), "warning": ("success", "warning", "warning"),
            "failed": ("failed", "failed", "failure")}


def _pull_with_invalid(sandbox, good: int, invalid: int) -> None:
    sandbox.control.add_customers([{"Name": f"Good {i}"} for i in range(good)])
    sandbox.control.add_raw([{"Name": f"No id {i}"} for i in range(invalid)])


def _push_with_refused(pg, sandbox, good: int, refused: int) -> list[int]:
    names = [f"Good {i}" for i in range(good)] + [f"Refused {i}" for i in range(refused)]
    sandbox.control.set_faults(reject_names=names[good:])
    return _local_customers(pg, *names)


def test_every_way_a_run_ends_gets_one_verdict_everywhere(pg, sandbox, run_dag, notifications, capfd):
    cases = [
        ("a clean pull", "success", lambda: (_pull_with_invalid(sandbox, 3, 0), ("crm_pull_customers", {}))[1]),
        # The guide: a pull "skips invalid records" and reports them.
        ("the guide's pull: 1 of 4 without CustomerID", "warning",
         lambda: (_pull_with_invalid(sandbox, 3, 1), ("crm_pull_customers", {}))[1]),
        # The guide: "Push completed with issues - Pushed 8 customers, 2 failed".
        ("the guide's push: 8 pushed, 2 refused", "warning",
         lambda: ("crm_push_customers", {"customer_ids": _push_with_refused(pg, sandbox, 8, 2)})),
        ("most of a real batch refused: 12 of 14", "failed",
         lambda: (_pull_with_invalid(sandbox, 2, 12), ("crm_pull_customers", {}))[1]),
        ("fail_on_partial with 1 of 4 refused", "failed",
         lambda: (_pull_with_invalid(sandbox, 3, 1), ("crm_pull_customers", {"fail_on_partial": True}))[1]),
        ("a failed phase: the key refused", "failed",
         lambda: (set_sumit_connection(sandbox.url, api_key="wrong-key-12345"), ("crm_pull_customers", {}))[1]),
    ]
    seen, messages = {}, {}
    for name, verdict, arrange in cases:
        _prepare(pg, sandbox, "guide")
        capfd.readouterr()
        before = len(notifications())
        dag_id, conf = arrange()
        state = run_dag(dag_id, conf)
        output = "".join(capfd.readouterr())
        with pg.connect() as conn:
            row = conn.execute("SELECT status, message FROM crm_sync_runs ORDER BY id DESC LIMIT 1").fetchone()
        log_status = re.findall(r"Status: (success|warning|failed)\b", output)
        notes = notifications()[before:]
        seen[name] = (state, row[0] if row else None, log_status[-1] if log_status else None,
                      [n["type"] for n in notes])
        messages[name] = row[1] if row else ""
        airflow_state, row_status, note_type = VERDICTS[verdict]
        assert seen[name] == (airflow_state, row_status, row_status, [note_type]), (name, seen[name], row)
    assert "Push completed. Pushed: 8 (Failed: 2)" in messages["the guide's push: 8 pushed, 2 refused"]
    assert ("12 of 14 records (85.7%) were skipped or refused, more than max_reject_ratio 50.0% "
            "(and at least min_rejects_to_fail 10)") in messages["most of a real batch refused: 12 of 14"]
    assert "fail_on_partial is set: 1 of 4 records were skipped or refused" in messages[
        "fail_on_partial with 1 of 4 refused"]
    assert "refused the credentials" in messages["a failed phase: the key refused"]


# -- a real SMTP server, just enough of RFC 5321 for smtplib ----------------------------------


class _SmtpHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        reply = lambda line: self.wfile.write(line.encode() + b"\r\n")  # noqa: E731
        reply("220 crmsync-test ESMTP")
        sender, recipients = None, []
        while line := self.rfile.readline():
            command = line.decode("utf-8", "replace").strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                reply("250 crmsync-test")
            elif verb == "MAIL":
                sender, recipients = command.split(":", 1)[1].strip(), []
                reply("250 OK")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip().strip("<>"))
                reply("250 OK")
            elif verb == "DATA":
                reply("354 end with .")
                data = bytearray()
                while (chunk := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                self.server.messages.append({"from": sender, "rcpt": recipients, "data": bytes(data)})
                reply("250 queued")
            elif verb == "QUIT":
                reply("221 bye")
                return
            else:  # RSET, NOOP
                reply("250 OK")


@pytest.fixture
def smtp_server(monkeypatch):
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpHandler)
    server.daemon_threads = True
    server.messages = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
        "conn_type": "smtp", "host": host, "port": port,
        "extra": {"from_email": "crmsync@example.com", "disable_ssl": True, "disable_tls": True, "retry_limit": 0},
    }))
    yield server
    server.shutdown()
    server.server_close()


def _local_customers(pg, *names: str) -> list[int]:
    from crmsync.db import sql

    with pg.connect() as conn:
        conn.execute(sql.load("schema"))
        return [conn.execute("INSERT INTO sumit_customers (name) VALUES (%s) RETURNING id", (name,)).fetchone()[0]
                for name in names]
