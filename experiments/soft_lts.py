"""Robust linear regression with soft least trimmed squares (the sorting paper, section 6).

Soft LTS (softorder.torch.soft_least_trimmed_squares) fits ``y ~ x w + b`` by minimizing the
mean of the ``n - trim`` smallest squared residuals, softly sorted: as the strength goes to 0 it
is least trimmed squares (LTS), as it grows it becomes least squares (LS); the paper claims it
interpolates between the two. Compared here, on scikit-learn's diabetes data and on
``make_regression``, with 0-50% of the *training* targets corrupted (gross outliers):

* least squares (sklearn LinearRegression);
* Huber regression (sklearn HuberRegressor, default epsilon 1.35);
* hard LTS: FAST-LTS-style concentration steps (Rousseeuw and Van Driessen 2006) from random
  starts, ``h = n - trim`` points kept;
* soft LTS (l2 soft sort), trim = half the training set, L-BFGS from the LS solution, strength
  chosen on a validation split.

Scored: R^2 on clean test targets. The validation split is corrupted like the training split
(no clean data is used for any choice); the strength minimizes the validation *trimmed* mean
squared error (the largest half of the squared validation residuals left out).

Usage:
  python experiments/soft_lts.py --out DIR [--quick] [--seed 0] [--repeats 5]
"""

from __future__ import annotations

import warnings

import _harness as H
import numpy as np

NAME = "soft_lts"
METHODS = ("least squares", "Huber", "hard LTS", "soft LTS")
STRENGTHS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


def load(name: str, seed: int):
    from sklearn.datasets import load_diabetes, make_regression

    if name == "diabetes":
        x, y = load_diabetes(return_X_y=True)
    else:
        x, y = make_regression(n_samples=442, n_features=10, n_informative=8, noise=20.0,
                               random_state=seed)
    return x.astype(np.float64), y.astype(np.float64)


