import os

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=60, deadline=None)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def pytest_configure(config):
    # The cross-framework bodies (tests/cross, and tests/tf/test_cross_tf.py for TensorFlow).
    config.addinivalue_line(
        "markers", "frontend_v2: a tests/cross body using straight_through= or a 0-d "
        "array/tensor regularization_strength with a gradient")
    config.addinivalue_line(
        "markers", "needs_frontend_v2: a non-NumPy run of a frontend_v2 body, on a front end "
        "that does not have those features yet (tests/cross/adapters.py: PENDING_V2)")
