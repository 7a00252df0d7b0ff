import pytest

from crmsync.core.errors import ConfigurationError, SumitAuthError, SumitPermanentError
from crmsync.core.summary import (DEFAULT_MAX_REJECT_RATIO, DEFAULT_MIN_REJECTS_TO_FAIL, FAILED, SUCCESS, WARNING, SyncCounts,
                             run_status, summary_line)
from crmsync.sumit.api.base import check_envelope, is_success
from crmsync.sumit.connection import SumitSettings
from crmsync.sumit.redact import redact

KEY = "sk-live-7f3a9c"


def settings(**overrides):
    args = dict(host="http://127.0.0.1:9", login="1000", password=KEY, extra={"api_profile": "guide"})
    args.update(overrides)
    return SumitSettings.from_connection("sumit_default", **args)


def test_connection_fields_become_settings():
    s = settings(extra={"api_profile": "guide", "page_size": "250", "push_concurrency": 4, "read_timeout": 5})
    assert (s.base_url, s.company_id, s.page_size, s.push_concurrency, s.read_timeout) == ("http://127.0.0.1:9", 1000, 250, 4, 5.0)
    assert KEY not in repr(s)


def test_read_concurrency_defaults_to_8_and_takes_1_to_16():
    assert settings().read_concurrency == 8
    assert settings(extra={"read_concurrency": "1"}).read_concurrency == 1
    assert settings(extra={"read_concurrency": 16}).read_concurrency == 16


def test_host_without_scheme_gets_https_and_default_host_is_production():
    assert settings(host="api.sumit.co.il").base_url == "https://api.sumit.co.il"
    assert settings(host=None).base_url == "https://api.sumit.co.il"


@pytest.mark.parametrize(
    "overrides, words",
    [
        ({"password": ""}, "has no password"),
        ({"login": "acme"}, "numeric SUMIT CompanyID, got 'acme'"),
        ({"login": None}, "CompanyID, got empty"),
        ({"host": "ftp://x"}, "not an http(s) URL"),
        ({"host": "http://"}, "not an http(s) URL"),
        ({"extra": {"api_profile": "soap"}}, "supported profiles: guide"),
        ({"extra": {"page_size": "many"}}, "page_size must be a number"),
        ({"extra": {"max_attempts": 0}}, "max_attempts must be positive"),
        ({"extra": {"read_concurrency": 0}}, "read_concurrency must be positive"),
        ({"extra": {"read_concurrency": 17}}, "read_concurrency must be between 1 and 16, got 17"),
        ({"extra": {"read_concurrency": "two"}}, "read_concurrency must be a number"),
        ({"extra": "{not json"}, "extra is not valid JSON"),
    ],
)
def test_bad_connections_are_explained_without_the_key(overrides, words):
    with pytest.raises(ConfigurationError) as info:
        settings(**overrides)
    assert words in str(info.value)
    assert "sumit_default" in str(info.value)
    assert KEY not in str(info.value)


def test_success_is_the_string_or_zero():
    assert is_success("Success") and is_success(0) and is_success("0")
    assert not is_success(1) and not is_success("GeneralError") and not is_success(None) and not is_success(False)


def test_envelope_failures_are_classified():
    with pytest.raises(SumitAuthError, match="Invalid credentials"):
        check_envelope({"Status": 1, "UserErrorMessage": "Invalid credentials"}, "/x/")
    with pytest.raises(SumitPermanentError, match="name is required") as info:
        check_envelope({"Status": "GeneralError", "UserErrorMessage": "Customer name is required"}, "/x/")
    assert not isinstance(info.value, SumitAuthError)


def test_redact_removes_every_secret():
    assert redact(f"key={KEY} again {KEY}", [KEY, None, ""]) == "key=*** again ***"


def test_status_and_guide_wording():
    counts = SyncCounts(fetched=120, pushed=8, failed=2)
    assert run_status(counts, phase_failed=False) == WARNING
    assert run_status(SyncCounts(fetched=3), phase_failed=False) == SUCCESS
    assert run_status(SyncCounts(), phase_failed=True) == FAILED
    assert summary_line("bidirectional", counts, status=WARNING) == "Bidirectional sync completed. Pulled: 120, Pushed: 8 (Failed: 2), Changed: 0"
    assert summary_line("pull", counts, status=FAILED).startswith("Pull failed. Pulled: 120")
    assert summary_line("push", counts, status=SUCCESS, dry_run=True).startswith("[dry run")


def test_counts_merge_and_cap_reasons():
    a = SyncCounts(fetched=1, reasons=["r1"])
    b = SyncCounts(fetched=2, pushed=1, reasons=[f"r{i}" for i in range(10)])
    merged = a.merge(b)
    assert merged.fetched == 3 and merged.pushed == 1 and len(merged.reasons) == SyncCounts.MAX_REASONS
    assert SyncCounts.from_dict(merged.to_dict()) == merged


def verdict(counts, **options):
    return run_status(counts, phase_failed=False, max_reject_ratio=DEFAULT_MAX_REJECT_RATIO,
                      min_rejects=DEFAULT_MIN_REJECTS_TO_FAIL, **options)


def test_the_guides_partial_pull_is_a_warning():
    """A first pull of 4 CRM customers, one without CustomerID: the guide skips and reports it."""
    assert verdict(SyncCounts(fetched=4, created=3, skipped=1, considered=4)) == WARNING


def test_the_guides_partial_push_is_a_warning():
    """"Push completed with issues - Pushed 8 customers, 2 failed" is a notice, not a failure."""
    assert verdict(SyncCounts(pushed=8, failed=2, considered=10)) == WARNING


def test_most_of_a_real_batch_refused_is_red():
    assert verdict(SyncCounts(fetched=100, created=40, skipped=60, considered=100)) == FAILED
    assert verdict(SyncCounts(pushed=5, failed=15, considered=20)) == FAILED


def test_a_small_batch_is_not_red_for_a_few_rejects_nor_a_big_one_for_a_small_share():
    assert verdict(SyncCounts(pushed=0, failed=3, considered=3)) == WARNING  # all 3 refused: below the minimum
    assert verdict(SyncCounts(fetched=1000, skipped=400, considered=1000)) == WARNING  # 40%: not most


def test_fail_on_partial_makes_a_partial_run_red_and_a_clean_one_stays_green():
    assert verdict(SyncCounts(pushed=8, failed=2, considered=10), fail_on_partial=True) == FAILED
    assert verdict(SyncCounts(pushed=10, considered=10), fail_on_partial=True) == SUCCESS
