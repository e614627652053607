"""Label ranking with a soft-Spearman layer: now the experiment experiments/label_ranking.py.

The old example picked the soft-rank strength on the test split; the experiment follows the
paper's protocol (nested cross-validation, nothing selected on a test fold). This pointer runs
its quick version on a few sets, as ``make demo`` does:

  python examples/label_ranking.py [--data DIR] [--sets iris,wine] [--out results/label_ranking]

For the full protocol: ``python experiments/label_ranking.py --data DIR --out DIR``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "experiments" / "label_ranking.py"
DEFAULT_DATA = ROOT / ".." / "shared" / "datasets" / "label_ranking"


def experiment():
    """The experiment module (loaded by path: its name clashes with this file's)."""
    if str(EXPERIMENT.parent) not in sys.path:
        sys.path.insert(0, str(EXPERIMENT.parent))
    spec = importlib.util.spec_from_file_location("experiments_label_ranking", EXPERIMENT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("SOFTORDER_LABEL_RANKING_DIR",
                                                     str(DEFAULT_DATA)))
    ap.add_argument("--sets", default="iris,wine")
    ap.add_argument("--out", default=os.path.join("results", "label_ranking"))
    args = ap.parse_args(argv)
    if not Path(args.data).is_dir():
        print(f"label ranking: no data folder {args.data}; skipped")
        return None
    return experiment().main(["--quick", "--data", args.data, "--sets", args.sets,
                              "--out", args.out])


if __name__ == "__main__":
    main()
