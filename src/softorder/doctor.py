"""``python -m softorder.doctor`` (and ``softorder doctor``): versions, kernels and devices of
this installation, every operator of every installed front end checked against the NumPy core,
and the problems found with their fixes. Exit status 0 when every check passed."""

from ._src.doctor import add_arguments, collect, main, render, run

__all__ = ["main", "run", "add_arguments", "collect", "render"]

if __name__ == "__main__":
    raise SystemExit(main())
