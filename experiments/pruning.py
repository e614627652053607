"""Magnitude pruning of an MLP on digits: soft top-k in magnitude (p = 2 and 4/3) vs hard
magnitude pruning (Sander et al., ICML 2023, Section 6).

An MLP ``64 -> 128 -> 128 -> 10`` (ReLU) is trained dense with cross-entropy, then pruned to each
target sparsity (every weight matrix, per layer; biases kept) with the same fine-tuning budget
of ``F`` steps:

* ``hard``: one-shot ``torch.nn.utils.prune.l1_unstructured`` (the smallest magnitudes zeroed),
  then ``F`` steps of fine-tuning with the mask fixed;
* ``hard gradual``: Zhu & Gupta's gradual magnitude pruning with the soft runs' sparsity ramp
  (after each of the first ``F/2`` steps, the smallest magnitudes up to the scheduled sparsity
  are set to zero), then ``l1_unstructured`` at the target and ``F/2`` steps with the mask
  fixed: it separates "gradual" from "soft";
* ``soft p=2`` / ``soft p=4/3``: `softorder.torch.SoftTopKMagnitudePruner` (the weights seen by
  the network are ``soft_topk_magnitude(W, k)``: exactly sparse at every step) with
  `pruning_schedule` (sparsity ramping from 0 to the target, strength decaying geometrically)
  for ``F/2`` steps, `freeze` to a hard mask, then ``F/2`` steps with the mask fixed.

Accuracy on the test split vs sparsity, and the achieved sparsity (fraction of exact zeros of
the pruned weights) as reported.

Run: ``python experiments/pruning.py [--quick] [--seed S] [--out DIR]``.
"""

from __future__ import annotations

import _harness as H
import numpy as np

NAME = "pruning"
METHODS = ("hard", "hard gradual", "soft p=2", "soft p=4/3")


def mlp():
    from torch import nn

    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(),
                         nn.Linear(128, 10))


def train(model, x, y, steps, gen, lr=1e-3, hook=None):
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (64,), generator=gen)
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if hook is not None:
            hook()


def accuracy(model, x, y):
    import torch

    with torch.no_grad():
        return float((model(x).argmax(-1) == y).float().mean())


def weights(model):
    from torch import nn

    return [m for m in model if isinstance(m, nn.Linear)]


def zero_fraction(model):
    ws = [m.weight.detach() for m in weights(model)]
    return float(sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws))


def prune_one(method, dense, sparsity, ft, data, seed, strengths):
    import copy

    import torch
    from torch.nn.utils import prune

    from softorder.torch import SoftTopKMagnitudePruner, pruning_schedule

    xtr, ytr, xte, yte = data
    model = copy.deepcopy(dense)
    gen = torch.Generator().manual_seed(seed + 7)  # the same batches for every method
    if method == "hard":
        for m in weights(model):
            prune.l1_unstructured(m, "weight", amount=sparsity)
        at_prune = accuracy(model, xte, yte)
        train(model, xtr, ytr, ft, gen)
        reported = zero_fraction(model)
    elif method == "hard gradual":
        ramp = ft // 2
        sched = pruning_schedule(sparsity, ramp)
        step = [0]

        def reprune():
            step[0] += 1
            s_t = sched(step[0])[0]
            with torch.no_grad():
                for m in weights(model):
                    w = m.weight.view(-1)
                    w[w.abs().argsort()[: int(round(s_t * w.numel()))]] = 0.0

        train(model, xtr, ytr, ramp, gen, hook=reprune)
        for m in weights(model):
            prune.l1_unstructured(m, "weight", amount=sparsity)
        at_prune = accuracy(model, xte, yte)
        train(model, xtr, ytr, ft - ramp, gen)
        reported = zero_fraction(model)
    else:
        p = 2.0 if method == "soft p=2" else 4 / 3
        lam0, lam1 = strengths[method]
        ramp = ft // 2
        pruner = SoftTopKMagnitudePruner(
            model, sparsity, p=p,
            schedule=pruning_schedule(sparsity, ramp, initial_strength=lam0,
                                      final_strength=lam1))
        train(model, xtr, ytr, ramp, gen, hook=pruner.step)
        pruner.freeze()
        at_prune = accuracy(model, xte, yte)
        train(model, xtr, ytr, ft - ramp, gen)
        reported = pruner.sparsity().total
    return {"method": method, "sparsity": sparsity, "seed": seed,
            "accuracy_at_prune": at_prune, "accuracy": accuracy(model, xte, yte),
            "achieved_sparsity": zero_fraction(model), "reported_sparsity": reported}


