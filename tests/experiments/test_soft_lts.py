"""experiments/soft_lts.py: hard LTS against enumeration, and the --quick run's claim."""

from __future__ import annotations

import itertools
import math

import numpy as np
import soft_lts as S


def test_hard_lts_finds_the_enumerated_optimum_on_a_tiny_problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(9, 1))
    y = 2.0 * x[:, 0] + 0.1 * rng.normal(size=9)
    y[[1, 4, 7]] += 8.0
    trim = 3
    best = min(((np.sort((y - x @ w - b) ** 2)[:9 - trim].mean(), (w, b))
                for keep in itertools.combinations(range(9), 9 - trim)
                for w, b in [S._ls(x[list(keep)], y[list(keep)])]), key=lambda t: t[0])
    w, b = S.hard_lts(x, y, trim, starts=20, rng=rng)
    obj = np.sort((y - x @ w - b) ** 2)[:9 - trim].mean()
    assert obj == np.float64(best[0]) or abs(obj - best[0]) < 1e-12
    assert abs(w[0] - 2.0) < 0.3


def test_corrupt_changes_exactly_the_requested_fraction():
    y = np.arange(100.0)
    z = S.corrupt(y, 0.3, np.random.default_rng(0))
    assert (z != y).sum() == 30 and np.all(np.abs(z - y)[z != y] >= 5 * y.std() - 1e-9)


def test_soft_lts_quick_is_robust_where_least_squares_breaks(run_experiment):
    res = run_experiment("soft_lts")
    rates = res["rates"]
    for by_rate in res["mean"].values():
        assert set(by_rate) == {str(r) for r in rates}
        for v in by_rate.values():
            assert set(v) == set(S.METHODS) and all(math.isfinite(x) for x in v.values())
    top = str(max(rates))
    for d in ("diabetes", "make_regression"):
        m = res["mean"][d][top]
        assert m["soft LTS"] > m["least squares"] + 0.2  # the outliers break least squares
    m = res["mean"]["make_regression"]
    assert m[top]["soft LTS"] > 0.9 and m["0.0"]["soft LTS"] > 0.9
