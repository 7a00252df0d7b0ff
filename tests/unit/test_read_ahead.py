"""flows.read_ahead: the pull fetches page n+1 while page n is merged, holding few pages."""

from __future__ import annotations

import threading
import time

import pytest

from crmsync.flows.read_ahead import read_ahead


class Source:
    """Pages 0..n-1, recording how far the producer got; fails at ``fail_at`` if given."""

    def __init__(self, n: int, fail_at: int | None = None):
        self.n, self.fail_at = n, fail_at
        self.produced = 0
        self.closed = threading.Event()

    def __iter__(self):
        try:
            for i in range(self.n):
                if i == self.fail_at:
                    raise ConnectionError(f"page {i} could not be fetched")
                self.produced += 1
                yield i
        finally:
            self.closed.set()


def wait_until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_yields_every_item_in_order():
    assert list(read_ahead(iter(Source(50)))) == list(range(50))


def test_fetches_ahead_but_never_more_than_depth_plus_one_pages():
    source = Source(100)
    pages = read_ahead(iter(source), depth=2)
    assert next(pages) == 0
    wait_until(lambda: source.produced >= 4)
    time.sleep(0.2)  # give the producer every chance to run further ahead than it may
    # consumed 1; at most 2 waiting in the queue and 1 in the producer's hand
    assert source.produced == 4


def test_an_error_while_fetching_is_raised_where_that_page_would_have_been():
    seen = []
    with pytest.raises(ConnectionError, match="page 3 could not be fetched"):
        for page in read_ahead(iter(Source(10, fail_at=3))):
            seen.append(page)
    assert seen == [0, 1, 2]


def test_stopping_early_stops_the_fetching_thread():
    source = Source(1000)
    pages = read_ahead(iter(source))
    assert next(pages) == 0
    pages.close()  # the consumer failed or was cancelled
    wait_until(source.closed.is_set)
    assert source.closed.is_set() and source.produced < 5


def test_the_pull_puts_the_interpreter_settings_back_even_when_it_fails():
    import gc
    import sys

    from crmsync.flows.common import tuned_for_bulk_work

    interval, frozen = sys.getswitchinterval(), gc.get_freeze_count()
    with pytest.raises(RuntimeError):
        with tuned_for_bulk_work():
            assert sys.getswitchinterval() <= 0.001
            assert gc.get_freeze_count() > frozen  # the older objects are left alone meanwhile
            raise RuntimeError("the pull failed")
    assert (sys.getswitchinterval(), gc.get_freeze_count()) == (interval, frozen)