def corrupt(y: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Replace a fraction ``rate`` of targets by gross outliers: ``y + s * U(5, 10) * sd(y)``,
    one random sign ``s`` per corrupted entry."""
    y = y.copy()
    m = int(round(rate * len(y)))
    idx = rng.choice(len(y), size=m, replace=False)
    y[idx] += rng.choice([-1.0, 1.0], size=m) * rng.uniform(5, 10, size=m) * y.std()
    return y


def _ls(x, y):
    a = np.column_stack([x, np.ones(len(x))])
    coef = np.linalg.lstsq(a, y, rcond=None)[0]
    return coef[:-1], coef[-1]


def hard_lts(x, y, trim, *, starts=30, steps=50, rng):
    """FAST-LTS-style LTS: from random (p+1)-point fits, concentration steps (refit LS on the
    ``h = n - trim`` smallest squared residuals) until the kept set stops changing; the best
    of ``starts`` by the trimmed objective. Each C-step never increases the objective."""
    n, p = x.shape
    h = n - trim
    best, best_obj = None, np.inf
    for _ in range(starts):
        idx = rng.choice(n, size=p + 1, replace=False)
        w, b = _ls(x[idx], y[idx])
        keep = None
        for _ in range(steps):
            new = np.sort(np.argsort((y - x @ w - b) ** 2)[:h])
            if keep is not None and np.array_equal(new, keep):
                break
            keep = new
            w, b = _ls(x[keep], y[keep])
        obj = np.sort((y - x @ w - b) ** 2)[:h].mean()
        if obj < best_obj:
            best, best_obj = (w, b), obj
    return best


def soft_lts(x, y, trim, strength, *, iterations=100):
    """Minimize soft_least_trimmed_squares(y - x w - b, trim) by L-BFGS from the LS fit."""
    import torch

    from softorder.torch import soft_least_trimmed_squares

    w0, b0 = _ls(x, y)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    w = torch.tensor(w0, requires_grad=True)
    b = torch.tensor(float(b0), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iterations, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = soft_least_trimmed_squares(yt - xt @ w - b, trim,
                                          regularization_strength=strength)
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), float(b.detach())


def r2(y, pred):
    return float(1.0 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def trimmed_mse(res, trim_frac=0.5):
    s = np.sort(res**2)
    return float(s[: len(s) - int(trim_frac * len(s))].mean())


def run_one(name, rate, seed, *, starts, iterations):
    from sklearn.linear_model import HuberRegressor

    rng = np.random.default_rng(seed)
    x, y = load(name, seed)
    order = rng.permutation(len(x))
    n_tr, n_va = int(0.6 * len(x)), int(0.2 * len(x))
    tr, va, te = order[:n_tr], order[n_tr:n_tr + n_va], order[n_tr + n_va:]
    mu, sd = x[tr].mean(0), x[tr].std(0)
    x = (x - mu) / np.where(sd > 0, sd, 1.0)
    ym, ys = y[tr].mean(), y[tr].std()
    y = (y - ym) / ys  # clean targets, standardized by the clean training scale
    ytr, yva = corrupt(y[tr], rate, rng), corrupt(y[va], rate, rng)
    trim = len(tr) // 2
    out = {}
    w, b = _ls(x[tr], ytr)
    out["least squares"] = r2(y[te], x[te] @ w + b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # HuberRegressor's lbfgs iteration warnings
        hub = HuberRegressor(max_iter=1000).fit(x[tr], ytr)
    out["Huber"] = r2(y[te], hub.predict(x[te]))
    w, b = hard_lts(x[tr], ytr, trim, starts=starts, rng=rng)
    out["hard LTS"] = r2(y[te], x[te] @ w + b)
    fits = {s: soft_lts(x[tr], ytr, trim, s, iterations=iterations) for s in STRENGTHS}
    val = {s: trimmed_mse(yva - x[va] @ w - b) for s, (w, b) in fits.items()}
    s_best = min(val, key=lambda s: val[s])
    w, b = fits[s_best]
    out["soft LTS"] = r2(y[te], x[te] @ w + b)
    out["soft LTS strength"] = s_best
    out["soft LTS by strength"] = {str(s): r2(y[te], x[te] @ w + b) for s, (w, b) in fits.items()}
    return out


def main(argv=None):
    ap = H.parser(NAME, __doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=None,
                    help="random splits/corruptions per rate (default 5, quick 1)")
    ap.add_argument("--rates", default=None,
                    help="comma-separated corruption rates (default 0,0.1,...,0.5)")
    args = ap.parse_args(argv)
    q = args.quick
    args.repeats = args.repeats or (1 if q else 5)
    args.rates = args.rates or ("0,0.2,0.4" if q else "0,0.1,0.2,0.3,0.4,0.5")
    rates = [float(r) for r in args.rates.split(",")]
    report = H.Report(NAME, args)
    H.seed_everything(args.seed)
    import torch

    torch.set_num_threads(1)
    datasets = ("diabetes", "make_regression")
    jobs = [(d, r, args.seed + k) for d in datasets for r in rates for k in range(args.repeats)]
    runs = []
    for d, r, s in H.progress(jobs, "soft LTS", total=len(jobs)):
        runs.append({"dataset": d, "rate": r, "seed": s,
                     **run_one(d, r, s, starts=10 if q else 50, iterations=30 if q else 100)})
    results: dict = {"runs": runs, "rates": rates, "mean": {}}
    rows = []
    for d in datasets:
        results["mean"][d] = {}
        for r in rates:
            sel = [u for u in runs if u["dataset"] == d and u["rate"] == r]
            row = {"dataset": d, "corrupted": f"{100 * r:.0f}%"}
            results["mean"][d][str(r)] = {}
            for m in METHODS:
                v = float(np.mean([u[m] for u in sel]))
                results["mean"][d][str(r)][m] = v
                row[m] = v
            row["soft LTS strengths"] = ",".join(f"{u['soft LTS strength']:g}" for u in sel)
            rows.append(row)
    fig, axes = H.figure(ncols=2)
    for ax, d in zip(axes[0], datasets):
        for m, st in zip(METHODS, ("o-", "s-", "^--", "D-")):
            ax.plot([100 * r for r in rates], [results["mean"][d][str(r)][m] for r in rates], st,
                    label=m, ms=4)
        ax.set_xlabel("training targets corrupted (%)")
        ax.set_ylabel("R^2 on clean test targets")
        ax.set_title(f"{d} (mean of {args.repeats})")
        ax.set_ylim(max(-1.0, ax.get_ylim()[0]), 1.0)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    text = (f"R^2 on clean test targets (mean over {args.repeats} random splits per rate); "
            "train/validation/test 60/20/20, training and validation targets corrupted at the "
            "same rate; trim = half the training set for hard and soft LTS; soft-LTS strength "
            f"from {list(STRENGTHS)} by the validation trimmed MSE.")
    report.save(results, table=rows, text=text, figure=fig)


if __name__ == "__main__":
    main()
