"""Importing softorder.torch imports torch only: not Triton (which must not be loaded after
TensorFlow), JAX or TensorFlow; CPU work does not load Triton either."""

import subprocess
import sys


def test_softorder_torch_imports_no_other_framework_and_cpu_work_loads_no_triton():
    code = (
        "import sys, torch\n"
        "import softorder.torch as st\n"
        "from softorder import torchsort\n"
        "x = torch.randn(3, 5, requires_grad=True)\n"
        "st.soft_rank(x, regularization='kl').sum().backward()\n"
        "st.soft_topk_mask(x, 2, p=2.0, solver='dykstra')\n"
        "torchsort.soft_sort(x.detach())\n"
        "print([m for m in ('triton', 'jax', 'tensorflow') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
