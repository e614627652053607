"""Top-k fine-tuning of a tiny vision transformer with a soft top-k loss (Sander et al., ICML 2023,
Section 6).

A ViT written here (patch embedding, class token, learned positions, pre-norm transformer
blocks; no pretrained weights; PyTorch) is trained on scikit-learn digits with cross-entropy,
then fine-tuned from that checkpoint for the same number of steps either with more
cross-entropy or with a top-k loss built on `softorder.torch.soft_topk_mask`. Top-1 and top-k
test accuracy before and after, over several seeds in a full run.

The top-k loss (derivation in docs/experiments/vit_topk.md). For logits ``theta`` and label
``y`` let ``v = theta_{-y}`` be the other classes' logits and ``m_j(v)`` the sparse soft top-j
mask (`soft_topk_mask(v, j)`, strength ``eps``, exponent ``p``). The soft j-th largest other
logit is ``T_j(v) = <m_j(v), v> - <m_{j-1}(v), v>`` (``<m_0, v> = 0``): as ``eps -> 0`` the
masks are the hard top-j indicators and ``T_j`` is exactly the j-th largest entry of ``v``. The
loss is the top-k hinge

    l_k(theta, y) = max(0, margin + T_k(theta_{-y}) - theta_y),

zero exactly when the true logit beats the k-th best other class by ``margin``, i.e. when the
true class is in the top k with that margin (hard limit: the top-k multiclass hinge of Lapin
et al., 2015). Fine-tuning uses ``(l_1 + l_k) / 2``, a uniform distribution over {1, k} as in
Petersen et al. (2022), whose setting the paper follows, so that top-1 is not abandoned.

Run: ``python experiments/vit_topk.py [--quick] [--seed S] [--out DIR] [--k K]``.
"""

from __future__ import annotations

import copy
import math

import _harness as H
import numpy as np

NAME = "vit_topk"


