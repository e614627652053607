"""Numba configuration: one `njit` whose on-disk cache follows the package's kernel sources.

Numba keys a cached kernel by its own file only, so a kernel that inlines code from another
file (the fused kernels of ``core/fused.py`` call ``_pav_row`` of ``isotonic/pav.py``) would
keep stale machine code after that other file changes. Here every kernel of the package is
cached in one folder named after a hash of *all* kernel sources (the files that use `njit`
and the package modules they import at top level, e.g. the constants of ``regularizers.py``),
and that hash is also each kernel's source stamp: editing any of them recompiles every kernel.

Where: ``NUMBA_CACHE_DIR`` when the user set it, else the package's ``__pycache__``, else
the user-wide cache folder Numba itself would use. When none is writable, kernels compile in
every process (one warning).
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from pathlib import Path

import numba
from numba.core import caching as _caching
from numba.core import config as _config

_warned = False
_SRC = Path(__file__).resolve().parent  # softorder/_src
_TOP_IMPORT = re.compile(r"^from (\.+)([\w.]*) import", re.MULTILINE)


def _resolve(path: Path, dots: str, mod: str) -> list[Path]:
    base = path.parent
    for _ in range(len(dots) - 1):
        base = base.parent
    target = base.joinpath(*mod.split(".")) if mod else base
    found = [p for p in (target.with_suffix(".py"), target / "__init__.py") if p.is_file()]
    return [p for p in found if _SRC in p.parents or p.parent == _SRC]


def kernel_sources() -> list[Path]:
    """The files whose content the compiled kernels depend on: every module of the package
    that uses `njit`, and (transitively) the package modules they import at top level."""
    todo = [p for p in _SRC.rglob("*.py") if p.name != "_numba.py" and "njit" in p.read_text()]
    seen: set[Path] = set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        for dots, mod in _TOP_IMPORT.findall(p.read_text()):
            todo.extend(_resolve(p, dots, mod))
    return sorted(seen)


def _sources_hash() -> str:
    h = hashlib.sha256(numba.__version__.encode())
    for p in kernel_sources():
        h.update(p.relative_to(_SRC).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


SOURCES_HASH = _sources_hash()


def _cache_roots() -> list[str]:
    cache_dir = getattr(_config, "CACHE_DIR", "")
    if cache_dir:  # NUMBA_CACHE_DIR, set by the user: the only place then
        return [str(cache_dir)]
    user = _caching.AppDirs(appname="numba", appauthor=False).user_cache_dir
    return [str(_SRC / "__pycache__"), user]


class _SourceHashLocator(_caching._CacheLocator):
    """Caches a kernel in ``<root>/softorder_kernels_<hash>``; its source stamp is the hash."""

    def __init__(self, py_func, root):
        self._lineno = py_func.__code__.co_firstlineno
        self._path = os.path.join(root, f"softorder_kernels_{SOURCES_HASH}")

    def get_cache_path(self):
        return self._path

    def get_source_stamp(self):
        return SOURCES_HASH

    def get_disambiguator(self):
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func, py_file):
        for root in _cache_roots():
            self = cls(py_func, root)
            try:
                self.ensure_cache_path()
            except OSError:
                continue
            return self
        return None


class _Impl(_caching.CompileResultCacheImpl):
    _locator_classes = [_SourceHashLocator]


class _KernelCache(_caching.FunctionCache):
    _impl_class = _Impl


def _enable_cache(disp):
    """Give ``disp`` (a dispatcher made without cache) the source-hash cache."""
    if not hasattr(disp, "_cache"):  # pragma: no cover - a Numba with other internals
        return numba.njit(cache=True)(disp.py_func)
    disp._cache = _KernelCache(disp.py_func)  # what Dispatcher.enable_caching does
    return disp


def njit(*args, **kwargs):
    """`numba.njit` cached under the kernel-sources hash (see the module docstring), falling
    back to no cache when no cache folder is writable.

    Numba raises ("no locator available") when no location is writable; compiling each
    process is slower but correct.
    """

    def decorate(func):
        global _warned
        disp = numba.njit(cache=False, **kwargs)(func)
        try:
            return _enable_cache(disp)
        except RuntimeError as err:  # pragma: no cover - depends on file permissions
            if not _warned:
                warnings.warn(
                    f"softorder: numba cannot cache compiled kernels ({err}); compiling in "
                    "every process. Set NUMBA_CACHE_DIR to a writable folder to avoid this.",
                    RuntimeWarning,
                    stacklevel=3,
                )
                _warned = True
            return disp

    if args and callable(args[0]):
        return decorate(args[0])
    return decorate