def main(argv=None):
    ap = H.parser(NAME, __doc__.splitlines()[0])
    args = ap.parse_args(argv)
    import torch
    from _digits import digits_split

    torch.set_num_threads(1)  # small model: threads only contend on a shared machine
    rep = H.Report(NAME, args)
    if args.quick:
        seeds, sparsities, pre, ft = [args.seed], (0.9, 0.95), 600, 200
    else:
        seeds, sparsities, pre, ft = ([args.seed + i for i in range(3)],
                                      (0.8, 0.9, 0.95, 0.98), 1500, 400)
    # Strength schedules (initial, final): p=2 is dimensionless (entries within a factor
    # 1 + lambda of the k-th magnitude are shrunk); p=4/3 is in |W|^(2/3) (weights ~ 0.1).
    strengths = {"soft p=2": (1.0, 1e-3), "soft p=4/3": (1e-1, 1e-3)}
    runs, dense_acc = [], {}
    jobs = [(s, sp, m) for s in seeds for sp in sparsities for m in METHODS]
    dense_models = {}
    for s, sp, m in H.progress(jobs, "seed x sparsity x method"):
        if s not in dense_models:
            H.seed_everything(s)
            data = digits_split(s)
            model = mlp()
            train(model, data[0], data[1], pre, torch.Generator().manual_seed(s), lr=3e-3)
            dense_models[s] = (model, data)
            dense_acc[s] = accuracy(model, data[2], data[3])
        model, data = dense_models[s]
        runs.append(prune_one(m, model, sp, ft, data, s, strengths))

    summary: dict = {"dense_accuracy": float(np.mean(list(dense_acc.values())))}
    table = []
    for sp in sparsities:
        row: dict = {"sparsity": sp}
        for m in METHODS:
            rs = [r for r in runs if r["method"] == m and r["sparsity"] == sp]
            acc = [r["accuracy"] for r in rs]
            summary.setdefault(m, {})[str(sp)] = {
                "accuracy_mean": float(np.mean(acc)),
                "accuracy_std": float(np.std(acc, ddof=1)) if len(acc) > 1 else 0.0,
                "accuracy_at_prune_mean": float(np.mean([r["accuracy_at_prune"] for r in rs])),
                "achieved_sparsity": float(np.mean([r["achieved_sparsity"] for r in rs]))}
            row[f"{m} acc"] = summary[m][str(sp)]["accuracy_mean"]
        best_hard = max(row["hard acc"], row["hard gradual acc"])
        row["soft p=2 - best hard"] = row["soft p=2 acc"] - best_hard
        row["soft p=4/3 - best hard"] = row["soft p=4/3 acc"] - best_hard
        table.append(row)

    fig, axes = H.figure(1, 1)
    ax = axes[0, 0]
    for i, m in enumerate(METHODS):
        mean = [summary[m][str(sp)]["accuracy_mean"] for sp in sparsities]
        std = [summary[m][str(sp)]["accuracy_std"] for sp in sparsities]
        ax.errorbar(sparsities, mean, yerr=std, marker="o", capsize=3, label=m, color=f"C{i}")
    ax.axhline(summary["dense_accuracy"], color="gray", ls=":", label="dense")
    ax.set(xlabel="sparsity (fraction of weights exactly 0)", ylabel="test accuracy",
           title=f"MLP on digits, {ft} fine-tuning steps, {len(seeds)} seed(s)")
    ax.legend()
    fig.tight_layout()
    text = (f"MLP 64-128-128-10 on digits, dense {pre} steps (test accuracy "
            f"{summary['dense_accuracy']:.4f}), then pruned per layer with {ft} fine-tuning "
            f"steps for every method; {len(seeds)} seed(s). Soft: pruning_schedule over {ft // 2} "
            f"steps (strength p=2: {strengths['soft p=2']}, p=4/3: {strengths['soft p=4/3']}), "
            f"freeze, {ft - ft // 2} steps; hard gradual: the same sparsity ramp with hard masks. "
            "Accuracy after fine-tuning, and the difference to the better hard method:")
    rep.save({"sparsities": list(sparsities), "pretrain_steps": pre, "finetune_steps": ft,
              "strengths": strengths, "dense_accuracy_per_seed": dense_acc,
              "summary": summary, "runs": runs}, table=table, text=text, figure=fig)


if __name__ == "__main__":
    main()
