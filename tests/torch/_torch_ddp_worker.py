"""Run by test_torch_ddp.py as a script: 2 DDP processes (gloo, 127.0.0.1) train one step of a small
model with a soft-rank (Spearman-like) loss, each on half of the batch, and save the gradients;
then one process computes the gradients on the full batch."""

import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import softorder.torch as st


def make_model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 8))


def data():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 5, generator=g)
    target = torch.argsort(torch.argsort(torch.randn(8, 8, generator=g), dim=1), dim=1) + 1.0
    return x, target


def loss_fn(model, x, target):
    ranks = st.soft_rank(model(x), regularization="kl", regularization_strength=0.5)
    return ((ranks - target) ** 2).mean()


def worker(rank, world, port, out):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world)
    model = torch.nn.parallel.DistributedDataParallel(make_model())
    x, target = data()
    half = x.shape[0] // world
    sl = slice(rank * half, (rank + 1) * half)
    loss_fn(model, x[sl], target[sl]).backward()  # DDP averages the gradients over ranks
    if rank == 0:
        torch.save([p.grad for p in model.parameters()], os.path.join(out, "ddp.pt"))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    port, out = int(sys.argv[1]), sys.argv[2]
    mp.spawn(worker, args=(2, port, out), nprocs=2, join=True)
    model = make_model()
    loss_fn(model, *data()).backward()
    torch.save([p.grad for p in model.parameters()], os.path.join(out, "single.pt"))
