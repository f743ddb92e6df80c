"""Rebuilding a history file that a kill left unreadable, from the byte layout of its complete groups.

HDF5 is not journalled: a kill -9 while a group is being added can leave the file's metadata half
updated ("addr overflow" on open), although every complete group's *data* is still on disk, where
it was written, and is never moved or overwritten afterwards (HDF5 only ever allocates new space
for new data).  So after each complete group the writer records where the bytes of its datasets
lie (:func:`group_layout`, in the hidden ``.<history>.h5.layout`` file of
:func:`~go2bench.histories.names.history_layout`), and a resume whose file
disagrees with that record (:func:`file_agrees`) rebuilds the file from those bytes alone
(:func:`rebuild`), without HDF5 reading the damaged metadata.  The rebuilt file holds the same
groups with the same values; the collection then continues from there, as from any resume.

The record is JSON lines: ``{"format": 2}``, then one ``{group: layout}`` line appended per complete
group (:func:`append_layout`); :func:`write_layout` writes it whole, atomically, when a writer opens
the file.  Appending, not replacing the whole record per group, because a rename over an existing
file costs a file-system metadata update (about 0.5-1 ms on ext4, 40 times an append), paid per
group of every history of a collection.  A kill during an append leaves at most a torn last line,
whose group then counts as unrecorded (the rebuild drops it and the collection writes it again).
Format 1 (one JSON object ``{"format": 1, "groups": {...}}``, replaced per group) is still read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from go2bench.histories.names import TMP_PREFIX, history_layout, parse_group

__all__ = ["group_layout", "dataset_layout", "write_layout", "append_layout", "read_layout", "file_agrees",
           "rebuild"]


def group_layout(grp: h5py.Group) -> dict[str, Any]:
    """Where each dataset of one complete group keeps its bytes: offset (contiguous) or its chunks."""
    return {key: dataset_layout(d) for key, d in grp.items()}


def dataset_layout(d: h5py.Dataset, dtype: np.dtype | None = None, shape: tuple | None = None) -> dict[str, Any]:
    """One dataset's entry of :func:`group_layout`; ``dtype`` and ``shape`` when the caller knows them (cheaper)."""
    rec: dict[str, Any] = {"dtype": (d.dtype if dtype is None else dtype).str,
                           "shape": list(d.shape if shape is None else shape)}
    if d.chunks is None:
        rec["offset"] = d.id.get_offset()
    else:
        info = [d.id.get_chunk_info(i) for i in range(d.id.get_num_chunks())]
        rec.update(chunks=list(d.chunks), compression=d.compression, compression_opts=d.compression_opts,
                   chunk_list=[[list(c.chunk_offset), c.filter_mask, c.byte_offset, c.size] for c in info])
    return rec


def write_layout(path_h5: str | Path, groups: dict[str, dict]) -> None:
    """Replace the layout record of ``path_h5`` atomically (a kill leaves the old or the new one)."""
    p = history_layout(path_h5)
    tmp = p.with_name(p.name + ".tmp")
    lines = [json.dumps({"format": 2})] + [json.dumps({name: rec}) for name, rec in groups.items()]
    tmp.write_text("".join(line + "\n" for line in lines))
    os.replace(tmp, p)


def append_layout(path_h5: str | Path, name: str, layout: dict) -> None:
    """Add one complete group to the record that :func:`write_layout` began."""
    with open(history_layout(path_h5), "a") as fh:
        fh.write(json.dumps({name: layout}) + "\n")


def read_layout(path_h5: str | Path) -> dict[str, dict] | None:
    """The recorded groups of ``path_h5``; None when there is no (readable) record."""
    try:
        text = history_layout(path_h5).read_text()
    except OSError:
        return None
    lines = text.split("\n")
    try:
        head = json.loads(lines[0])
    except ValueError:
        return None
    if not isinstance(head, dict):
        return None
    if head.get("format") == 1:
        groups = head.get("groups")
        return groups if isinstance(groups, dict) else None
    if head != {"format": 2}:
        return None
    groups: dict[str, dict] = {}
    body = lines[1:]
    for k, line in enumerate(body):
        try:
            entry = json.loads(line)
        except ValueError:
            if any(rest.strip() for rest in body[k + 1:]):
                return None  # damaged inside, not a torn last append
            break  # a torn last line (or the end): its group is not recorded
        if not isinstance(entry, dict) or len(entry) != 1:
            return None
        groups.update(entry)
    return groups


def file_agrees(path_h5: str | Path, groups: dict[str, dict]) -> bool:
    """Whether HDF5 opens ``path_h5`` and finds exactly the recorded groups, each where the record says it is.

    A group the record does not hold (a temporary or unrecorded group of an interrupted write) also
    means: rebuild. Deleting it in place would edit the root group's link heap, which a kill during
    the write may have left damaged (h5py: "Couldn't delete link (bad local heap signature)")."""
    try:
        with h5py.File(path_h5, "r") as f:
            if set(f.keys()) != set(groups):
                return False
            return all(group_layout(f[name]) == rec for name, rec in groups.items())
    except Exception:  # noqa: BLE001 - any failure of HDF5 on a damaged file means: rebuild
        return False


def temporary_groups(path_h5: str | Path) -> list[str]:
    """The names of the temporary groups (an interrupted group write) in ``path_h5``; [] if HDF5 cannot open it."""
    try:
        with h5py.File(path_h5, "r") as f:
            return [k for k in f.keys() if k.startswith(TMP_PREFIX)]
    except Exception:  # noqa: BLE001 - a damaged file: nothing to name
        return []


def rebuild(path_h5: str | Path, groups: dict[str, dict]) -> None:
    """Write the recorded groups, read as raw bytes from the damaged ``path_h5``, into a fresh file
    that atomically replaces it."""
    path = Path(path_h5)
    tmp = path.with_name(f".{path.name}.rebuilding")
    with open(path, "rb") as raw, h5py.File(tmp, "w") as out:
        for name in sorted(groups, key=lambda k: parse_group(k)[0]):
            grp = out.create_group(name)
            for key, rec in groups[name].items():
                dtype, shape = np.dtype(rec["dtype"]), tuple(rec["shape"])
                if "offset" in rec:
                    raw.seek(rec["offset"])
                    n = int(np.prod(shape)) * dtype.itemsize
                    data = np.frombuffer(raw.read(n), dtype=dtype)
                    if data.size * dtype.itemsize != n:
                        raise OSError(f"{path}: group {name}/{key} lies past the end of the file")
                    grp.create_dataset(key, data=data.reshape(shape))
                    continue
                d = grp.create_dataset(key, shape=shape, dtype=dtype, chunks=tuple(rec["chunks"]),
                                       compression=rec["compression"], compression_opts=rec["compression_opts"])
                for chunk_offset, mask, offset, size in rec["chunk_list"]:
                    raw.seek(offset)
                    d.id.write_direct_chunk(tuple(chunk_offset), raw.read(size), mask)
    os.replace(tmp, path)
