"""``python -m softorder <subcommand>``: the ``softorder`` command (`softorder.cli`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
