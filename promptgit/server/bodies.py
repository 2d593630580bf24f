"""Response bodies the raw read paths (fastpath.py, langfuse.py) keep, each with the
refs it was read at: bounded in number and in bytes, so no run of requests, however
many prompts, versions or spellings of them it names, grows the server's memory
past a fixed amount."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable

COUNT = 1024  # bodies kept
BYTES = 64 << 20  # and at most this many bytes of them in all
LARGEST = BYTES // 64  # a body larger than this is sent, never kept


class Bodies:
    """The bodies read lately, each under a key with the stamp (refs) it was read at;
    the least recently used go first."""

    def __init__(self, count: int = COUNT, size: int = BYTES) -> None:
        self.count, self.size = count, size
        self._kept: OrderedDict[Hashable, tuple[object, bytes]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, key: Hashable, stamp: object) -> bytes | None:
        """The body kept for `key`, if it was read at `stamp`."""
        hit = self._kept.get(key)
        if hit is None or hit[0] != stamp:
            return None
        self._kept.move_to_end(key)
        return hit[1]

    def put(self, key: Hashable, stamp: object, body: bytes) -> None:
        old = self._kept.pop(key, None)
        if old is not None:
            self._bytes -= len(old[1])
        if len(body) > min(LARGEST, self.size):
            return
        self._kept[key] = (stamp, body)
        self._bytes += len(body)
        while len(self._kept) > self.count or self._bytes > self.size:
            self._bytes -= len(self._kept.popitem(last=False)[1][1])
