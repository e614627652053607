"""A mixture-of-experts classifier with softmax + hard top-k gating vs the sparse soft top-k
router (Sander et al., ICML 2023, Section 6).

Model (PyTorch, digits): ``h = relu(W_in x)``; a mixture-of-experts layer with ``E`` experts
(each an MLP ``d -> 2d -> d``), of which each image ("token") uses ``k``; ``h + sum_e g_e
expert_e(h)``; a linear head. The dispatcher is sparse: expert ``e`` runs only on the tokens
whose gate ``g_e`` is nonzero. Routers compared (same initialisation, batches and steps):

* ``hard``: softmax + hard top-k, ``g = softmax(z) * 1[top_k(z)]`` (Riquelme et al. 2021's
  gate; its derivative ignores the choice), with the Switch load-balancing loss when
  ``--aux`` > 0;
* ``soft``: `softorder.torch.SparseTopKRouter` (token choice, p = 4/3), the same auxiliary loss
  weight;
* ``soft-ec``: the same router in expert-choice mode (capacity factor 1): each expert takes its
  top tokens, balanced by construction.

Measured: test accuracy, the experts' load balance (coefficient of variation of the number of
test tokens each expert receives: 0 = perfectly even), the fraction of gates that are exactly
zero (hard top-k: exactly ``1 - k/E``), the mean number of experts per token, and the time per
training step (forward + backward + update, dispatch included).

Run: ``python experiments/moe_router.py [--quick] [--seed S] [--out DIR]``.
"""

from __future__ import annotations

import time

import _harness as H
import numpy as np

NAME = "moe_router"
METHODS = ("hard", "soft", "soft-ec")


def build(method, d, n_experts, k, strength, aux):
    import torch
    from torch import nn

    from softorder.torch import SparseTopKRouter

    class HardRouter(nn.Module):
        """softmax + hard top-k; the same outputs as `SparseTopKRouter` (gates, indices,
        load, aux)."""

        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(d, n_experts, bias=False)

        def forward(self, x):
            z = self.linear(x)
            probs = torch.softmax(z, dim=-1)
            idx = z.topk(k, dim=-1).indices
            gates = probs * torch.zeros_like(probs).scatter_(-1, idx, 1.0)
            load = (gates != 0).sum(0)
            frac = load.to(z.dtype) / (z.shape[0] * k)
            return gates, idx, load, aux * n_experts * (frac * probs.mean(0)).sum()

    class MoE(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = nn.Linear(64, d)
            if method == "hard":
                self.router = HardRouter()
            else:
                self.router = SparseTopKRouter(
                    d, n_experts, k, regularization_strength=strength, p=4 / 3,
                    load_balancing_weight=aux,
                    mode="token_choice" if method == "soft" else "expert_choice")
            self.experts = nn.ModuleList(
                nn.Sequential(nn.Linear(d, 2 * d), nn.ReLU(), nn.Linear(2 * d, d))
                for _ in range(n_experts))
            self.head = nn.Linear(d, 10)

        def forward(self, x):
            h = torch.relu(self.inp(x))
            gates, _, load, aux_loss = self.router(h)
            out = h
            for e, expert in enumerate(self.experts):
                rows = (gates[:, e] != 0).nonzero()[:, 0]  # sparse dispatch
                if rows.numel():
                    out = out.index_add(0, rows, gates[rows, e:e + 1] * expert(h[rows]))
            return self.head(out), gates, aux_loss

    return MoE()


def run(method, seed, steps, d, n_experts, k, strength, aux, data):
    import torch

    xtr, ytr, xte, yte = data
    torch.manual_seed(seed)  # the same initialisation for every method (router aside)
    model = build(method, d, n_experts, k, strength, aux)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed + 1)
    times = []
    for _ in range(steps):
        idx = torch.randint(0, xtr.shape[0], (64,), generator=gen)
        t = time.perf_counter()
        logits, _, aux_loss = model(xtr[idx])
        loss = torch.nn.functional.cross_entropy(logits, ytr[idx]) + aux_loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t)
    model.eval()
    with torch.no_grad():
        logits, gates, _ = model(xte)
    nz = gates != 0
    load = nz.sum(0).double()
    return {"method": method, "seed": seed,
            "test_accuracy": float((logits.argmax(-1) == yte).float().mean()),
            "load": load.tolist(),
            "load_cv": float(load.std(unbiased=False) / load.mean()),
            "zero_gate_fraction": float((~nz).double().mean()),
            "experts_per_token": float(nz.sum(-1).double().mean()),
            "tokens_with_no_expert": float((nz.sum(-1) == 0).double().mean()),
            "ms_per_step": 1e3 * float(np.median(times))}


