"""Many arrays from one allocation.

On Linux NumPy asks for transparent huge pages for buffers of 4 MiB and more, while arrays made
one by one (and Numba's own allocations) are faulted in 4 KiB page by page on first touch. On
these VMs that difference is large: six separate 1 MiB arrays cost 1.6 ms to allocate and fill,
one 6 MiB buffer 0.3 ms, about the cost of the whole PAV pass over the same data. The kernels'
residuals and scratch therefore come from one buffer, padded to 4 MiB from 1 MiB up.
"""

from __future__ import annotations

import numpy as np

_HUGE = 4 << 20
_PAD_FROM = 1 << 20


def carve(specs):
    """Arrays of the given ``(shape, dtype)`` specs, C-contiguous views into one buffer."""
    sizes = [int(np.prod(shape)) * np.dtype(dt).itemsize for shape, dt in specs]
    total = sum(sizes)
    raw = np.empty(max(total, _HUGE) if total >= _PAD_FROM else total, np.uint8)
    out = [None] * len(specs)
    offset = 0
    # Largest items first, so that every view is aligned to its item size.
    for i in sorted(range(len(specs)), key=lambda i: -np.dtype(specs[i][1]).itemsize):
        shape, dt = specs[i]
        out[i] = raw[offset:offset + sizes[i]].view(dt).reshape(shape)
        offset += sizes[i]
    return out
