"""Top-k classification: cross-entropy vs the soft-rank top-k loss (the sorting paper, section 6).

A small CNN (PyTorch) is trained on scikit-learn's digits (8x8 images, 10 classes), or on
CIFAR-10/100 with ``--cifar DIR``, with

* cross-entropy;
* softorder.torch.topk_classification_loss (``max(0, r_y - k)`` on the descending soft rank of
  the true label) with ``regularization="l2"`` (the paper's rQ) and ``"kl"`` (rE);
* the same hinge on the ranks of the O(n^2) baselines (experiments/baselines.py): Sinkhorn OT
  ranks (Cuturi et al. 2019, the loss this one follows) and All-pairs sigmoid ranks.

Reported over several seeds: top-1 and top-k test accuracy and the training time per epoch.
The paper claims the soft-rank losses are as accurate as OT (and faster).

Usage:
  python experiments/topk_classification.py --out DIR [--quick] [--seed 0] [--seeds 3]
      [--epochs 20] [--k 1] [--cifar DIR]
``--cifar DIR``: the python pickle format of CIFAR-10 (``data_batch_1..5``, ``test_batch``) or
CIFAR-100 (``train``, ``test``), as distributed by its authors.
"""

from __future__ import annotations

import os
import pickle
import time

import _harness as H
import numpy as np

NAME = "topk_classification"
METHODS = ("cross-entropy", "rQ (l2)", "rE (kl)", "OT (Sinkhorn)", "All-pairs")


def load_cifar(folder: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """CIFAR-10 or CIFAR-100 from the python pickle batches in ``folder``.

    Returns ``(x_train, y_train, x_test, y_test, n_classes)``, images as float32
    ``(N, 3, 32, 32)`` in [0, 1] and labels as int64 (CIFAR-100: the fine labels).
    """

    def read(name):
        with open(os.path.join(folder, name), "rb") as f:
            d = pickle.load(f, encoding="bytes")
        d = {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}
        x = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
        y = np.asarray(d["fine_labels"] if "fine_labels" in d else d["labels"], dtype=np.int64)
        if len(x) != len(y):
            raise ValueError(f"{name}: {len(x)} images but {len(y)} labels")
        return x.astype(np.float32) / 255.0, y

    if os.path.exists(os.path.join(folder, "data_batch_1")):
        parts = [read(f"data_batch_{i}") for i in range(1, 6)
                 if os.path.exists(os.path.join(folder, f"data_batch_{i}"))]
        xtr, ytr = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        xte, yte = read("test_batch")
        classes = 10
    elif os.path.exists(os.path.join(folder, "train")):
        (xtr, ytr), (xte, yte) = read("train"), read("test")
        classes = 100
    else:
        raise FileNotFoundError(f"{folder}: neither CIFAR-10 (data_batch_1, test_batch) nor "
                                f"CIFAR-100 (train, test) pickle files")
    return xtr, ytr, xte, yte, classes


def load_digits_split(seed: int):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    rng = np.random.default_rng(seed)
    te = np.concatenate([rng.permutation(np.flatnonzero(y == c))[: int(0.2 * (y == c).sum())]
                         for c in range(10)])
    tr = np.setdiff1d(np.arange(len(y)), te)
    return x[tr], y[tr].astype(np.int64), x[te], y[te].astype(np.int64), 10


def make_cnn(in_channels: int, classes: int):
    import torch.nn as nn

    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64 * 4, classes))


def make_loss(method: str, k: int, strength: float):
    """``(logits, labels) -> loss``. The baselines get the same hinge ``max(0, r_y - k)`` on
    their descending ranks ``n + 1 - r^asc``."""
    import baselines as B
    import torch
    import torch.nn.functional as F

    from softorder.torch import topk_classification_loss

    if method == "cross-entropy":
        return F.cross_entropy
    if method in ("rQ (l2)", "rE (kl)"):
        reg = "l2" if method.startswith("rQ") else "kl"
        return lambda z, y: topk_classification_loss(z, y, k, regularization=reg,
                                                     regularization_strength=strength)

    rank = (B.sinkhorn_soft_rank if method.startswith("OT")
            else lambda z: B.allpairs_soft_rank(z, tau=strength))

    def hinge(z, y):
        n = z.shape[-1]
        r_desc = n + 1 - rank(z)
        return torch.clamp(r_desc.gather(1, y[:, None])[:, 0] - k, min=0.0).mean()

    return hinge


def accuracy(logits, y, k: int) -> float:
    top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    return float(np.mean((top == y[:, None]).any(1)))


