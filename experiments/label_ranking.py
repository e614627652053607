"""Label ranking with a soft-Spearman layer, in the sorting paper's protocol (section 6).

A linear model scores the labels of each sample, ``theta = x W + b``. Two ways to fit it:

* **baseline**: regress the ranks directly (ridge regression of the rank vectors, closed form);
* **soft_rank**: the soft-rank layer, minimizing ``mean_i (1 - soft_spearmanr(theta_i, r_i))``
  (softorder.torch.soft_spearman_loss with soft ranks r_Q, ``regularization="l2"``) plus the
  same ridge penalty (the one the baseline's inner CV chose), by L-BFGS from the baseline's
  solution.

Prediction: the labels ranked by ``theta`` (ascending, as the target ranks: rank 1 = most
preferred = smallest value). Score: the mean over test samples of Spearman's correlation between
the predicted and the true ranking. The ridge penalty of both models and the soft-rank strength
are chosen by an inner K-fold cross-validation on the training folds only; the reported number
is the mean over the outer folds (10-fold, 5 in --quick). Nothing is ever selected on a test fold.

Usage:
  python experiments/label_ranking.py --data DIR [--sets a,b,...] [--quick] --out DIR
DIR holds NAME.csv files in the format of softorder.datasets (../shared/datasets/label_ranking);
without --data the sets are read from SOFTORDER_LABEL_RANKING_DIR or fetched by name
(softorder.datasets.load_label_ranking).
"""

from __future__ import annotations

import os
from pathlib import Path

import _harness as H
import numpy as np
import scipy.stats

NAME = "label_ranking"
ALPHAS = (1e-3, 1e-1, 1e1)  # ridge penalties (per sample, on standardized features)
STRENGTHS = (0.1, 1.0, 10.0)  # soft-rank strengths, in units of the scores (~ ranks)
QUICK_SETS = ("iris", "wine", "glass", "bodyfat", "housing", "vehicle")


def spearman(pred_scores: np.ndarray, ranks: np.ndarray) -> float:
    """Mean over rows of Spearman's correlation between the ranking of the scores and ranks."""
    a = scipy.stats.rankdata(pred_scores, axis=1)
    b = scipy.stats.rankdata(ranks, axis=1)
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return float(np.mean(np.where(den > 0, (a * b).sum(1) / np.where(den > 0, den, 1.0), 0.0)))


