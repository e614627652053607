import os

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def rng():
    return np.random.default_rng(0)




@pytest.fixture(autouse=True, scope="module")
def _release_jax_executables():
    """Drop JAX's compiled executables after each test module.

    JAX keeps every executable until ``jax.clear_caches()``; tests that run the pure-JAX backend
    op by op (not under the front end's ``jit``) compile hundreds per module, and an xdist worker
    that ran most of the suite's JAX modules then aborted in XLA ("node down", CI stop 15;
    TOOLCHAIN.md: LLVM section memory runs out after ~1,600 executables). Users' calls go
    through the jitted front end (a few executables per shape and options)."""
    yield
    import sys

    jax = sys.modules.get("jax")
    if jax is not None:
        jax.clear_caches()
