"""``softorder doctor``: what is installed, does every operator work here, and what to fix.

It prints the versions and availability of every front end and kernel (NumPy, Numba with its
threading layer and cache directory, PyTorch with its CUDA devices, Triton, JAX with its devices
and x64 flag, TensorFlow, Flax), runs each operator once on a small input in each installed
front end (and one gradient) and compares it with the NumPy core, and ends with the problems
found and their fixes in plain words. Exit status 0 when every check passed, 1 when one failed
(``--strict``: warnings count too).

TensorFlow and Triton abort a process that loads both (an LLVM option clash), so TensorFlow is
checked in a child process of its own (``--json`` output, merged here).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import traceback
import warnings
from dataclasses import asdict, dataclass, field

HELP = "check the installation: versions, kernels, devices, every operator vs the NumPy core"

FRONTENDS = ("numpy", "torch", "jax", "tensorflow")
# name, positional arguments after x, keyword options
CASES: tuple[tuple[str, tuple, dict], ...] = (
    ("soft_rank", (), {"regularization": "l2"}),
    ("soft_rank", (), {"regularization": "kl"}),
    ("soft_sort", (), {"regularization": "l2"}),
    ("soft_sort", (), {"regularization": "pnorm", "p": 1.5}),
    ("soft_topk_mask", (2,), {}),
    ("soft_topk_magnitude", (2,), {}),
    ("isotonic_regression", (), {}),
)
X = (
    (0.3, -1.2, 2.5, 0.7, 0.0, 1.1),
    (4.0, 4.0, -3.0, 0.5, 2.0, -0.25),
)
STRENGTH = 0.5
_NAMES = {"numpy": "NumPy", "torch": "PyTorch", "jax": "JAX", "tensorflow": "TensorFlow"}
CHILD_TIMEOUT_S = 300


@dataclass
class Check:
    """One operator (or gradient) run in one front end, compared with the NumPy core."""

    frontend: str
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Note:
    """A problem (``severity="problem"``: a check failed, exit 1) or a warning, with its fix."""

    severity: str
    what: str
    fix: str
    source: str = ""  # the front end it is about ("" for the installation as a whole)


@dataclass
class Report:
    components: list[tuple[str, str]] = field(default_factory=list)  # (name, description)
    checks: list[Check] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def problem(self, what, fix, source=""):
        self.notes.append(Note("problem", what, fix, source))

    def warn(self, what, fix, source=""):
        self.notes.append(Note("warning", what, fix, source))

    def merge(self, other: dict, source: str):
        """``other``'s (a child's `to_json`) components, checks and notes about ``source``."""
        self.components += [(n, d) for n, d in other["components"] if n == _NAMES[source]]
        self.checks += [Check(**c) for c in other["checks"] if c["frontend"] == source]
        self.notes += [Note(**n) for n in other["notes"] if n["source"] == source]

    def to_json(self):
        return {"components": self.components, "checks": [asdict(c) for c in self.checks],
                "notes": [asdict(n) for n in self.notes]}


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _installed(module):
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _error(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"


# --------------------------------------------------------------------------------------------
# NumPy and Numba.


def _numba_cache_dir():
    """``(folder, writable, roots tried)``: where the kernels' on-disk cache goes
    (`softorder._src._numba`), found as its locator finds it."""
    from . import _numba

    roots = _numba._cache_roots()
    for root in roots:
        path = os.path.join(root, f"softorder_kernels_{_numba.SOURCES_HASH}")
        try:
            os.makedirs(path, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
                pass
        except OSError:
            continue
        return path, True, roots
    return None, False, roots


def _threading_layer():
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel region ran yet: start the pool, as a parallel kernel does
        try:
            from numba.np.ufunc import parallel

            parallel._launch_threads()
            return numba.threading_layer()
        except Exception as err:  # pragma: no cover - a Numba without a usable layer
            return f"unavailable ({_error(err)})"


def check_core(report: Report):
    import numpy as np

    import softorder

    report.components.append(("softorder", f"{softorder.__version__}  "
                                            f"({os.path.dirname(softorder.__file__)})"))
    report.components.append(("Python", f"{platform.python_version()}  {platform.platform()}"))
    report.components.append(("NumPy", np.__version__))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            import numba

            import softorder.numpy  # noqa: F401 - decorates (and caches) the kernels
        except Exception as err:
            report.components.append(("Numba", f"not usable: {_error(err)}"))
            report.problem(f"softorder.numpy cannot be imported: {_error(err)}",
                           "Reinstall NumPy and Numba: pip install --force-reinstall numba")
            return False
    layer = _threading_layer()
    folder, writable, roots = _numba_cache_dir()
    cache = f"{folder} (writable)" if writable else \
        "none writable: kernels compile in every process (tried " + ", ".join(roots) + ")"
    report.components.append(("Numba", f"{numba.__version__}  threading layer: {layer}, "
                                        f"{numba.get_num_threads()} threads; cache: {cache}"))
    from . import _numba

    no_cache = _numba._warned or any("cannot cache" in str(w.message) for w in caught)
    if not writable or no_cache:
        env = os.environ.get("NUMBA_CACHE_DIR")
        report.warn(
            "Numba cache directory not writable"
            + (f" (NUMBA_CACHE_DIR={env})" if env else "")
            + ": the kernels compile again in every process (seconds per first call).",
            "Set NUMBA_CACHE_DIR to a writable folder, e.g. export NUMBA_CACHE_DIR="
            "$HOME/.cache/numba" if env is None else
            "Point NUMBA_CACHE_DIR at a folder this user can write, or unset it.")
    if layer == "omp":
        report.components.append(("", "(GNU OpenMP: a forked child, e.g. a DataLoader worker, "
                                      "runs the serial kernels)"))
    return True


# --------------------------------------------------------------------------------------------
# Operators vs the NumPy core.


def _reference(name, args, kw):
    import numpy as np

    import softorder.isotonic as sis
    import softorder.numpy as snp

    x = np.array(X)
    if name == "isotonic_regression":
        return sis.isotonic_regression(x)
    return getattr(snp, name)(x, *args, regularization_strength=STRENGTH, **kw)


def _label(name, kw):
    opts = ", ".join(f"{k}={v!r}" for k, v in kw.items())
    return f"{name}({opts})" if opts else name


def _compare(report, frontend, label, run, want, rtol):
    import numpy as np

    try:
        got = np.asarray(run(), dtype=np.float64)
        err = float(np.max(np.abs(got - want) / (np.abs(want) + 1.0))) if want.size else 0.0
        ok = got.shape == want.shape and err <= rtol
        detail = f"max rel. error {err:.1e}" if got.shape == want.shape else \
            f"shape {got.shape} != {want.shape}"
    except Exception as err:  # a broken front end is a failed check, never a crash
        ok, detail = False, _error(err)
        if os.environ.get("SOFTORDER_DOCTOR_TRACEBACK"):
            traceback.print_exc()
    report.checks.append(Check(frontend, label, ok, detail))
    return ok


def _check_frontend(report, frontend, module, to_native, to_numpy, axis_kw, rtol, grad):
    """Every case of `CASES` in ``module`` and one soft_rank gradient, vs the NumPy core."""
    import numpy as np

    import softorder.numpy as snp

    ok = True
    for name, args, kw in CASES:
        fn = getattr(module, name)
        if name == "isotonic_regression":
            run = lambda fn=fn: to_numpy(fn(to_native(X), **{axis_kw: -1}))
        else:
            run = lambda fn=fn, args=args, kw=kw: to_numpy(fn(
                to_native(X), *args, regularization_strength=STRENGTH, **{axis_kw: -1}, **kw))
        ok &= _compare(report, frontend, _label(name, kw), run, _reference(name, args, kw), rtol)
    cot = np.arange(1.0, 1.0 + np.size(X)).reshape(np.shape(X)) / np.size(X)
    _, res = snp.soft_rank_fwd(np.array(X), regularization="kl", regularization_strength=STRENGTH)
    ok &= _compare(report, frontend, "gradient of soft_rank(regularization='kl')",
                   lambda: grad(cot), snp.vjp(res, cot), rtol)
    return ok


def check_numpy(report):
    import numpy as np

    import softorder.isotonic as sis
    import softorder.numpy as snp

    # The NumPy core against limits known in closed form (its own reference elsewhere).
    x = np.array(X[0])  # no ties: the hard ranks are the permutation's
    n = x.size
    hard = np.argsort(np.argsort(x)) + 1.0
    for name, run, want in (
        ("soft_rank, hard limit", lambda: snp.soft_rank(x, regularization_strength=1e-3), hard),
        ("soft_rank, large-strength limit (n+1)/2",
         lambda: snp.soft_rank(x, regularization_strength=1e9), np.full(n, (n + 1) / 2)),
        ("soft_sort, hard limit", lambda: snp.soft_sort(x, regularization_strength=1e-3),
         np.sort(x)),
        ("soft_topk_mask, hard limit", lambda: snp.soft_topk_mask(x, 2, regularization_strength=1e-3),
         (hard > n - 2).astype(float)),
        ("isotonic_regression of a sorted row", lambda: sis.isotonic_regression(np.sort(x)),
         np.sort(x)),
    ):
        _compare(report, "numpy", name, run, want, 1e-6)


def check_torch(report):
    if not _installed("torch"):
        report.components.append(("PyTorch", "not installed  (pip install 'softorder[torch]')"))
        return
    try:
        import torch

        import softorder.torch as st
    except Exception as err:
        report.components.append(("PyTorch", f"installed, import failed: {_error(err)}"))
        report.problem(f"softorder.torch cannot be imported: {_error(err)}",
                       "Reinstall PyTorch (pip install --force-reinstall torch) or fix the error "
                       "above.")
        return
    cuda = torch.cuda.is_available()
    devices = [f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
    report.components.append(("PyTorch", f"{torch.__version__}  default dtype "
                                         f"{str(torch.get_default_dtype()).removeprefix('torch.')}; "
                              + (f"CUDA {torch.version.cuda}: " + ", ".join(devices) if cuda
                                 else "CUDA: not available")))

    def grad_on(device):
        def grad(cot):
            x = torch.tensor(X, dtype=torch.float64, device=device, requires_grad=True)
            y = st.soft_rank(x, regularization="kl", regularization_strength=STRENGTH)
            (g,) = torch.autograd.grad(y, x, torch.tensor(cot, dtype=torch.float64, device=device))
            return g.cpu().numpy()
        return grad

    to_numpy = lambda t: t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t
    _check_frontend(report, "torch", st, lambda a: torch.tensor(a, dtype=torch.float64),
                    to_numpy, "dim", 1e-9, grad_on("cpu"))
    if cuda:
        if not _installed("triton"):
            report.warn("CUDA is available but Triton is not installed: softorder.torch runs "
                        "CUDA tensors through the CPU kernels (a host copy each call).",
                        "pip install 'softorder[triton]' (or the Triton wheel matching your "
                        "PyTorch).")
        for dtype, rtol in ((torch.float64, 1e-9), (torch.float32, 1e-4)):
            _check_frontend(report, f"torch cuda {str(dtype).removeprefix('torch.')}", st,
                            lambda a, dtype=dtype: torch.tensor(a, dtype=dtype, device="cuda"),
                            to_numpy, "dim", rtol, grad_on("cuda"))


def check_triton(report, in_process):
    version = _version("triton") or _version("pytorch-triton")
    if version is None:
        report.components.append(("Triton", "not installed  (only CUDA tensors use it: "
                                            "pip install 'softorder[triton]')"))
        return
    if not in_process:
        report.components.append(("Triton", f"{version}"))
        return
    try:
        import triton  # noqa: F401
    except Exception as err:
        report.components.append(("Triton", f"{version}, import failed: {_error(err)}"))
        report.problem(f"Triton is installed but cannot be imported: {_error(err)}",
                       "Reinstall the Triton that matches your PyTorch "
                       "(pip install --force-reinstall triton).")
        return
    import torch

    where = "runs the CUDA tensors' PAV" if torch.cuda.is_available() else \
        "installed; no CUDA device, so CPU tensors use the Numba kernels"
    report.components.append(("Triton", f"{version}  ({where})"))


def check_jax(report):
    if not _installed("jax"):
        report.components.append(("JAX", "not installed  (pip install 'softorder[jax]')"))
        return
    try:
        import jax
        import jax.numpy as jnp

        import softorder.jax as sj
    except Exception as err:
        report.components.append(("JAX", f"installed, import failed: {_error(err)}"))
        report.problem(f"softorder.jax cannot be imported: {_error(err)}",
                       "Reinstall JAX (pip install --force-reinstall jax jaxlib).")
        return
    x64 = bool(jax.config.jax_enable_x64)
    devices = ", ".join(f"{d.platform}:{d.id}" for d in jax.devices())
    report.components.append(("JAX", f"{jax.__version__}  devices: {devices}; x64: "
                                     f"{'on' if x64 else 'off (float32 arrays)'}; backend "
                                     f"{sj.default_backend()!r}"))
    dtype = jnp.float64 if x64 else jnp.float32

    def grad(cot):
        c = jnp.asarray(cot, dtype)
        f = lambda v: jnp.sum(sj.soft_rank(v, regularization="kl",
                                           regularization_strength=STRENGTH) * c)
        return jax.grad(f)(jnp.asarray(X, dtype))

    _check_frontend(report, "jax", sj, lambda a: jnp.asarray(a, dtype), lambda t: t, "axis",
                    1e-9 if x64 else 1e-4, grad)


def check_flax(report):
    version = _version("flax")
    if version is None:
        report.components.append(("Flax", "not installed  (pip install 'softorder[flax]')"))
        return
    try:
        import softorder.flax  # noqa: F401
    except Exception as err:
        report.components.append(("Flax", f"{version}, import failed: {_error(err)}"))
        report.problem(f"softorder.flax cannot be imported: {_error(err)}",
                       "Install a Flax with flax.nnx (pip install 'softorder[flax]').")
        return
    report.components.append(("Flax", f"{version}  (softorder.flax.SparseTopKRouter)"))


def check_tensorflow(report):
    if not _installed("tensorflow"):
        report.components.append(("TensorFlow", "not installed  "
                                                "(pip install 'softorder[tensorflow]')"))
        return
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        import softorder.tensorflow as stf
    except Exception as err:
        report.components.append(("TensorFlow", f"installed, import failed: {_error(err)}"))
        report.problem(f"softorder.tensorflow cannot be imported: {_error(err)}",
                       "Reinstall TensorFlow (pip install --force-reinstall tensorflow).",
                       "tensorflow")
        return
    devices = ", ".join(d.name.removeprefix("/physical_device:")
                        for d in tf.config.list_physical_devices())
    report.components.append(("TensorFlow", f"{tf.__version__}  devices: {devices}  "
                                            "(checked in a separate process)"))

    def grad(cot):
        x = tf.constant(X, tf.float64)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = stf.soft_rank(x, regularization="kl", regularization_strength=STRENGTH)
        return tape.gradient(y, x, output_gradients=tf.constant(cot, tf.float64)).numpy()

    _check_frontend(report, "tensorflow", stf, lambda a: tf.constant(a, tf.float64),
                    lambda t: t.numpy() if hasattr(t, "numpy") else t, "axis", 1e-9, grad)


def _tensorflow_in_child(report):
    """TensorFlow's checks in a child process (it cannot share one with Triton)."""
    cmd = [sys.executable, "-m", "softorder.doctor", "--frontends", "tensorflow", "--json"]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
        child = json.loads(out.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        report.components.append(("TensorFlow", "check timed out"))
        report.problem(f"The TensorFlow check did not finish in {CHILD_TIMEOUT_S} s.",
                       "Run `python -m softorder.doctor --frontends tensorflow` to see where.")
        return
    except (ValueError, IndexError):
        tail = (out.stderr or out.stdout).strip().splitlines()[-3:]
        report.components.append(("TensorFlow", "check crashed"))
        report.problem(f"The TensorFlow check process exited with status {out.returncode}: "
                       + " | ".join(tail),
                       "Run `python -m softorder.doctor --frontends tensorflow` to see the "
                       "error.")
        return
    report.merge(child, "tensorflow")


# --------------------------------------------------------------------------------------------
# The report.


_EXTRAS = {  # component, distribution, front end that checks it, extra that installs it
    "PyTorch": ("torch", "torch", "torch"),
    "Triton": ("triton", "torch", "triton"),
    "JAX": ("jax", "jax", "jax"),
    "Flax": ("flax", "jax", "flax"),
    "TensorFlow": ("tensorflow", "tensorflow", "tensorflow"),
}


def _unchecked(report, frontends):
    """Versions (from the package metadata, nothing imported) of the components whose front end
    was left out of ``--frontends``."""
    for name, (dist, frontend, extra) in _EXTRAS.items():
        if frontend in frontends:
            continue
        version = _version(dist) or (_version("tensorflow-cpu") if dist == "tensorflow" else None)
        report.components.append((name, f"{version}  (not checked: --frontends)" if version else
                                  f"not installed  (pip install 'softorder[{extra}]')"))


def collect(frontends, in_process_tensorflow, child=False) -> Report:
    """The report on ``frontends``; TensorFlow's in a child process unless
    ``in_process_tensorflow``. ``child``: only the front ends' own findings (a parent merges
    them)."""
    report = Report()
    if not check_core(report):
        return report
    if "numpy" in frontends:
        check_numpy(report)
    if not child:
        _unchecked(report, frontends)
    if "torch" in frontends:
        check_torch(report)
        check_triton(report, in_process=not in_process_tensorflow)
    if "jax" in frontends:
        check_jax(report)
        check_flax(report)
    if "tensorflow" in frontends:
        if in_process_tensorflow:
            check_tensorflow(report)
        else:
            _tensorflow_in_child(report)
    if not child and _installed("tensorflow") and (_version("triton") or _version("pytorch-triton")):
        report.warn("TensorFlow and Triton are both installed: a process that imports "
                    "TensorFlow and then Triton (or torch.compile / torch.func, which load it) "
                    "aborts with an LLVM option clash.",
                    "Run TensorFlow and Triton in separate processes, or import triton before "
                    "tensorflow.")
    return report


def render(report: Report, strict=False) -> tuple[str, int]:
    lines = ["softorder doctor", "", "Installed"]
    width = max((len(n) for n, _ in report.components), default=0)
    lines += [f"  {name:<{width}}  {desc}" for name, desc in report.components]
    lines += ["", "Checks (each operator once on a 2x6 input, compared with the NumPy core)"]
    if not report.checks:
        lines.append("  none ran")
    fw = max((len(c.frontend) for c in report.checks), default=0)
    for c in report.checks:
        lines.append(f"  {'ok  ' if c.ok else 'FAIL'}  {c.frontend:<{fw}}  {c.name}"
                     + (f"  ({c.detail})" if c.detail else ""))
    failed = [c for c in report.checks if not c.ok]
    problems = [n for n in report.notes if n.severity == "problem"]
    if failed:
        names = ", ".join(f"{c.frontend} {c.name}" for c in failed)
        problems.insert(0, Note(
            "problem", f"{len(failed)} check(s) differ from the NumPy core or failed: {names}.",
            "Reinstall softorder and the framework; if it persists, report it with this output "
            "(SOFTORDER_DOCTOR_TRACEBACK=1 prints the tracebacks)."))
    warns = [n for n in report.notes if n.severity != "problem"]
    lines += ["", "Problems and fixes"]
    if not problems and not warns:
        lines.append("  none: everything installed works.")
    for n in problems + warns:
        lines.append(f"  {n.severity.upper()}: {n.what}")
        lines.append(f"    fix: {n.fix}")
    bad = bool(problems) or (strict and bool(warns))
    lines += ["", f"{len(report.checks) - sum(not c.ok for c in report.checks)} passed, "
                  f"{sum(not c.ok for c in report.checks)} failed; "
                  f"{len(problems)} problem(s), {len(warns)} warning(s)."]
    return "\n".join(lines), int(bad)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frontends", default=",".join(FRONTENDS),
                        help="comma-separated front ends to check (default: all installed): "
                             + ", ".join(FRONTENDS))
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 on warnings too (an unwritable Numba cache, ...)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    frontends = [f.strip() for f in args.frontends.split(",") if f.strip()]
    unknown = sorted(set(frontends) - set(FRONTENDS))
    if unknown:
        print(f"softorder doctor: unknown front end(s) {unknown}; known: {', '.join(FRONTENDS)}",
              file=sys.stderr)
        return 2
    # TensorFlow in this process only when nothing here may load Triton.
    alone = "tensorflow" in frontends and "torch" not in frontends
    report = collect(frontends, in_process_tensorflow=alone, child=args.json and alone)
    text, status = render(report, strict=args.strict)
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print(text)
    return status


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m softorder.doctor", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    return run(parser.parse_args(argv))
