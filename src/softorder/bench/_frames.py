"""Per framework: the group's data, a function's forward and forward+backward thunks, and the
peak memory of one call.

Peak memory of one forward+backward call: on CUDA, ``torch.cuda.max_memory_allocated`` over
the call; on the CPU, the rise of the process's peak resident set (Linux: ``VmHWM`` after
resetting it through ``/proc/self/clear_refs``) over its resident set before the call. So that
memory freed by earlier calls is not reused silently (and so not counted), the bench pins
glibc's mmap threshold at 128 KiB (`pin_malloc`): every buffer above it is mapped for the call
and returned when freed.
"""

from __future__ import annotations

import ctypes
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ._cases import Case, Group

Thunk = Callable[[], Any]


def pin_malloc() -> bool:
    """Fix glibc's mmap threshold (``M_MMAP_THRESHOLD`` = 128 KiB), so that large buffers go
    back to the system when freed and each call's peak shows in the resident set."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(-3, 128 * 1024))  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        return False


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def cpu_peak_mib(thunk: Thunk, repeat: int = 2) -> float | None:
    """The least, over ``repeat`` calls, of the rise of peak RSS over the RSS before the call."""
    best = None
    for _ in range(repeat):
        before = _status_kib("VmRSS")
        if before is None or not _reset_peak():
            return None
        thunk()
        peak = _status_kib("VmHWM")
        if peak is None:
            return None
        mib = max(0.0, (peak - before) / 1024.0)
        best = mib if best is None else min(best, mib)
    return best


class Frame:
    """A framework: builds data and thunks, syncs, measures memory."""

    name = ""

    def __init__(self, device: str = "cpu"):
        self.device = device

    def data(self, batch: int, n: int, dtype: str, seed: int) -> Group:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(batch, n)).astype(dtype)
        g = rng.normal(size=(batch, n)).astype(dtype)
        return Group(self.name, self.device, dtype, batch, n, *self.convert(x, g))

    def convert(self, x: np.ndarray, g: np.ndarray) -> tuple[Any, Any]:
        return x, g

    def thunks(self, case: Case, grp: Group) -> tuple[Thunk | None, Thunk | None]:
        raise NotImplementedError

    def peak_mib(self, thunk: Thunk) -> float | None:
        return cpu_peak_mib(thunk)

    def is_oom(self, err: BaseException) -> bool:
        text = str(err).lower()
        return isinstance(err, MemoryError) or any(
            s in text for s in ("out of memory", "can't allocate", "resource_exhausted",
                                "failed to allocate", "bad_alloc", "cannot allocate"))

    def versions(self) -> dict[str, str]:
        return {}


class NumpyFrame(Frame):
    name = "numpy"

    def thunks(self, case, grp):
        fwd, fwd_bwd = case.build(grp)
        return fwd, fwd_bwd


class TorchFrame(Frame):
    name = "torch"

    def __init__(self, device: str = "cpu", memory_cap_mib: float | None = None):
        super().__init__(device)
        import torch

        self.torch = torch
        if device == "cuda" and memory_cap_mib:
            total = torch.cuda.get_device_properties(0).total_memory / 2**20
            torch.cuda.set_per_process_memory_fraction(min(1.0, memory_cap_mib / total))

    def convert(self, x, g):
        return (self.torch.from_numpy(x).to(self.device),
                self.torch.from_numpy(g).to(self.device))

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def thunks(self, case, grp):
        torch = self.torch
        f = case.build(grp)
        x, g = grp.x, grp.g

        def fwd():
            with torch.no_grad():
                y = f(x)
            self.sync()
            return y

        if not case.grad:
            return fwd, None

        def fwd_bwd():
            xg = x.detach().requires_grad_(True)
            (gx,) = torch.autograd.grad((f(xg) * g).sum(), xg)
            self.sync()
            return gx

        return fwd, fwd_bwd

    def peak_mib(self, thunk):
        if self.device != "cuda":
            return cpu_peak_mib(thunk)
        torch = self.torch
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        thunk()
        return (torch.cuda.max_memory_allocated() - base) / 2**20

    def is_oom(self, err):
        return isinstance(err, self.torch.cuda.OutOfMemoryError) or super().is_oom(err)


class JaxFrame(Frame):
    name = "jax"

    def __init__(self, device: str = "cpu"):
        super().__init__(device)
        import jax

        self.jax = jax
        self.dev = jax.devices("gpu" if device == "cuda" else "cpu")[0]

    def data(self, batch, n, dtype, seed):
        # float64 needs x64; float32 groups run without it (JAX's default), so that the
        # pure-JAX backend computes float32 inputs in float32 as a user's program would.
        self.jax.config.update("jax_enable_x64", dtype == "float64")
        return super().data(batch, n, dtype, seed)

    def convert(self, x, g):
        return self.jax.device_put(x, self.dev), self.jax.device_put(g, self.dev)

    def thunks(self, case, grp):
        jax = self.jax
        f = case.build(grp)
        x, g = grp.x, grp.g
        fj = jax.jit(f) if case.jit else f
        fwd = lambda: jax.block_until_ready(fj(x))
        if not case.grad:
            return fwd, None
        gr = jax.grad(lambda x: (f(x) * g).sum())
        grj = jax.jit(gr) if case.jit else gr
        return fwd, (lambda: jax.block_until_ready(grj(x)))

    def peak_mib(self, thunk):
        if self.device != "cpu":
            return None  # XLA's GPU peak cannot be reset between calls
        return cpu_peak_mib(thunk)


class TensorflowFrame(Frame):
    name = "tensorflow"

    def __init__(self, device: str = "cpu"):
        super().__init__(device)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        self.tf = tf
        self.dev = "/GPU:0" if device == "cuda" else "/CPU:0"

    def convert(self, x, g):
        with self.tf.device(self.dev):
            return self.tf.constant(x), self.tf.constant(g)

    def thunks(self, case, grp):
        tf = self.tf
        f = case.build(grp)
        x, g = grp.x, grp.g
        ffwd = tf.function(f)

        @tf.function
        def fb(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = f(x)
            return tape.gradient(y, x, output_gradients=g)

        with tf.device(self.dev):
            fwd = lambda: ffwd(x).numpy()
            fwd_bwd = lambda: fb(x).numpy()
        return fwd, (fwd_bwd if case.grad else None)


def make_frame(name: str, device: str, memory_cap_mib: float | None) -> Frame:
    if name == "numpy":
        return NumpyFrame(device)
    if name == "torch":
        return TorchFrame(device, memory_cap_mib)
    if name == "jax":
        return JaxFrame(device)
    if name == "tensorflow":
        return TensorflowFrame(device)
    raise ValueError(f"unknown framework {name!r}")


def interleaved(thunks: dict[str, Thunk], min_time: float, min_rounds: int = 3,
                max_rounds: int = 200) -> tuple[dict[str, list[float]], dict[str, BaseException]]:
    """Wall times of each thunk, called in turns (a, b, c, b, c, a, ...: the starting point
    rotates every round) until the rounds fill ``min_time`` per thunk (at least ``min_rounds``
    rounds). Interleaving makes every method share whatever else the machine does, so their
    ratios hold on a busy machine. A thunk that raises is dropped and its error returned."""
    times: dict[str, list[float]] = {k: [] for k in thunks}
    errors: dict[str, BaseException] = {}
    keys = list(thunks)
    start = time.perf_counter()
    budget = min_time * len(keys)
    r = 0
    while keys and (r < min_rounds or (time.perf_counter() - start < budget and r < max_rounds)):
        order = keys[r % len(keys):] + keys[:r % len(keys)]
        for k in order:
            t0 = time.perf_counter()
            try:
                thunks[k]()
            except Exception as e:  # noqa: BLE001 - reported per method
                errors[k] = e
                keys.remove(k)
                continue
            times[k].append(time.perf_counter() - t0)
        r += 1
    return times, errors