def kfold(n: int, k: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``k`` disjoint test index sets covering ``range(n)``, shuffled."""
    return [np.sort(f) for f in np.array_split(rng.permutation(n), k)]


def _standardize(xtr, xte):
    mu, sd = xtr.mean(0), xtr.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    return (xtr - mu) / sd, (xte - mu) / sd


def fit_ridge(x, r, alpha):
    """Ridge regression of the ranks: ``min ||x W + b - r||^2 / m + alpha ||W||^2``."""
    m, d = x.shape
    xm, rm = x.mean(0), r.mean(0)
    xc = x - xm
    w = np.linalg.solve(xc.T @ xc / m + alpha * np.eye(d), xc.T @ (r - rm) / m)
    return w, rm - xm @ w


def fit_soft(x, r, alpha, strength, iterations):
    """Soft-Spearman model: L-BFGS on the soft Spearman loss + ridge, from the ridge solution."""
    import torch

    from softorder.torch import soft_spearman_loss

    w0, b0 = fit_ridge(x, r, alpha)
    xt = torch.as_tensor(x)
    rt = torch.as_tensor(r)
    w = torch.tensor(w0, requires_grad=True)
    b = torch.tensor(b0, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iterations, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        theta = xt @ w + b
        loss = soft_spearman_loss(theta, rt, y_is_ranks=True, regularization="l2",
                                  regularization_strength=strength)
        loss = loss + alpha * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), b.detach().numpy()


def select(x, r, *, inner_folds, alphas, strengths, iterations, rng):
    """Hyperparameters by inner cross-validation on (x, r), the *training* fold only.

    The ridge penalty maximizing the mean inner validation Spearman correlation of the
    baseline; then, with that penalty, the soft-rank strength maximizing the soft model's.
    Returns ``(alpha, (alpha, strength))``.
    """
    folds = kfold(len(x), inner_folds, rng)
    splits = []
    for va in folds:
        tr = np.setdiff1d(np.arange(len(x)), va)
        xtr, xva = _standardize(x[tr], x[va])
        splits.append((xtr, r[tr], xva, r[va]))
    base = {a: np.mean([spearman(xva @ w + b, rva)
                        for xtr, rtr, xva, rva in splits
                        for w, b in [fit_ridge(xtr, rtr, a)]]) for a in alphas}
    best_a = max(alphas, key=lambda a: base[a])
    soft = {s: np.mean([spearman(xva @ w + b, rva)
                        for xtr, rtr, xva, rva in splits
                        for w, b in [fit_soft(xtr, rtr, best_a, s, iterations)]])
            for s in strengths}
    return best_a, (best_a, max(strengths, key=lambda s: soft[s]))


def evaluate_set(x, r, *, outer_folds, inner_folds, alphas, strengths, iterations, seed,
                 select_fn=None):
    """Nested CV on one set: per outer fold, select on the training part, score on the test."""
    select_fn = select_fn or select
    rng = np.random.default_rng(seed)
    out = {"baseline": [], "soft_rank": [], "chosen": []}
    for te in kfold(len(x), outer_folds, rng):
        tr = np.setdiff1d(np.arange(len(x)), te)
        a_base, (a_soft, s) = select_fn(x[tr], r[tr], inner_folds=inner_folds, alphas=alphas,
                                        strengths=strengths, iterations=iterations, rng=rng)
        xtr, xte = _standardize(x[tr], x[te])
        w, b = fit_ridge(xtr, r[tr], a_base)
        out["baseline"].append(spearman(xte @ w + b, r[te]))
        w, b = fit_soft(xtr, r[tr], a_soft, s, iterations)
        out["soft_rank"].append(spearman(xte @ w + b, r[te]))
        out["chosen"].append({"baseline_alpha": a_base, "soft_alpha": a_soft, "strength": s})
    return out


def outcome(base_folds, soft_folds) -> str:
    """win / tie / loss of soft_rank: a tie when the mean paired difference over the outer folds
    is within one standard error of it."""
    d = np.asarray(soft_folds) - np.asarray(base_folds)
    se = d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else 0.0
    if abs(d.mean()) <= se:
        return "tie"
    return "win" if d.mean() > 0 else "loss"


def plot(sets: dict):
    fig, axes = H.figure(size=(5.0, 4.6))
    ax = axes[0][0]
    b = np.array([v["baseline"] for v in sets.values()])
    s = np.array([v["soft_rank"] for v in sets.values()])
    ax.scatter(b, s, s=14)
    for name, bi, si in zip(sets, b, s):
        ax.annotate(name, (bi, si), fontsize=7, xytext=(3, -3), textcoords="offset points")
    lo, hi = min(b.min(), s.min()) - 0.02, 1.0
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlabel("baseline (ridge on ranks): test Spearman")
    ax.set_ylabel("soft-rank layer: test Spearman")
    ax.set_title("label ranking, nested CV (above the line: soft rank wins)")
    return fig


def main(argv=None):
    ap = H.parser(NAME, __doc__.splitlines()[0])
    ap.add_argument("--data", default=None,
                    help="folder of NAME.csv files (default: SOFTORDER_LABEL_RANKING_DIR, else "
                         "fetch by name)")
    ap.add_argument("--sets", default=None,
                    help="comma-separated names (default: every *.csv in --data; --quick: "
                         + ",".join(QUICK_SETS) + ")")
    ap.add_argument("--folds", type=int, default=None, help="outer folds (default 10, quick 5)")
    ap.add_argument("--inner-folds", type=int, default=None,
                    help="inner folds (default 3, quick 2)")
    ap.add_argument("--iterations", type=int, default=None,
                    help="L-BFGS iterations of the soft-rank model (default 50, quick 15)")
    args = ap.parse_args(argv)
    from softorder.datasets import label_ranking_names, load_label_ranking

    q = args.quick
    args.folds = args.folds or (5 if q else 10)
    args.inner_folds = args.inner_folds or (2 if q else 3)
    args.iterations = args.iterations or (15 if q else 50)
    data = args.data or os.environ.get("SOFTORDER_LABEL_RANKING_DIR")
    if args.sets:
        names = [s for s in args.sets.split(",") if s]
    elif q:
        names = list(QUICK_SETS)
    elif data:
        names = sorted(p.stem for p in Path(data).glob("*.csv"))
    else:
        names = list(label_ranking_names())
    if data and not args.sets:
        names = [n for n in names if (Path(data) / f"{n}.csv").exists()]
    alphas = ALPHAS[1:3] if q else ALPHAS
    strengths = STRENGTHS
    report = H.Report(NAME, args)
    H.seed_everything(args.seed)
    import torch

    torch.set_num_threads(1)  # small problems: intra-op threads only add contention
    sets, details, counts = {}, {}, {"win": 0, "tie": 0, "loss": 0}
    for name in H.progress(names, "label ranking (nested CV)", total=len(names)):
        x, r = load_label_ranking(name, data_dir=data)
        res = evaluate_set(x, r, outer_folds=args.folds, inner_folds=args.inner_folds,
                           alphas=alphas, strengths=strengths, iterations=args.iterations,
                           seed=args.seed)
        sets[name] = {"baseline": float(np.mean(res["baseline"])),
                      "soft_rank": float(np.mean(res["soft_rank"]))}
        o = outcome(res["baseline"], res["soft_rank"])
        counts[o] += 1
        details[name] = {**res, "outcome": o, "n_samples": int(x.shape[0]),
                         "n_labels": int(r.shape[1])}
    rows = [{"set": n, "samples": details[n]["n_samples"], "labels": details[n]["n_labels"],
             "baseline": v["baseline"], "soft_rank": v["soft_rank"],
             "difference": v["soft_rank"] - v["baseline"], "outcome": details[n]["outcome"]}
            for n, v in sets.items()]
    text = (f"Mean test Spearman correlation, {args.folds}-fold outer CV, hyperparameters by "
            f"{args.inner_folds}-fold inner CV on the training folds only (ridge penalty in "
            f"{list(alphas)} for the baseline, reused by the soft model; soft-rank strength in "
            f"{list(strengths)}). Soft rank vs baseline: "
            f"{counts['win']} wins, {counts['tie']} ties, {counts['loss']} losses (tie: mean "
            f"paired difference within one standard error over the outer folds).")
    report.save({"sets": sets, "wins": counts["win"], "ties": counts["tie"],
                 "losses": counts["loss"], "details": details},
                table=rows, text=text, figure=plot(sets))


if __name__ == "__main__":
    main()
