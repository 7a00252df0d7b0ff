"""hooks.paging.PageWindow: listing pages requested ahead, handed over in order, a bounded few at once."""

from __future__ import annotations

import threading
import time

import pytest

from crmsync.hooks.paging import PageWindow


class Pages:
    """A fake listing read: fetch(start) answers ``start`` after ``delay(start)`` seconds."""

    def __init__(self, delay=lambda start: 0.0, fail_at: int | None = None):
        self.delay, self.fail_at = delay, fail_at
        self.lock = threading.Lock()
        self.started: list[int] = []
        self.running = self.most_running = 0

    def __call__(self, start: int, cancelled: threading.Event) -> int:
        with self.lock:
            self.started.append(start)
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            time.sleep(self.delay(start))
            if start == self.fail_at:
                raise ConnectionError(f"page at {start} failed")
            return start
        finally:
            with self.lock:
                self.running -= 1


def read(window: PageWindow, count: int, step: int = 10) -> list[int]:
    got = [window.get(0, None, ahead=count - 1)]
    for n in range(1, count):
        got.append(window.get(n * step, step, ahead=count - 1 - n))
    return got


def test_pages_come_in_listing_order_whatever_order_they_are_answered_in():
    pages = Pages(delay=lambda start: 0.04 * (3 - (start // 10) % 4))
    with PageWindow(pages, 4) as window:
        assert read(window, 12) == list(range(0, 120, 10))
    assert pages.most_running >= 3


def test_concurrency_1_fetches_each_page_when_asked_in_the_callers_thread():
    callers = []
    with PageWindow(lambda start, _: callers.append(threading.current_thread()) or start, 1) as window:
        assert read(window, 5) == [0, 10, 20, 30, 40]
        assert window.requested == 5
    assert set(callers) == {threading.current_thread()}


def test_never_more_than_concurrency_requests_out_and_none_past_ahead():
    pages = Pages(delay=lambda start: 0.01)
    with PageWindow(pages, 3) as window:
        for n, expected in enumerate(read(window, 8)):
            assert expected == n * 10
        assert window.outstanding == 0  # ahead shrank to 0 at the last page: nothing past it
    assert pages.most_running <= 3 and sorted(pages.started) == list(range(0, 80, 10))


def test_a_wrong_guess_is_dropped_and_the_right_page_requested():
    pages = Pages()
    with PageWindow(pages, 4) as window:
        window.get(0, None, ahead=10)
        assert window.get(10, 10, ahead=10) == 10  # 20, 30, 40 requested on speculation
        assert window.get(17, 7, ahead=10) == 17  # page 2 held 7: 20 was the wrong start
        assert window.get(24, 7, ahead=10) == 24


def test_an_error_is_raised_at_its_page_and_close_waits_for_the_rest():
    pages = Pages(delay=lambda start: 0.05, fail_at=20)
    window = PageWindow(pages, 4)
    assert window.get(0, None, ahead=10) == 0
    assert window.get(10, 10, ahead=10) == 10
    with pytest.raises(ConnectionError, match="page at 20"):
        window.get(20, 10, ahead=10)
    window.close()
    assert window.cancelled.is_set() and pages.running == 0  # nothing still under way after close
