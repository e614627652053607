"""The tests/cross property bodies on TensorFlow.

TensorFlow cannot share a process with Triton, which the first pytest process loads (torch
compile, Triton PAV), so tests/cross runs NumPy, torch and JAX there and this module collects
the same bodies here, in the TensorFlow process, with ``backend`` and ``framework`` set to
TensorFlow (``SOFTORDER_TEST_BACKENDS`` restricts it as it does tests/cross).
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "cross"))

import adapters  # noqa: E402
import test_cross_derivatives  # noqa: E402
import test_cross_dtypes  # noqa: E402
import test_cross_errors  # noqa: E402
import test_cross_fuzz  # noqa: E402
import test_cross_isotonic  # noqa: E402
import test_cross_limits  # noqa: E402
import test_cross_v2  # noqa: E402
import test_cross_values  # noqa: E402

for _module in (test_cross_values, test_cross_derivatives, test_cross_limits, test_cross_errors,
                test_cross_isotonic, test_cross_fuzz, test_cross_v2, test_cross_dtypes):
    globals().update({k: v for k, v in vars(_module).items() if k.startswith("test_")})


def pytest_generate_tests(metafunc):
    adapters.parametrize(metafunc, ("tensorflow",))
