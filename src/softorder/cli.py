"""The ``softorder`` command: ``softorder <subcommand> [options]``.

Each subcommand is a module with ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args) -> int`` (the exit status), named in `SUBCOMMANDS`: adding one is one line there.
A subcommand module imports only the standard library at import time (frameworks inside
``run``), so ``softorder --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib

SUBCOMMANDS = {
    "doctor": "softorder._src.doctor",
    "bench": "softorder.bench",
}


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="softorder",
        description="softorder: fast, exact, differentiable sorting, ranking and sparse top-k.")
    parser.add_argument("--version", action="version", version=f"softorder {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=module.HELP, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args._run(args))


if __name__ == "__main__":
    raise SystemExit(main())
