r"""What the losses are written over, and how a front end binds them.

A `Frontend` is one framework's namespace for `functions`: its differentiable operators
(``soft_rank``, ``soft_sort``, ``isotonic_regression``, called on ``[m, n]`` rows along the last
axis), its array `Backend` ``xp`` (`core.backend`: ``where``, ``take``, ``row_sum``, ...) and a
few boundary helpers (conversion, layout, totals). `public` turns a function of `functions`
into the front end's public function, with the framework's axis keyword (``dim`` for torch)
in its signature and the docstring rendered for it (`docs.docstring`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = ["Frontend", "Layout", "public"]


class Layout(NamedTuple):
    """How ``[m, n]`` rows map back to an input's batch shape (the shape without its axis)."""

    batch: tuple  # the batch shape (Python ints; TF: None where unknown)
    n: int | None  # the length of the axis
    extra: Any = None  # front-end specific (TF: the dynamic batch shape)


@dataclass(frozen=True)
class Frontend:
    """One framework's namespace for the losses (see the module docstring).

    Attributes:
      name: ``"numpy"``, ``"torch"``, ``"jax"`` or ``"tensorflow"`` (docstring words).
      module: the public module (``"softorder.torch"``) the functions are registered in.
      axis_name: the axis keyword (``"axis"``; torch: ``"dim"``).
      xp: the front end's `Backend`, differentiable where the framework is.
      soft_rank, soft_sort, isotonic_regression: the front end's operators.
      as_float: ``(x, name) -> array`` with a floating dtype (the front end's checks).
      as_native: ``(a, name) -> array`` of any dtype (labels, masks; NumPy input converted).
      shape: ``a -> tuple`` (TF: None where unknown).
      is_bool, is_int: dtype predicates.
      to_rows: ``(x, axis) -> (x2 [m, n], Layout)`` (axis already checked).
      batch_to_rows: ``(a, Layout) -> [m, 1]`` (an array of the batch shape).
      from_rows: ``(v [m, 1], Layout) -> array`` of the batch shape.
      total: the sum of every entry (a 0-d array); ``mean`` their mean.
      concrete: ``a -> np.ndarray`` or None when ``a``'s values are not available (traced).
      to_index: ``a -> int64`` array of the framework.
      cast_like: ``(a, like) -> a`` in ``like``'s dtype (a 0-d array too).
    """

    name: str
    module: str
    axis_name: str
    xp: Any
    soft_rank: Callable[..., Any]
    soft_sort: Callable[..., Any]
    isotonic_regression: Callable[..., Any]
    as_float: Callable[..., Any]
    as_native: Callable[..., Any]
    shape: Callable[[Any], tuple]
    is_bool: Callable[[Any], bool]
    is_int: Callable[[Any], bool]
    to_rows: Callable[..., tuple]
    batch_to_rows: Callable[..., Any]
    from_rows: Callable[..., Any]
    total: Callable[[Any], Any]
    mean: Callable[[Any], Any]
    concrete: Callable[[Any], Any]
    to_index: Callable[[Any], Any]
    cast_like: Callable[[Any, Any], Any]


def public(F: Frontend, name: str, example: str) -> Callable[..., Any]:
    """``functions.<name>`` bound to ``F``: the public function of ``F.module``."""
    from . import docs, functions

    impl = getattr(functions, name)
    params = list(inspect.signature(impl).parameters.values())[1:]  # without F
    if F.axis_name != "axis":
        params = [p.replace(name=F.axis_name) if p.name == "axis" else p for p in params]
    axis_name = F.axis_name

    def fn(*args, **kwargs):
        if axis_name != "axis":
            if "axis" in kwargs:
                raise TypeError(f"{name}() got an unexpected keyword argument 'axis' "
                                f"({F.module} says {axis_name}=, as the framework does).")
            if axis_name in kwargs:
                kwargs["axis"] = kwargs.pop(axis_name)
        return impl(F, *args, **kwargs)

    fn.__name__ = fn.__qualname__ = name
    fn.__module__ = F.module
    fn.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    fn.__doc__ = docs.docstring(name, F.name, example)
    return fn
