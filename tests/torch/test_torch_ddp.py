"""DistributedDataParallel: 2 gloo processes on 127.0.0.1 give the gradients of one process on
the full batch (the operators act row-wise, so data parallelism needs nothing special)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_gradients_equal_the_single_process_full_batch(tmp_path):
    worker = Path(__file__).with_name("_torch_ddp_worker.py")
    proc = subprocess.run([sys.executable, str(worker), str(_free_port()), str(tmp_path)],
                          capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ddp = torch.load(tmp_path / "ddp.pt")
    single = torch.load(tmp_path / "single.pt")
    assert len(ddp) == len(single) == 4
    for a, b in zip(ddp, single):
        assert a.abs().sum() > 0
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)
