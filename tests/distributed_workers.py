"""Worker functions that tests start in fresh processes (torch.multiprocessing's spawn): they live in
an importable helper module, not in a test file, which pytest imports under a name a child cannot."""

from __future__ import annotations

import os

import torch

from cardio_st.losses import InfoNCELoss


def gathered_loss_worker(rank, world_size, port, folder):
    import torch.distributed as dist

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    generator = torch.Generator().manual_seed(0)
    anchors, positives, negatives = (torch.randn(8, 16, generator=generator) for _ in range(3))
    rows = slice(rank * 4, rank * 4 + 4)
    local = [anchors[rows].clone().requires_grad_(), positives[rows].clone(), negatives[rows].clone()]
    loss = InfoNCELoss(model=None, temperature=0.05, gather_across_devices=True)
    value = loss.compute_loss_from_embeddings(local, None)
    value.backward()
    torch.save((rank, value.item()), f"{folder}/rank{rank}.pt")
    dist.destroy_process_group()

