"""Listing pages requested ahead of their turn, handed over in listing order (SumitHook's pull).

SUMIT's listings say only whether another page follows (``HasNextPage``), never how many, so
with ``read_concurrency`` > 1 the pages after the one being read are requested on speculation:
page n at ``start``, the next ones at ``start + step``, ``start + 2 * step``, ... where ``step``
is the length of the page before (what the server really sends per page, which may be less
than the page size asked for). :class:`PageWindow` keeps at most ``concurrency`` requests out
(the page waited for and those after it) and hands the pages over in listing order, whatever
order their answers come in: the caller (``SumitHook.iter_customer_pages``) keeps its guards
(a repeated page, an empty page that says more follow, ``max_pages``, the end of the listing)
exactly as a page-by-page read has them, and a page fetched too far is never looked at.

A request made for a start the listing turns out not to have (the page before was shorter
than the step, or said it was the last) is dropped: cancelled if it has not gone out, its
answer ignored if it has. On close every request not yet sent is cancelled, the ones under way
send no further try (``cancelled``), and close waits for them, so no request of this listing
reaches SUMIT afterwards. With ``concurrency`` 1 nothing is speculative and no thread is made:
each page is fetched when asked for, as before read_concurrency existed.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")


class PageWindow(Generic[T]):
    """``get(start, step, ahead)``: the page at ``start``, with up to ``ahead`` pages after it requested."""

    def __init__(self, fetch: Callable[[int, threading.Event], T], concurrency: int,
                 name: str = "crmsync-listing") -> None:
        self._fetch = fetch
        self.concurrency = max(1, int(concurrency))
        self.cancelled = threading.Event()  # set on close: requests under way send no further try
        self._pool = (ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=name)
                      if self.concurrency > 1 else None)
        self._window: deque[tuple[int, Future[T]]] = deque()  # (start, request), in listing order
        self.requested = 0  # pages requested, speculative ones included

    def get(self, start: int, step: int | None, ahead: int) -> T:
        """The page at ``start`` (its fetch's error raised here). Unless ``step`` is None, the
        ``ahead`` pages after it (at most concurrency - 1) are requested meanwhile, if not yet."""
        if self._pool is None:
            self.requested += 1
            return self._fetch(start, self.cancelled)
        window = self._window
        if window and window[0][0] != start:
            self._drop(0)  # speculated from a step the listing did not keep
        if not window:
            self._submit(start)
        _, head = window.popleft()
        ahead = max(0, min(ahead, self.concurrency - 1)) if step else 0
        expected, kept = start, 0
        for requested_start, _ in window:  # keep the requests that continue start, start + step, ...
            if kept >= ahead or requested_start != expected + (step or 0):
                break
            expected += step or 0
            kept += 1
        self._drop(kept)
        while len(window) < ahead:
            expected += step or 0
            self._submit(expected)
        return head.result()

    @property
    def outstanding(self) -> int:
        """Pages requested and not yet handed over (answered or not)."""
        return len(self._window)

    def close(self) -> None:
        """Cancel what has not gone out, let what has end after its current try, and wait for it."""
        self.cancelled.set()
        self._drop(0)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> PageWindow[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _submit(self, start: int) -> None:
        assert self._pool is not None
        self.requested += 1
        self._window.append((start, self._pool.submit(self._fetch, start, self.cancelled)))

    def _drop(self, keep: int) -> None:
        """Forget the requests after the first ``keep``: an answer that comes is ignored."""
        while len(self._window) > keep:
            _, future = self._window.pop()
            future.cancel()
