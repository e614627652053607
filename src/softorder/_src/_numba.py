"""Numba configuration: one `njit` that caches when it can and says so once when it cannot."""

from __future__ import annotations

import warnings

import numba

_warned = False


def njit(*args, **kwargs):
    """`numba.njit` with `cache=True`, falling back to no cache when no cache dir is writable.

    Numba raises at decoration time ("no locator available") when neither the package folder
    nor ``NUMBA_CACHE_DIR`` is writable; compiling each process is slower but correct.
    """

    def decorate(func):
        global _warned
        try:
            return numba.njit(cache=True, **kwargs)(func)
        except RuntimeError as err:  # pragma: no cover - depends on file permissions
            if not _warned:
                warnings.warn(
                    f"softorder: numba cannot cache compiled kernels ({err}); compiling in "
                    "every process. Set NUMBA_CACHE_DIR to a writable folder to avoid this.",
                    RuntimeWarning,
                    stacklevel=3,
                )
                _warned = True
            return numba.njit(cache=False, **kwargs)(func)

    if args and callable(args[0]):
        return decorate(args[0])
    return decorate
