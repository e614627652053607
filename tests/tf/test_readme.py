"""The README's code runs as written, and its printed numbers are the library's.

Lives under tests/tf: the README imports TensorFlow next to torch and JAX (never Triton).
"""

import re
from pathlib import Path

import numpy as np

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, flags=re.S)


def test_every_python_block_of_the_readme_runs_in_one_namespace():
    assert len(BLOCKS) >= 4
    ns = {}
    for block in BLOCKS:
        exec(compile(block, "README.md", "exec"), ns)


def test_the_values_the_readme_shows_in_comments_are_what_the_calls_return():
    import softorder.numpy as snp

    x = np.array([5.0, 1.0, 2.0])
    np.testing.assert_allclose(snp.soft_rank(x, regularization_strength=2.0), [3, 1.25, 1.75])
    np.testing.assert_allclose(snp.soft_sort(x), [5 / 3, 8 / 3, 11 / 3])
    np.testing.assert_allclose(
        snp.soft_topk_mask(np.array([-5.0, -2.0, 3.0, 1.0]), 2, regularization_strength=0.01),
        [0, 0, 1, 1], atol=1e-4)
    assert "array([3.  , 1.25, 1.75])" in README and "[[3, 1.25, 1.75]]" in README
