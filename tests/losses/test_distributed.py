"""Every global-batch loss is the same at any number of processes.

Two CPU processes (gloo) with batch B each must give the loss and the gradients of one process with batch 2B:
the mean over processes of the per-process losses equals the 1-process loss, and each process's input
gradient divided by the world size (what DDP's gradient averaging does to the parameters) equals the
1-process gradient of its slice. This holds for the losses that gather negatives with gradients (NT-Xent,
MoCo v3, NNCLR), batch statistics (Barlow Twins, VICReg), Sinkhorn's global sums (SwAV), DINO's center, and
trivially for the per-sample losses (MoCo's queue, SimSiam, BYOL, MAE).
"""
import os
import socket
import time
from datetime import timedelta

import pytest
import torch
import torch.multiprocessing as mp

from videossl.losses.barlow import barlow_twins_loss
from videossl.losses.contrastive import nt_xent_loss
from videossl.losses.dino import dino_loss, updated_center
from videossl.losses.mae import masked_reconstruction_loss
from videossl.losses.moco import moco_queue_loss, moco_v3_loss
from videossl.losses.nnclr import nnclr_loss
from videossl.losses.regression import normalized_mse_loss
from videossl.losses.simsiam import simsiam_loss
from videossl.losses.swav import sinkhorn_knopp, swapped_prediction_loss
from videossl.losses.vicreg import vicreg_loss

WORLD, B, D = 2, 3, 6
TIMEOUT_S = 120


def _swav(x):
    scores = list(x)
    codes = [sinkhorn_knopp(s.detach(), 0.3, 3) for s in scores[:2]]
    return swapped_prediction_loss(scores, codes, 0.5), torch.cat(codes)


def _dino(x):
    student, teacher, center = list(x[:3]), list(x[3:]), torch.linspace(-1, 1, D)
    return dino_loss(student, teacher, center, 0.5, 0.3), updated_center(center, teacher, 0.9)


SHARED = torch.Generator().manual_seed(123)
QUEUE, SUPPORT = torch.randn(7, D, generator=SHARED), torch.randn(9, D, generator=SHARED)
# MAE: each sample has 2 tokens of 3 values, exactly one masked (tube masking masks equally many per sample).
MASK = torch.nn.functional.one_hot(torch.randint(0, 2, (WORLD * B,), generator=SHARED), 2).bool()

# name -> (number of (N, D) inputs, loss fn(inputs) -> (loss, extra tensor or None))
CASES = {
    "nt_xent": (2, lambda x: (nt_xent_loss(x[0], x[1], 0.5), None)),
    "byol": (2, lambda x: (normalized_mse_loss(x[0], x[1]), None)),
    "moco_v2": (2, lambda x: (moco_queue_loss(x[0], x[1], QUEUE, 0.5), None)),
    "moco_v3": (4, lambda x: (moco_v3_loss(x[0], x[1], x[2], x[3], 0.5), None)),
    "simsiam": (4, lambda x: (simsiam_loss(x[0], x[1], x[2], x[3]), None)),
    "swav": (3, _swav),
    "dino": (5, _dino),
    "barlow_twins": (2, lambda x: (barlow_twins_loss(x[0], x[1], 0.1), None)),
    "vicreg": (2, lambda x: (vicreg_loss(x[0], x[1]), None)),
    "nnclr": (4, lambda x: (nnclr_loss(x[0], x[1], x[2], x[3], SUPPORT, 0.5), None)),
    "mae": (2, lambda x: (masked_reconstruction_loss(x[0].view(-1, 2, 3), x[1].view(-1, 2, 3), _mask_for(x[0])), None)),
}


def _mask_for(x):
    """The MAE mask rows belonging to this process's slice."""
    from videossl.losses.distributed import rank, world_size

    n = x.shape[0]
    return MASK[rank() * n:(rank() + 1) * n] if world_size() > 1 else MASK


def full_inputs(name: str) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(sum(map(ord, name)))
    return [torch.randn(WORLD * B, D, generator=gen) for _ in range(CASES[name][0])]


def run_case(name: str, inputs: list[torch.Tensor]):
    inputs = [x.clone().requires_grad_(True) for x in inputs]
    loss, extra = CASES[name][1](inputs)
    loss.backward()
    grads = [torch.zeros_like(x) if x.grad is None else x.grad for x in inputs]
    return loss.detach(), grads, extra


def _worker(rank: int, port: int, out_dir: str):
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=timedelta(seconds=60))
    try:
        results = {}
        for name in CASES:
            local = [x[rank * B:(rank + 1) * B] for x in full_inputs(name)]
            results[name] = run_case(name, local)
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    ctx = mp.start_processes(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=False, start_method="spawn")
    deadline = time.monotonic() + TIMEOUT_S
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"2-process gloo run did not finish in {TIMEOUT_S} s")
    return [torch.load(out / f"rank{r}.pt") for r in range(WORLD)]


@pytest.mark.parametrize("name", list(CASES))
def test_two_processes_equal_one_process(name, two_process_results):
    ref_loss, ref_grads, ref_extra = run_case(name, full_inputs(name))
    per_rank = [results[name] for results in two_process_results]
    mean_loss = sum(r[0] for r in per_rank) / WORLD
    assert torch.allclose(mean_loss, ref_loss, atol=1e-5), (name, mean_loss, ref_loss)
    for i, ref_grad in enumerate(ref_grads):
        grad = torch.cat([r[1][i] for r in per_rank]) / WORLD
        assert torch.allclose(grad, ref_grad, atol=1e-5), (name, i, (grad - ref_grad).abs().max())
    assert any(g.abs().sum() > 0 for g in ref_grads), "the case must exercise some gradient"
    if ref_extra is not None:
        extra = [r[2] for r in per_rank]
        if name == "dino":  # the center is global: identical on every process and to the 1-process one
            assert all(torch.allclose(e, ref_extra, atol=1e-6) for e in extra)
        else:  # SwAV codes: each process holds the rows of its slice of the global batch
            n = WORLD * B
            for c in range(2):
                local = torch.cat([e[c * B:(c + 1) * B] for e in extra])
                assert torch.allclose(local, ref_extra[c * n:(c + 1) * n], atol=1e-5)
