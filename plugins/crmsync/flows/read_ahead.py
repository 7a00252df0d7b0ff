"""Produce the next items in a background thread while the caller works on this one."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def read_ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Yield ``items`` while a background thread already produces the next ``depth`` of them.

    The pull fetches, decodes and encodes page n+1 this way while the database merges page n.
    At most ``depth`` + 2 items exist at once. An error in the producing thread is raised
    here, at the item it would have been; when the consumer stops early the thread stops at
    its next item.
    """
    slots: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as error:  # handed to the consumer, raised there
            put(("error", error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:  # a generator: let it release what it holds now
                close()

    worker = threading.Thread(target=produce, name="crmsync-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()

