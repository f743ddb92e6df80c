"""Taking a collection's rows off the stepping thread: one device->host copy per chunk, HDF5 on a writer thread.

The step loop records every step into per-chunk buffers (``(C, H, ...)`` tensors).  At the end of a
chunk :meth:`ChunkSink.submit` hands the chunk to a writer thread and the loop goes on stepping:

* on CUDA the loop records into device buffers, and ``submit`` starts one non-blocking copy into a
  pinned host set with an event behind it (the writer waits for the event, the loop never does);
* on the CPU the loop records straight into the host set (there is nothing to copy).

Host sets come from a pool of ``depth`` sets, returned by the writer thread when it is done with them;
so at most ``depth`` chunks are in flight and :meth:`buffers` blocks while the writer is behind.  An
error on the writer thread stops it and is raised in the stepping thread at its next call (or by
:meth:`close`); the writer thread writes whole chunks in order, and whatever it has not written when
the stepping thread fails is simply not on disk (the history files keep their complete groups).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

import torch

from go2bench.collect.shard import HistoryShard, ShardSpec

__all__ = ["ChunkSink", "ThreadWriters"]


class ChunkSink:
    """``specs``: {name: (shape, dtype)} of each per-chunk buffer; ``write(host, *job)`` runs on the writer
    thread with ``host`` = {name: numpy array} for every submitted chunk, in order."""

    def __init__(self, specs: dict[str, tuple[tuple[int, ...], torch.dtype]], device, write: Callable,
                 depth: int = 2):
        self.device = torch.device(device)
        self._cuda = self.device.type == "cuda"
        self._write = write
        pin = self._cuda
        self._free: queue.Queue = queue.Queue()
        for _ in range(depth):
            host = {k: torch.empty(shape, dtype=dt, pin_memory=pin) for k, (shape, dt) in specs.items()}
            self._free.put(host)
        self._dev = ({k: torch.empty(shape, dtype=dt, device=self.device) for k, (shape, dt) in specs.items()}
                     if self._cuda else None)
        self._jobs: queue.Queue = queue.Queue()
        self._error: BaseException | None = None
        self._current: dict[str, torch.Tensor] | None = None
        self._thread = threading.Thread(target=self._run, name="collect-writer", daemon=True)
        self._thread.start()

    def buffers(self) -> dict[str, torch.Tensor]:
        """The buffers to record the next chunk into (on the simulation's device)."""
        if self._cuda:
            return self._dev
        if self._current is None:
            self._current = self._take()
        return self._current

    def submit(self, *job) -> None:
        """Hand the recorded chunk and ``job`` (the rest of ``write``'s arguments) to the writer thread."""
        if self._cuda:
            host = self._take()
            for k, dev in self._dev.items():
                host[k].copy_(dev, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
        else:
            host, event, self._current = self.buffers(), None, None
        self._jobs.put((host, event, job))

    def close(self) -> None:
        """Wait until every submitted chunk is written; raise the writer thread's error if it had one."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()
        self._raise()

    def _take(self) -> dict[str, torch.Tensor]:
        while True:
            self._raise()
            try:
                return self._free.get(timeout=0.05)
            except queue.Empty:
                if not self._thread.is_alive():
                    self._raise()
                    raise RuntimeError("the collection's writer thread has stopped")

    def _raise(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"writing the histories failed: {self._error}") from self._error

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            host, event, job = item
            try:
                if event is not None:
                    event.synchronize()
                self._write({k: v.numpy() for k, v in host.items()}, *job)
            except BaseException as exc:  # noqa: BLE001 - handed to the stepping thread
                self._error = exc
                return
            self._free.put(host)



class ThreadWriters:
    """The histories of ``spec`` written on a :class:`ChunkSink`'s writer thread: :class:`ProcessWriters`'
    interface (:mod:`go2bench.collect.writer_procs`) with ``writer_processes: 0``."""

    def __init__(self, spec: ShardSpec, specs: dict[str, tuple[tuple[int, ...], torch.dtype]], device):
        self._shard = HistoryShard(spec)
        self.opened = self._shard.opened
        self.written = 0  # rows written, counted by the writer thread
        self._sink = ChunkSink(specs, device, self._write)
        self.buffers, self.submit = self._sink.buffers, self._sink.submit

    def _write(self, host, finished) -> None:
        self.written += self._shard.write(host, finished)

    def close(self) -> None:
        """Write every chunk handed over, then keep only complete groups of unfinished histories."""
        try:
            self._sink.close()
        finally:
            self._shard.abort()