def build_vit(dim=32, depth=2, heads=4, patch=2, image=8, n_classes=10, mlp=64):
    """A tiny ViT: [B, 64] digits -> [B, n_classes] logits."""
    import torch
    from torch import nn

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)

        def forward(self, x):
            b, t, _ = x.shape
            q, k, v = self.qkv(x).view(b, t, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
            a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dim // heads), dim=-1)
            return self.proj((a @ v).transpose(1, 2).reshape(b, t, dim))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.n1, self.n2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.attn = Attention()
            self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))

        def forward(self, x):
            x = x + self.attn(self.n1(x))
            return x + self.mlp(self.n2(x))

    class ViT(nn.Module):
        def __init__(self):
            super().__init__()
            self.patches = (image // patch) ** 2
            self.embed = nn.Linear(patch * patch, dim)
            self.cls = nn.Parameter(torch.zeros(1, 1, dim))
            self.pos = nn.Parameter(0.02 * torch.randn(1, self.patches + 1, dim))
            self.blocks = nn.Sequential(*[Block() for _ in range(depth)])
            self.norm = nn.LayerNorm(dim)
            self.head = nn.Linear(dim, n_classes)

        def forward(self, x):
            b = x.shape[0]
            g = image // patch  # [B, 64] -> [B, patches, patch*patch]
            p = x.view(b, g, patch, g, patch).permute(0, 1, 3, 2, 4).reshape(b, g * g, -1)
            t = torch.cat([self.cls.expand(b, -1, -1), self.embed(p)], dim=1) + self.pos
            return self.head(self.norm(self.blocks(t))[:, 0])

    return ViT()


def soft_kth_largest(v, k: int, eps: float, p: float):
    """``T_k(v) = <m_k(v), v> - <m_{k-1}(v), v>`` per row; the k-th largest entry as eps -> 0."""
    import softorder.torch as st

    top = (st.soft_topk_mask(v, k, regularization_strength=eps, p=p) * v).sum(-1)
    if k == 1:
        return top
    return top - (st.soft_topk_mask(v, k - 1, regularization_strength=eps, p=p) * v).sum(-1)


def topk_hinge_loss(logits, y, k: int, *, eps: float = 1.0, p: float = 4 / 3,
                    margin: float = 1.0, reduce: bool = True):
    """Mean of ``max(0, margin + T_k(theta_{-y}) - theta_y)`` over the batch (per example
    with ``reduce=False``)."""
    import torch

    n_classes = logits.shape[-1]
    true = logits.gather(1, y[:, None])[:, 0]
    keep = torch.ones_like(logits, dtype=torch.bool).scatter_(1, y[:, None], False)
    others = logits[keep].view(-1, n_classes - 1)
    loss = torch.relu(margin + soft_kth_largest(others, k, eps, p) - true)
    return loss.mean() if reduce else loss


def accuracy(model, x, y, ks=(1, 2)):
    import torch

    model.eval()
    with torch.no_grad():
        logits = model(x)
    model.train()
    top = logits.topk(max(ks), dim=-1).indices
    return {f"top{k}": float((top[:, :k] == y[:, None]).any(-1).float().mean()) for k in ks}


def train(model, x, y, steps, loss_fn, lr, batch, gen, evaluate=None, every=0):
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    curve = []
    for step in range(1, steps + 1):
        idx = torch.randint(0, x.shape[0], (batch,), generator=gen)
        loss = loss_fn(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if evaluate is not None and every and (step % every == 0 or step == steps):
            curve.append({"step": step, **evaluate(model)})
    return curve


def run_seed(seed, k, pre_steps, ft_steps, eps, p, margin, train_fraction, every,
             label_noise=0.0):
    import torch
    from _digits import digits_split

    H.seed_everything(seed)
    xtr, ytr, xte, yte = digits_split(seed, train_fraction=train_fraction)
    if label_noise > 0:  # symmetric noise on the training labels; the test set stays clean
        g = torch.Generator().manual_seed(seed + 2)
        flip = torch.rand(ytr.shape, generator=g) < label_noise
        shift = torch.randint(1, 10, ytr.shape, generator=g)
        ytr = torch.where(flip, (ytr + shift) % 10, ytr)
    model = build_vit()
    gen = torch.Generator().manual_seed(seed)
    ce = torch.nn.functional.cross_entropy
    train(model, xtr, ytr, pre_steps, ce, 3e-3, 64, gen)
    ks = (1, k)
    ev = lambda m: accuracy(m, xte, yte, ks)  # noqa: E731
    before = ev(model)

    def topk_loss(logits, yy):
        return 0.5 * (topk_hinge_loss(logits, yy, 1, eps=eps, p=p, margin=margin)
                      + topk_hinge_loss(logits, yy, k, eps=eps, p=p, margin=margin))

    model.eval()
    with torch.no_grad():  # training examples the top-k loss acts on (nonzero) at the start
        logits = model(xtr)
        active = float(np.mean([float((topk_hinge_loss(logits, ytr, kk, eps=eps, p=p,
                                                       margin=margin, reduce=False) > 0)
                                      .double().mean()) for kk in (1, k)]))
    model.train()
    out = {"seed": seed, "before": before, "train_active_fraction_at_start": active}
    for name, fn in (("cross_entropy", ce), ("soft_topk", topk_loss)):
        m = copy.deepcopy(model)
        g = torch.Generator().manual_seed(seed + 1)  # the same batches for both
        curve = train(m, xtr, ytr, ft_steps, fn, 1e-3, 64, g, ev, every)
        out[name] = {"after": ev(m), "curve": curve}
    return out


def main(argv=None):
    ap = H.parser(NAME, __doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=2, help="the k of top-k (default 2)")
    ap.add_argument("--eps", type=float, default=1.0, help="soft top-k strength (default 1)")
    ap.add_argument("--p", type=float, default=4 / 3, help="soft top-k exponent (default 4/3)")
    ap.add_argument("--label-noise", type=float, default=0.0,
                    help="fraction of training labels replaced by another class (default 0)")
    ap.add_argument("--seeds", type=int, default=5, help="seeds in a full run (default 5)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # tiny model: threads only contend on a shared machine
    rep = H.Report(NAME, args)
    if args.quick:
        seeds, pre, ft, frac, every = [args.seed], 200, 100, 0.5, 50
    else:
        seeds, pre, ft, frac, every = [args.seed + i for i in range(args.seeds)], 800, 600, 0.5, 50
    runs = [run_seed(s, args.k, pre, ft, args.eps, args.p, 1.0, frac, every, args.label_noise)
            for s in H.progress(seeds, "seeds")]
    k = args.k
    keys = ("top1", f"top{k}")

    def stats(get):
        a = np.array([get(r) for r in runs])
        return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0}

    summary = {"before": {m: stats(lambda r, m=m: r["before"][m]) for m in keys}}
    for name in ("cross_entropy", "soft_topk"):
        summary[name] = {m: stats(lambda r, m=m, name=name: r[name]["after"][m]) for m in keys}
        summary[name]["delta_vs_before"] = {
            m: stats(lambda r, m=m, name=name: r[name]["after"][m] - r["before"][m])
            for m in keys}
    summary["soft_topk_minus_cross_entropy"] = {
        m: stats(lambda r, m=m: r["soft_topk"]["after"][m] - r["cross_entropy"]["after"][m])
        for m in keys}

    table = []
    for label, key in (("pretrained (CE)", "before"), (f"+{ft} steps CE", "cross_entropy"),
                       (f"+{ft} steps soft top-{k} loss", "soft_topk")):
        table.append({"model": label,
                      "top-1 acc": summary[key]["top1"]["mean"],
                      "top-1 std": summary[key]["top1"]["std"],
                      f"top-{k} acc": summary[key][f"top{k}"]["mean"],
                      f"top-{k} std": summary[key][f"top{k}"]["std"]})

    fig, axes = H.figure(2, 1)
    for j, m in enumerate(keys):
        ax = axes[0, j]
        for name, ls in (("cross_entropy", "-"), ("soft_topk", "--")):
            steps = [c["step"] for c in runs[0][name]["curve"]]
            vals = np.array([[c[m] for c in r[name]["curve"]] for r in runs])
            ax.plot([0, *steps], [np.mean([r["before"][m] for r in runs]), *vals.mean(0)],
                    ls=ls, marker=".", label=name.replace("_", "-"))
        ax.set(xlabel="fine-tuning step", ylabel=f"test {m} accuracy",
               title=f"tiny ViT on digits: {m} (mean of {len(runs)} seed(s))")
        ax.legend()
    fig.tight_layout()

    d = summary["soft_topk_minus_cross_entropy"]
    summary["train_active_fraction_at_start"] = stats(
        lambda r: r["train_active_fraction_at_start"])
    text = (f"Tiny ViT (2 blocks, dim 32, patch 2) on digits ({int(frac * 100)}% of the "
            f"training split, label noise {args.label_noise}), {pre} cross-entropy steps, "
            f"then {ft} fine-tuning steps; "
            f"{len(runs)} seed(s). Soft top-{k} loss = (l_1 + l_{k})/2, eps={args.eps}, "
            f"p={args.p:.4g}, margin 1. Soft top-k minus cross-entropy after fine-tuning: top-1 "
            f"{d['top1']['mean']:+.4f} (std {d['top1']['std']:.4f}), top-{k} "
            f"{d[f'top{k}']['mean']:+.4f} (std {d[f'top{k}']['std']:.4f}). Fraction of training "
            f"examples (x2 terms) with a nonzero top-k loss when fine-tuning starts: "
            f"{summary['train_active_fraction_at_start']['mean']:.3f} (0 = the hinge is "
            "inactive and the fine-tuning leaves the model unchanged).")
    rep.save({"k": k, "eps": args.eps, "p": args.p, "label_noise": args.label_noise,
              "pretrain_steps": pre,
              "finetune_steps": ft, "train_fraction": frac, "summary": summary, "runs": runs},
             table=table, text=text, figure=fig)


if __name__ == "__main__":
    main()
