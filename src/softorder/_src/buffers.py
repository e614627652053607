"""Many arrays from one allocation.

On Linux NumPy asks for transparent huge pages for buffers of 4 MiB and more, while arrays made
one by one (and Numba's own allocations) are faulted in 4 KiB page by page on first touch. On
these VMs that difference is large: six separate 1 MiB arrays cost 1.6 ms to allocate and fill,
one 6 MiB buffer 0.3 ms, about the cost of the whole PAV pass over the same data. The kernels'
residuals and scratch therefore come from one buffer, padded to 4 MiB from 1 MiB up.
"""

from __future__ import annotations

import math

import numpy as np

_HUGE = 4 << 20
_PAD_FROM = 1 << 20


_ITEMSIZE: dict = {}


def _itemsize(dt) -> int:
    size = _ITEMSIZE.get(dt)
    if size is None:
        size = _ITEMSIZE[dt] = np.dtype(dt).itemsize
    return size


def carve(specs):
    """Arrays of the given ``(shape, dtype)`` specs: C-contiguous views into one buffer from
    1 MiB up; below that (where page faults cost nothing worth saving) plain `np.empty` arrays,
    which cost less Python per call than carving views."""
    sizes = [math.prod(shape) * _itemsize(dt) for shape, dt in specs]
    total = sum(sizes)
    if total < _PAD_FROM:
        return [np.empty(shape, dt) for shape, dt in specs]
    raw = np.empty(max(total, _HUGE), np.uint8)
    out = [None] * len(specs)
    offset = 0
    # Largest items first, so that every view is aligned to its item size.
    for i in sorted(range(len(specs)), key=lambda i: -_itemsize(specs[i][1])):
        shape, dt = specs[i]
        out[i] = raw[offset:offset + sizes[i]].view(dt).reshape(shape)
        offset += sizes[i]
    return out
