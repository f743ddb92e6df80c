"""Writing a collection's histories in writer processes: HDF5 work off the stepping process's GIL.

A writer thread shares the GIL with the stepping loop, and writing a row costs a few microseconds of
host CPU (HDF5 dataset creation and writes, statistics), while a GPU steps 1024 envs in ~2.4 us per
env-step: one thread made the GPU collection about 0.4 of the raw loop (issue 16).  Here the histories
are sharded over P spawned processes, each holding the :class:`~go2bench.collect.shard.HistoryShard`
of its histories.  Chunks travel through a pool of ``depth`` slots in shared memory: the stepping
process records a chunk into a slot (on CUDA: into device buffers, copied into the slot once per
chunk; the slot is registered as pinned memory where CUDA allows), sends every process the slot's
index and the histories that finished, and takes the slot back when all processes have written it.

Semantics are the writer thread's: chunks are written whole and in order, an error in a process
stops the collection with one line at the stepping process's next call, :meth:`close` writes what was
handed over and then keeps only complete groups of unfinished histories.  A writer process dies with
its parent (Linux' parent-death signal): a kill -9 of the collection leaves the files as a kill of a
single process does (complete groups, and what the salvage record rebuilds).  'spawn', never fork:
the parent holds CUDA and Genesis.
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager
from multiprocessing import connection, get_context
from multiprocessing.shared_memory import SharedMemory
from types import ModuleType

import torch

from go2bench.collect.shard import ShardSpec, serve, shm_views

__all__ = ["ProcessWriters", "writer_process_count", "shard_columns", "slot_layout", "shared_memory_shortfall",
           "HISTORIES_PER_PROCESS", "SLOT_DEPTH"]

HISTORIES_PER_PROCESS = 512  # "auto" on CUDA: ~3 us of writer CPU a row against ~2.4 us per 1024 env-steps
_ALIGN = 64
SLOT_DEPTH = 2  # chunk slots in flight: one being recorded while the processes write the other


def writer_process_count(setting: int | str, cuda: bool, histories: int) -> int:
    """Writer processes for ``setting`` (``collect.writer_processes``): "auto" is 0 (the writer thread) off
    CUDA, else one per :data:`HISTORIES_PER_PROCESS` histories, at most the CPUs less two; never more
    processes than histories."""
    if setting == "auto":
        if not cuda:
            return 0
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        setting = max(0, min(math.ceil(histories / HISTORIES_PER_PROCESS), cpus - 2))
    return min(int(setting), histories)


def shard_columns(n: int, processes: int) -> list[range]:
    """Contiguous, near-equal column ranges of a chunk, one per process."""
    bounds = [round(k * n / processes) for k in range(processes + 1)]
    return [range(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def slot_layout(specs: dict[str, tuple[tuple[int, ...], torch.dtype]]) -> tuple[dict, int]:
    """{name: (shape, numpy dtype string, byte offset)} of one chunk slot, and the slot's size in bytes."""
    layout, off = {}, 0
    for k, (shape, dt) in specs.items():
        npdt = torch.empty((), dtype=dt).numpy().dtype
        layout[k] = (tuple(shape), npdt.str, off)
        off += -(-math.prod(shape) * npdt.itemsize // _ALIGN) * _ALIGN
    return layout, off


class _Slot:
    """One chunk's buffers in one shared-memory block: torch tensors here, numpy arrays in the processes."""

    def __init__(self, specs: dict[str, tuple[tuple[int, ...], torch.dtype]], pin: bool):
        self.layout, off = slot_layout(specs)
        self.shm = SharedMemory(create=True, size=max(off, 1))
        self.name, self.nbytes = self.shm.name, off
        self.tensors = {k: torch.from_numpy(a) for k, a in shm_views(self.shm, self.layout).items()}
        self.pinned = False
        if pin:  # a D2H copy into pageable memory goes through a staging buffer: register the block instead
            try:
                ptr = next(iter(self.tensors.values())).data_ptr()
                self.pinned = int(torch.cuda.cudart().cudaHostRegister(ptr, self.nbytes, 0)) == 0
                self._ptr = ptr
            except (AttributeError, RuntimeError, TypeError):  # no such call: a pageable copy
                self.pinned = False

    def release(self) -> None:
        if self.pinned:
            torch.cuda.cudart().cudaHostUnregister(self._ptr)
            self.pinned = False
        self.tensors = {}
        try:
            self.shm.close()
        except BufferError:  # a caller still holds a view: the mapping goes with it
            pass
        self.shm.unlink()


def shared_memory_shortfall(nbytes: int) -> str | None:
    """Why ``nbytes`` of chunk slots do not fit in /dev/shm (None: they fit, or there is no /dev/shm to ask).
    A tmpfs too small for the slots fails at first touch (SIGBUS), not at creation: ask up front."""
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return None
    free = st.f_bavail * st.f_frsize
    if free >= nbytes:
        return None
    return f"the chunk slots need {nbytes / 2**30:.2f} GiB of shared memory but /dev/shm has {free / 2**30:.2f} GiB free"


def _check_shared_memory(nbytes: int) -> None:
    why = shared_memory_shortfall(nbytes)
    if why:
        raise RuntimeError(f"collect.writer_processes: {why}; use writer_processes: 0 (the writer thread), a smaller "
                           "chunk_steps, or a larger /dev/shm")


class ProcessWriters:
    """``shards``: one :class:`ShardSpec` per writer process; ``specs``: {name: (shape, dtype)} of a chunk's
    buffers (C, H, ...).  Opens the histories in the processes (in parallel): :attr:`opened`."""

    def __init__(self, shards: list[ShardSpec], specs: dict[str, tuple[tuple[int, ...], torch.dtype]], device,
                 depth: int = SLOT_DEPTH):
        self.device = torch.device(device)
        self._cuda = self.device.type == "cuda"
        self.written = 0  # rows written, as the processes report them
        self.opened: dict = {}
        self._procs, self._conns, self._slots = [], [], []
        self._ended: set[int] = set()
        self._reported = 0  # processes that have opened their histories
        self._free: list[int] = []
        self._pending: dict[int, int] = {}  # slot -> processes still writing it
        self._current: int | None = None
        self._error: str | None = None
        self._closed = False
        try:
            for _ in range(depth):
                self._slots.append(_Slot(specs, pin=self._cuda))
            _check_shared_memory(sum(s.nbytes for s in self._slots))
            self._free = list(range(depth))
            self._dev = ({k: torch.empty(shape, dtype=dt, device=self.device) for k, (shape, dt) in specs.items()}
                         if self._cuda else None)
            ctx = get_context("spawn")
            layouts = [(s.name, s.layout) for s in self._slots]
            for k, spec in enumerate(shards):
                ours, theirs = ctx.Pipe()
                p = ctx.Process(target=serve, args=(theirs, spec, layouts, os.getpid()),
                                name=f"collect-writer-{k}", daemon=True)
                with _main_not_reimported():
                    p.start()
                theirs.close()
                self._procs.append(p)
                self._conns.append(ours)
            while self._reported < len(shards):
                self._poll(0.5)
        except BaseException:
            self.close(raise_error=False)
            raise

    def buffers(self) -> dict[str, torch.Tensor]:
        """The buffers to record the next chunk into (on the simulation's device)."""
        if self._cuda:
            return self._dev
        if self._current is None:
            self._current = self._take()
        return self._slots[self._current].tensors

    def submit(self, finished) -> None:
        """Hand the recorded chunk to every process, with ``finished``: (history, task) pairs to finish after it."""
        if self._cuda:
            slot = self._take()
            for k, dev in self._dev.items():
                self._slots[slot].tensors[k].copy_(dev)  # synchronous: ~1% of a chunk's stepping
        else:
            self.buffers()
            slot, self._current = self._current, None
        self._pending[slot] = len(self._conns)
        for k in range(len(self._conns)):
            self._send(k, ("chunk", slot, finished))
        self._poll(0)

    def close(self, raise_error: bool = True) -> None:
        """Wait until every chunk handed over is written and the processes have ended (they keep only the
        complete groups of unfinished histories); then raise the first error a process reported."""
        if not self._closed:
            self._closed = True
            try:
                for k in range(len(self._conns)):
                    self._send(k, ("stop",), quiet=True)
                while len(self._ended) < len(self._procs):
                    self._poll(0.5, stopping=True)
            finally:
                for p in self._procs:
                    if p.is_alive():  # interrupted while waiting: leave no writer behind
                        p.terminate()
                    p.join()
                for c in self._conns:
                    c.close()
                for s in self._slots:
                    s.release()
        if raise_error:
            self._raise()

    def _take(self) -> int:
        while not self._free:
            self._poll(0.5)
        return self._free.pop(0)

    def _send(self, k: int, msg, quiet: bool = False) -> None:
        try:
            self._conns[k].send(msg)
        except (ConnectionError, OSError):
            if not quiet:
                self._poll(0.5)  # its error message, or its exit
                self._raise()
                raise RuntimeError(f"writing the histories failed: writer process {k} is gone") from None

    def _poll(self, timeout: float, stopping: bool = False) -> None:
        """Take the processes' messages (waiting up to ``timeout`` for one); raise a reported error."""
        live = [k for k in range(len(self._procs)) if k not in self._ended]
        waiting = [self._conns[k] for k in live] + [self._procs[k].sentinel for k in live]
        ready = connection.wait(waiting, timeout) if waiting else []
        for k in live:
            exited = self._procs[k].sentinel in ready
            if exited or self._conns[k] in ready:
                self._drain(k)
            if exited:
                self._ended.add(k)
                self._procs[k].join()
                if not stopping and self._error is None:
                    self._error = f"writer process {k} exited (code {self._procs[k].exitcode}) without a report"
        if not stopping:
            self._raise()

    def _drain(self, k: int) -> None:
        conn = self._conns[k]
        while conn.poll():
            try:
                msg = conn.recv()
            except (EOFError, OSError):  # the process has gone (reset: it left unread messages behind)
                return
            if msg[0] == "done":
                self.written += msg[2]
                self._pending[msg[1]] -= 1
                if self._pending[msg[1]] == 0:
                    del self._pending[msg[1]]
                    self._free.append(msg[1])
            elif msg[0] == "opened":
                self.opened.update(msg[1])
                self._reported += 1
            elif msg[0] == "error" and self._error is None:
                self._error = msg[1]

    def _raise(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"writing the histories failed: {self._error}")


@contextmanager
def _main_not_reimported():
    """Spawn runs the parent's main module again in each child (as ``__mp_main__``): a script importing torch
    costs seconds per process, and one without an ``if __name__ == "__main__"`` guard would collect again.
    A writer needs nothing from it, so the child is started as if the parent's main were empty."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main
