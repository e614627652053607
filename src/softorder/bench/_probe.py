"""First-call cost: a fresh Python process imports a library and calls it twice, forward and
backward on a [4, 100] input; the import, the first call (compilation, kernel loading) and
the second call are timed inside the process, the whole run (interpreter start included) from
outside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

# label, import name that must be installed, set-up code (imports), one forward+backward call
PROBES: list[tuple[str, str, str, str]] = [
    ("softorder.numpy", "numba",
     "import numpy as np; import softorder.numpy as so; x = np.random.rand(4, 100)",
     "y, r = so.soft_rank_fwd(x); so.vjp(r, y)"),
    ("softorder.torch", "torch",
     "import torch, softorder.torch as st; x = torch.rand(4, 100, requires_grad=True)",
     "st.soft_rank(x).sum().backward()"),
    ("softorder.jax", "jax",
     "import jax, softorder.jax as sj; x = jax.numpy.ones((4, 100)).cumsum(-1)",
     "jax.block_until_ready(jax.grad(lambda x: sj.soft_rank(x).sum())(x))"),
    ("softorder.tensorflow", "tensorflow",
     "import tensorflow as tf, softorder.tensorflow as stf; x = tf.random.uniform((4, 100))",
     "with tf.GradientTape() as t:\n    t.watch(x); y = stf.soft_rank(x)\nt.gradient(y, x).numpy()"),
    ("torchsort", "torchsort",
     "import torch, torchsort; x = torch.rand(4, 100, requires_grad=True)",
     "torchsort.soft_rank(x).sum().backward()"),
    ("fast-soft-sort", "fast_soft_sort",
     "import torch; from fast_soft_sort import pytorch_ops; x = torch.rand(4, 100, "
     "dtype=torch.float64, requires_grad=True)",
     "pytorch_ops.soft_rank(x).sum().backward()"),
    ("ott-jax", "ott",
     "import jax; from ott.tools import soft_sort; x = jax.numpy.ones((4, 100)).cumsum(-1)",
     "jax.block_until_ready(jax.grad(lambda x: soft_sort.ranks(x, axis=-1).sum())(x))"),
    ("diffsort", "diffsort",
     "import torch; from diffsort import DiffSortNet; x = torch.rand(4, 100, requires_grad=True)",
     "DiffSortNet('bitonic', 100)(x)[0].sum().backward()"),
    ("difftopk", "difftopk",
     "import torch; from difftopk import DiffTopkNet; x = torch.rand(4, 100, requires_grad=True)",
     "DiffTopkNet('bitonic', 100, 10)(x)[1].sum().backward()"),
    ("softtorch", "softtorch",
     "import torch, softtorch; x = torch.rand(4, 100, requires_grad=True)",
     "softtorch.rank(x, dim=-1, method='fast_soft_sort').sum().backward()"),
    ("softjax", "softjax",
     "import jax, softjax; x = jax.numpy.ones((4, 100)).cumsum(-1)",
     "jax.block_until_ready(jax.grad(lambda x: softjax.rank(x, axis=-1, "
     "method='fast_soft_sort').sum())(x))"),
    ("torchisotonic", "torchisotonic",
     "import torch, torchisotonic; x = torch.rand(4, 100, requires_grad=True)",
     "torchisotonic.isotonic(x).sum().backward()"),
    ("scikit-learn", "sklearn",
     "import numpy as np; from sklearn.isotonic import isotonic_regression; "
     "x = np.random.rand(4, 100)",
     "[isotonic_regression(r) for r in x]"),
]

_TEMPLATE = """
import json, sys, time
t0 = time.perf_counter()
{setup}
t1 = time.perf_counter()
{call}
t2 = time.perf_counter()
{call}
t3 = time.perf_counter()
print("@@probe " + json.dumps({{"import_s": t1 - t0, "first_call_s": t2 - t1,
                               "second_call_s": t3 - t2}}))
"""


def probe(label: str, setup: str, call: str, env: dict | None = None,
          timeout: float = 600.0) -> dict:
    """Run one probe in a fresh process; a dict of seconds, or ``error``."""
    code = _TEMPLATE.format(setup=setup, call=call)
    t0 = time.perf_counter()
    try:
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"library": label, "error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    for line in res.stdout.splitlines():
        if line.startswith("@@probe "):
            out = {"library": label, **json.loads(line[8:]), "process_s": wall}
            return out
    tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"library": label, "error": tail[0][:300]}


def probes(installed, quick: bool, cold_cache: bool):
    """The probes to run: (label, setup, call, env). ``--quick`` runs softorder.numpy only."""
    out: list[tuple[str, str, str, dict | None]] = []
    for label, module, setup, call in PROBES:
        if quick and label != "softorder.numpy":
            continue
        if installed(module) and (label != "softorder.tensorflow" or installed("tensorflow")):
            out.append((label, setup, call, None))
    if cold_cache and not quick:
        cache = tempfile.mkdtemp(prefix="softorder-bench-numba-")
        label, _, setup, call = PROBES[0]
        out.insert(0, (label + " (empty Numba cache)", setup, call,
                       dict(os.environ, NUMBA_CACHE_DIR=cache)))
    return out
