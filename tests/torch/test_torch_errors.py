"""Errors at the boundary: the same ValueError/TypeError as softorder.numpy, naming the argument
(``dim`` for ``axis``)."""

import numpy as np

X = np.random.default_rng(0).normal(size=(3, 4))

BAD = [
    ("soft_rank", (), {"regularization": "l1"}),
    ("soft_rank", (), {"regularization_strength": 0.0}),
    ("soft_rank", (), {"regularization_strength": "big"}),
    ("soft_sort", (), {"regularization": "pnorm", "p": 1.0}),
    ("soft_topk_mask", (5,), {}),
    ("soft_topk_mask", (-1,), {}),
    ("soft_topk_mask", (2.0,), {}),
    ("soft_topk_mask", (2,), {"solver": "dykstra"}),
    ("soft_topk_mask", (2,), {"solver": "newton"}),
    ("soft_topk_magnitude", (2,), {"max_iter": 0}),
    ("soft_topk_magnitude", (2,), {"p": float("inf")}),
]