def main(argv=None):
    ap = H.parser(NAME, __doc__.splitlines()[0])
    ap.add_argument("--experts", type=int, default=8, help="number of experts (default 8)")
    ap.add_argument("--k", type=int, default=2, help="experts per token (default 2)")
    ap.add_argument("--strength", type=float, default=0.5,
                    help="soft router's regularization_strength, logit units (default 0.5)")
    ap.add_argument("--aux", type=float, default=0.01,
                    help="load-balancing loss weight, all routers (default 0.01)")
    args = ap.parse_args(argv)
    import torch
    from _digits import digits_split

    torch.set_num_threads(1)  # tiny model: threads only contend on a shared machine
    rep = H.Report(NAME, args)
    steps, seeds = (250, [args.seed]) if args.quick else (1500, [args.seed + i for i in range(3)])
    d = 32
    jobs = [(m, s) for s in seeds for m in METHODS]
    runs = []
    for m, s in H.progress(jobs, "routers x seeds"):
        H.seed_everything(s)
        runs.append(run(m, s, steps, d, args.experts, args.k, args.strength, args.aux,
                        digits_split(s)))

    keys = ("test_accuracy", "load_cv", "zero_gate_fraction", "experts_per_token",
            "tokens_with_no_expert", "ms_per_step")
    summary = {}
    for m in METHODS:
        rs = [r for r in runs if r["method"] == m]
        summary[m] = {key: {"mean": float(np.mean([r[key] for r in rs])),
                            "std": float(np.std([r[key] for r in rs], ddof=1))
                            if len(rs) > 1 else 0.0} for key in keys}
    table = [{"router": m, **{key: summary[m][key]["mean"] for key in keys}} for m in METHODS]
    hard_zero = 1 - args.k / args.experts

    fig, axes = H.figure(2, 1)
    for i, m in enumerate(METHODS):  # experts sorted by load in each run (ids are arbitrary)
        load = np.mean([sorted(r["load"], reverse=True) for r in runs if r["method"] == m],
                       axis=0)
        axes[0, 0].bar(np.arange(args.experts) + (i - 1) * 0.27, load, width=0.27, label=m)
    axes[0, 0].set(xlabel="expert, by decreasing load", ylabel="test tokens routed",
                   title="expert load (mean over seeds)")
    axes[0, 0].legend()
    ax = axes[0, 1]
    for i, m in enumerate(METHODS):
        ax.bar(i, summary[m]["test_accuracy"]["mean"], yerr=summary[m]["test_accuracy"]["std"],
               color=f"C{i}")
    ax.set_xticks(range(len(METHODS)), METHODS)
    lo = min(summary[m]["test_accuracy"]["mean"] for m in METHODS)
    ax.set(ylim=(max(0.0, lo - 0.05), 1.0), ylabel="test accuracy",
           title=f"MoE on digits: E={args.experts}, k={args.k}")
    fig.tight_layout()

    s, h = summary["soft"], summary["hard"]
    text = (f"{len(seeds)} seed(s), {steps} steps, E={args.experts} experts, k={args.k}, "
            f"aux loss weight {args.aux}, soft router strength {args.strength} (p=4/3). "
            f"Test accuracy: hard {h['test_accuracy']['mean']:.4f}, soft "
            f"{s['test_accuracy']['mean']:.4f}, soft expert-choice "
            f"{summary['soft-ec']['test_accuracy']['mean']:.4f}. Load CV: hard "
            f"{h['load_cv']['mean']:.3f}, soft {s['load_cv']['mean']:.3f}, soft expert-choice "
            f"{summary['soft-ec']['load_cv']['mean']:.3f}. Exactly-zero gates: hard "
            f"{h['zero_gate_fraction']['mean']:.4f} (1 - k/E = {hard_zero:.4f}), soft "
            f"{s['zero_gate_fraction']['mean']:.4f}. Time per step: soft/hard = "
            f"{s['ms_per_step']['mean'] / h['ms_per_step']['mean']:.2f} (shared, loaded "
            f"2-core machine).")
    rep.save({"experts": args.experts, "k": args.k, "strength": args.strength, "aux": args.aux,
              "steps": steps, "hard_zero_fraction": hard_zero, "summary": summary,
              "runs": runs}, table=table, text=text, figure=fig)


if __name__ == "__main__":
    main()