def train_one(method, data, *, k, k_eval, strength, epochs, batch, lr, seed):
    import torch

    xtr, ytr, xte, yte, classes = data
    torch.manual_seed(seed)
    model = make_cnn(xtr.shape[1], classes)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = make_loss(method, k, strength)
    xt, yt = torch.as_tensor(xtr), torch.as_tensor(ytr)
    rng = np.random.default_rng(seed)
    epoch_times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        model.train()
        for idx in np.array_split(rng.permutation(len(xt)), max(1, len(xt) // batch)):
            i = torch.as_tensor(idx)
            opt.zero_grad()
            loss = loss_fn(model(xt[i]), yt[i])
            loss.backward()
            opt.step()
        epoch_times.append(time.perf_counter() - t0)
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(torch.as_tensor(xte[j:j + 1000]))
                            for j in range(0, len(xte), 1000)]).numpy()
    return {"top1": accuracy(logits, yte, 1), f"top{k_eval}": accuracy(logits, yte, k_eval),
            "seconds_per_epoch": float(np.median(epoch_times))}


def main(argv=None):
    ap = H.parser(NAME, __doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=None, help="seeds (default 3, quick 1)")
    ap.add_argument("--epochs", type=int, default=None, help="epochs (default 20, quick 3)")
    ap.add_argument("--k", type=int, default=1, help="the k of the training loss (default 1)")
    ap.add_argument("--k-eval", type=int, default=3, help="the k of top-k accuracy (default 3)")
    ap.add_argument("--strength", type=float, default=1.0,
                    help="soft-rank strength (rQ, rE) and All-pairs temperature (default 1)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--cifar", default=None, help="folder of CIFAR-10/100 pickle batches")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args(argv)
    q = args.quick
    args.seeds = args.seeds or (1 if q else 3)
    args.epochs = args.epochs or (3 if q else 20)
    report = H.Report(NAME, args)
    H.seed_everything(args.seed)
    import torch

    torch.set_num_threads(args.threads)
    dataset = "cifar" if args.cifar else "digits"
    jobs = [(m, args.seed + s) for s in range(args.seeds) for m in METHODS]
    runs = []
    cifar = load_cifar(args.cifar) if args.cifar else None
    for method, seed in H.progress(jobs, f"top-k classification ({dataset})", total=len(jobs)):
        data = cifar if cifar is not None else load_digits_split(seed)
        runs.append({"method": method, "seed": seed,
                     **train_one(method, data, k=args.k, k_eval=args.k_eval,
                                 strength=args.strength, epochs=args.epochs, batch=args.batch,
                                 lr=args.lr, seed=seed)})
    ke = f"top{args.k_eval}"
    summary, rows = {}, []
    for m in METHODS:
        sel = [u for u in runs if u["method"] == m]
        summary[m] = {key: float(np.mean([u[key] for u in sel]))
                      for key in ("top1", ke, "seconds_per_epoch")}
        summary[m]["top1_std"] = float(np.std([u["top1"] for u in sel]))
        rows.append({"loss": m, "top-1 accuracy": summary[m]["top1"],
                     "top-1 std": summary[m]["top1_std"],
                     f"top-{args.k_eval} accuracy": summary[m][ke],
                     "s / epoch": summary[m]["seconds_per_epoch"]})
    fig, axes = H.figure(ncols=2)
    xs = np.arange(len(METHODS))
    axes[0][0].bar(xs - 0.2, [summary[m]["top1"] for m in METHODS], 0.4, label="top-1",
                   yerr=[summary[m]["top1_std"] for m in METHODS])
    axes[0][0].bar(xs + 0.2, [summary[m][ke] for m in METHODS], 0.4, label=f"top-{args.k_eval}")
    axes[0][0].set_ylim(0.5, 1.0)
    axes[0][0].legend(fontsize=8)
    axes[0][0].set_ylabel("test accuracy")
    axes[0][1].bar(xs, [summary[m]["seconds_per_epoch"] for m in METHODS])
    axes[0][1].set_ylabel("seconds per epoch")
    for ax in axes[0]:
        ax.set_xticks(xs, METHODS, rotation=25, fontsize=8)
    fig.suptitle(f"{dataset}: small CNN, {args.epochs} epochs, {args.seeds} seed(s), "
                 f"training k={args.k}")
    fig.tight_layout()
    text = (f"{dataset}, small CNN, Adam lr {args.lr}, batch {args.batch}, {args.epochs} epochs, "
            f"mean over {args.seeds} seed(s); top-k losses with k={args.k}, soft-rank strength / "
            f"All-pairs temperature {args.strength}, OT with eps 1e-2 and 100 Sinkhorn "
            f"iterations (on the squashed logits). Seconds per epoch: median, "
            f"{args.threads} torch thread(s).")
    report.save({"runs": runs, "summary": summary, "dataset": dataset, "k_eval": args.k_eval},
                table=rows, text=text, figure=fig)


if __name__ == "__main__":
    main()
