"""Resource samples over an agent's process tree: CPU %, memory, disk used, network.

:class:`TreeSampler` takes one :class:`~.spec.MetricSample` (blocking, a few
milliseconds: run it in a thread); :func:`sample_until` takes one right away, then four a second
for the first two seconds (so a short run still draws a curve) and one about every second after
that until told to stop, so every run has at least one sample.

Network counters are known only when the agent has a network namespace of its own (the
bubblewrap sandbox without network): they are that namespace's interface totals. Elsewhere they
are None, since per-process traffic is not something the OS reports.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from vm0_notebook.contract import now_iso
from vm0_notebook.local.runtime.spec import MetricSample

INTERVAL_S = 1.0
# The first seconds are sampled faster, so that a run of a second or two still draws a curve.
EARLY_INTERVAL_S = 0.25
EARLY_S = 2.0
# Walking a big working folder is the costly part of a sample: redo it at most once per this
# many times the last walk took, so sampling never eats more than a few % of a core.
_DISK_COST_FACTOR = 20


class TreeSampler:
    """Samples the process tree rooted at ``pid`` and the size of ``workdir``.

    >>> sampler = TreeSampler(os.getpid(), Path("."))   # doctest: +SKIP
    >>> sampler.sample().memory_bytes > 0                # doctest: +SKIP
    True
    """

    def __init__(self, pid: int, workdir: Path, *, memory_limit: int | None = None) -> None:
        self.pid = pid
        self.workdir = Path(workdir)
        self.memory_limit = memory_limit
        self._root: psutil.Process | None
        try:
            self._root = psutil.Process(pid)
            self._last_time = self._root.create_time()
        except psutil.Error:
            self._root, self._last_time = None, time.time()
        self._last_cpu = 0.0
        self._disk = 0
        self._next_disk = 0.0
        self._own_netns = _netns(os.getpid())

    def sample(self) -> MetricSample:
        """One sample; a tree that is already gone gives zeros rather than an error."""
        procs = self._tree()
        now = time.time()
        cpu_total = memory = 0.0
        for proc in procs:
            try:
                with proc.oneshot():
                    t = proc.cpu_times()
                    cpu_total += t.user + t.system + t.children_user + t.children_system
                    memory += proc.memory_info().rss
            except psutil.Error:
                continue
        elapsed = max(now - self._last_time, 1e-3)
        # Times of processes that ended since the last sample vanish from the sum: clamp at 0.
        cpu = max(cpu_total - self._last_cpu, 0.0) / elapsed * 100.0
        self._last_cpu, self._last_time = cpu_total, now
        rx, tx = self._network(procs)
        return MetricSample(
            timestamp=now_iso(),
            cpu_percent=round(cpu, 2),
            memory_bytes=int(memory),
            disk_used_bytes=self._disk_used(),
            network_rx_bytes=rx,
            network_tx_bytes=tx,
            extra={
                "memory_total_bytes": self.memory_limit or psutil.virtual_memory().total,
                "disk_total_bytes": _disk_total(self.workdir),
                "processes": len(procs),
            },
        )

    def _tree(self) -> list[psutil.Process]:
        if self._root is None:
            return []
        try:
            return [self._root, *self._root.children(recursive=True)]
        except psutil.Error:
            return []

    def _disk_used(self) -> int:
        start = time.monotonic()
        if start >= self._next_disk:
            self._disk = folder_size(self.workdir)
            self._next_disk = start + (time.monotonic() - start) * _DISK_COST_FACTOR
        return self._disk

    def _network(self, procs: list[psutil.Process]) -> tuple[int | None, int | None]:
        for proc in procs:
            ns = _netns(proc.pid)
            if ns is not None and ns != self._own_netns:
                return _net_dev_totals(proc.pid)
        return None, None


async def sample_until(
    sampler: TreeSampler, emit: Callable[[MetricSample], None], stop: asyncio.Future[object]
) -> None:
    """Emit a sample now, then every :data:`EARLY_INTERVAL_S` for the first :data:`EARLY_S`
    seconds and every :data:`INTERVAL_S` after that, until ``stop`` is done."""
    started = time.monotonic()
    while True:
        sample = await asyncio.to_thread(sampler.sample)
        emit(sample)
        if stop.done():
            return
        early = time.monotonic() - started < EARLY_S
        await asyncio.wait([stop], timeout=EARLY_INTERVAL_S if early else INTERVAL_S)
        if stop.done():
            return


def folder_size(path: Path) -> int:
    """Total size in bytes of the regular files under ``path`` (symlinks not followed)."""
    total = 0
    stack = [str(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total


def _disk_total(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).total
    except OSError:
        return None


def _netns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def _net_dev_totals(pid: int) -> tuple[int | None, int | None]:
    """Received and sent bytes over every interface of ``pid``'s network namespace."""
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.readlines()[2:]
    except OSError:
        return None, None
    rx = tx = 0
    for line in lines:
        fields = line.split(":", 1)[1].split()
        rx += int(fields[0])
        tx += int(fields[8])
    return rx, tx
