"""crmsync.flows.memory: freed memory a thread's allocator arena keeps is handed back to the system."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from crmsync.flows.memory import release_freed_memory

PAGE = os.sysconf("SC_PAGE_SIZE")


def _resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim, read from /proc")
def test_memory_a_thread_freed_goes_back_to_the_system():
    # As a pull's listing threads do: a thread allocates 60 MB in 60 KB blocks (below the size
    # glibc maps on its own) and frees them, keeping a 1 KB block (also the C allocator's: larger
    # than Python's small-object allocator serves) after each: the freed blocks cannot merge
    # into the free top of the arena, which glibc trims on its own, so they stay resident.
    kept: list[bytes] = []

    def allocate() -> None:
        blocks = []
        for _ in range(1000):
            blocks.append(os.urandom(60_000))
            kept.append(os.urandom(1024))
        blocks.clear()

    worker = threading.Thread(target=allocate)
    worker.start()
    worker.join()
    before = _resident_mb()
    assert release_freed_memory()
    after = _resident_mb()
    assert before - after > 30, f"resident {before:.0f} MB before, {after:.0f} MB after"
