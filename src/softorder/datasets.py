"""Benchmark data for the experiments: the label-ranking sets of the sorting paper, read from a
local folder or fetched by name with checksums (needs only NumPy)."""

from ._src.datasets import LABEL_RANKING_SOURCE, label_ranking_names, load_label_ranking

__all__ = ["load_label_ranking", "label_ranking_names", "LABEL_RANKING_SOURCE"]
