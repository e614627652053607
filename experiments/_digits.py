"""scikit-learn's digits (1797 images of 8x8, 10 classes) as torch tensors, split once.

The experiments that train a model (vit_topk, moe_router, pruning) share this split: pixels
scaled to [0, 1] (the raw values are 0..16), a stratified train/test split that depends on the
seed only.
"""

from __future__ import annotations


def digits_split(seed: int, test_size: float = 0.3, train_fraction: float = 1.0):
    """``(x_train, y_train, x_test, y_test)``: float32 ``[N, 64]`` in [0, 1], int64 labels.

    ``train_fraction`` < 1 keeps a stratified part of the training split (a harder task).
    """
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_size, random_state=seed,
                                          stratify=y)
    if train_fraction < 1.0:
        xtr, _, ytr, _ = train_test_split(xtr, ytr, train_size=train_fraction,
                                          random_state=seed, stratify=ytr)
    f = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    g = lambda a: torch.as_tensor(a, dtype=torch.int64)  # noqa: E731
    return f(xtr), g(ytr), f(xte), g(yte)
