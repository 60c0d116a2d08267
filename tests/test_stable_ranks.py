"""stable_init on two ranks (torchrun, gloo on CPU) gives the full parameters of one
process, bit for bit: FSDP2 after a meta build, and DTensor parameters placed Shard(0),
Shard(1) and Replicate. One job; every test reads what it wrote."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import rngtrace

MODELS = textwrap.dedent('''\
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(1100, 1024)  # 1,126,400 values: 5 blocks
            self.odd = nn.Linear(5, 3)           # 3 rows on 2 ranks: 2 and 1
            self.proj = nn.Linear(1024, 8)
            self.norm = nn.LayerNorm(8)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList(Block() for _ in range(2))
            self.scale = nn.Parameter(torch.empty(7, 3))  # no reset_parameters: init_weights

        def init_weights(self):
            for block in self.blocks:
                for m in block.children():
                    m.reset_parameters()
                # tight bounds: resamples, as many as each shard needs
                nn.init.trunc_normal_(block.proj.weight, std=0.02, a=-0.01, b=0.01)
                nn.init.normal_(block.proj.weight, std=0.02)  # and a draw after them
            nn.init.uniform_(self.scale, -1, 1)
''')

JOB = textwrap.dedent('''\
    import torch, torch.distributed as dist
    from torch import nn
    import rngtrace
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import Replicate, Shard, distribute_module, distribute_tensor
    from models import Block, Net

    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (2,))
    full = {}

    # FSDP2: built on meta, sharded, given memory, initialised by the model's init_weights
    with torch.device("meta"):
        net = Net()
    for block in net.blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(net, mesh=mesh)
    net.to_empty(device="cpu")
    with rngtrace.record(path="fsdp.rngtrace.jsonl"):
        rngtrace.stable_init(net, seed=0, init=Net.init_weights)
    full["fsdp"] = {k: v.full_tensor() for k, v in net.state_dict().items()}

    # DTensor: tables sharded by rows, matrices by columns, the rest replicated; then
    # every module's reset_parameters()
    def place(name, module, mesh):
        for key, p in list(module.named_parameters(recurse=False)):
            how = Shard(0) if isinstance(module, nn.Embedding) else (
                Shard(1) if p.dim() == 2 else Replicate())
            module.register_parameter(key, nn.Parameter(distribute_tensor(p.data, mesh, [how])))

    with torch.device("meta"):
        block = Block()
    block.to_empty(device="cpu")
    distribute_module(block, mesh, place)
    rngtrace.stable_init(block, seed=0)
    full["dtensor"] = {k: v.full_tensor() for k, v in block.state_dict().items()}
    full["placements"] = {k: str(v.placements) for k, v in block.state_dict().items()}
    if dist.get_rank() == 0:
        torch.save(full, "full.pt")
    dist.destroy_process_group()
''')


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> str:
    tmp = tmp_path_factory.mktemp("stable_ranks")
    (tmp / "models.py").write_text(MODELS)
    (tmp / "job.py").write_text(JOB)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc-per-node", "2", "job.py"], cwd=tmp, capture_output=True,
                       text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return str(tmp)


def _models(job: str):
    spec = importlib.util.spec_from_file_location("stable_ranks_models",
                                                  os.path.join(job, "models.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _differing(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    assert list(a) == list(b)
    return [k for k in a if not torch.equal(a[k], b[k])]


@pytest.mark.slow
def test_fsdp2_after_a_meta_build_gives_the_values_of_one_process(job):
    m = _models(job)
    full = torch.load(os.path.join(job, "full.pt"))["fsdp"]
    one = rngtrace.stable_init(m.Net(), seed=0, init=m.Net.init_weights).state_dict()
    # scale + 2 blocks x (emb 1, odd 2, proj 2, norm 2)
    assert len(full) == 15 and _differing(full, one) == []


@pytest.mark.slow
def test_dtensor_shards_and_replicas_give_the_values_of_one_process(job):
    m = _models(job)
    saved = torch.load(os.path.join(job, "full.pt"))
    assert saved["placements"] == {
        "emb.weight": "(Shard(dim=0),)", "odd.weight": "(Shard(dim=1),)",
        "odd.bias": "(Replicate(),)", "proj.weight": "(Shard(dim=1),)",
        "proj.bias": "(Replicate(),)", "norm.weight": "(Replicate(),)",
        "norm.bias": "(Replicate(),)"}
    # the same values as the factory's build in one process (reset_parameters is what
    # the constructors ran)
    assert _differing(saved["dtensor"], rngtrace.stable_init(m.Block, seed=0).state_dict()) == []


@pytest.mark.slow
def test_each_rank_draws_the_blocks_its_shard_touches(job):
    logs = [rngtrace.load(os.path.join(job, f"fsdp.rank{r}.rngtrace.jsonl")) for r in (0, 1)]
    for log in logs:
        assert all(d.generator.startswith("stable:") for d in log.draws)
        assert {d.site for d in log.draws} == {"models.py:21", "models.py:23",
                                                "models.py:24", "models.py:25"}
    # emb.weight (1100 x 1024, 1,126,400 values) is cut after row 550, element 563,200, in
    # block 2 (blocks of 262,144: 0-1 before the cut, 3 and the last, 77,824 long, after)
    emb = [[(d.generator, d.numel) for d in log.draws if d.generator.startswith(
        "stable:blocks.0.emb.")] for log in logs]
    name = "stable:blocks.0.emb.weight@0"
    assert emb == [[(name, 262_144), (f"{name}/1", 262_144), (f"{name}/2", 262_144)],
                   [(f"{name}/2", 262_144), (f"{name}/3", 262_144), (f"{name}/4", 77_824)]]
    # the blocks a rank holds whole are drawn into its shard (the parameter), a block
    # cut by the shard's edge into a buffer
    assert [[d.target for d in log.draws if d.generator.startswith(name)] for log in logs] == [
        ["blocks.0.emb.weight", "blocks.0.emb.weight", None],
        [None, "blocks.0.emb.weight", "blocks.0.emb.weight"]]
    # the normal_ after the resamples is the key's third draw into the tensor on both
    # ranks, whatever the number of resamples each needed
    after = [[d for d in log.draws if d.generator == "stable:blocks.0.proj.weight@0#2"]
             for log in logs]
    assert [len(a) for a in after] == [1, 1]
