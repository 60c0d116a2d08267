"""``rngtrace check`` on the ranks of real 2-process gloo jobs (torchrun, CPU): one job
records each reproduction in its own window (``record(path=...)`` writes one log per
rank), and every test reads the logs of one window. The threads are in docs/check.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

import rngtrace

JOB = textwrap.dedent('''\
    import torch, torch.distributed as dist
    from torch import nn
    import rngtrace
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import CPUOffloadPolicy, fully_shard
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
    from transformers import BertConfig, BertForMaskedLM

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    window = lambda name: rngtrace.record(path=f"{name}.rngtrace.jsonl")

    # bert: a clean data-parallel training (first: the window opens before any seeding)
    with window("bert"):
        torch.manual_seed(0)                          # the same parameters on every rank
        cfg = BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=32,
                         max_position_embeddings=16)
        model = DDP(BertForMaskedLM(cfg))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        data = TensorDataset(torch.arange(64).reshape(8, 8) % 64)
        torch.manual_seed(1000 + rank)                # each rank its own dropout masks
        loader = DataLoader(data, batch_size=2, sampler=DistributedSampler(data, seed=0))
        for _, (x,) in zip(range(2), loader):
            model(input_ids=x, labels=x).loss.backward()
            opt.step()
            opt.zero_grad()

    # ddp: set_seed(40) on every rank, dropout under DDP
    with window("ddp"):
        torch.manual_seed(40)
        model = DDP(nn.Sequential(nn.Linear(10, 10), nn.Dropout(0.5), nn.Linear(10, 1)))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for step in range(2):
            model(torch.full((4, 10), float(rank + step))).sum().backward()
            opt.step()
            opt.zero_grad()

    # fsdp: FSDP2 with CPU offload; each init wrapped as DTensor's RNG tracker wraps ops
    class Layer(nn.Linear):
        def init_weights(self):
            with torch.random.fork_rng():
                nn.init.trunc_normal_(self.weight, std=0.02)
            nn.init.zeros_(self.bias)

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([Layer(8, 8) for _ in range(2)])

        def init_weights(self):
            for layer in self.layers:
                layer.init_weights()

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    mesh = init_device_mesh("cpu", (2,))
    offload = CPUOffloadPolicy(pin_memory=False)
    with window("fsdp"):
        torch.manual_seed(0)
        with torch.device("meta"):
            model = MLP()
        for layer in model.layers:
            fully_shard(layer, mesh=mesh, offload_policy=offload)
        fully_shard(model, mesh=mesh, offload_policy=offload)
        model.to_empty(device="cpu")
        model.init_weights()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for step in range(2):
            x = torch.full((2, 8), float(rank))
            noise = torch.randn_like(x)               # per-sample noise (a diffusion loss)
            model(x + noise).sum().backward()
            opt.step()
            opt.zero_grad()

    # hsdp: replicas of every shard on 2 ranks, shards initialised with seed + rank
    mesh2 = init_device_mesh("cpu", (2, 1), mesh_dim_names=("replicate", "shard"))
    with window("hsdp"):
        with torch.device("meta"):
            model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 1))
        for m in model:
            fully_shard(m, mesh=mesh2)
        fully_shard(model, mesh=mesh2)
        model.to_empty(device="cpu")
        torch.manual_seed(0 + rank)
        for m in model:
            m.reset_parameters()

    # pipeline: two stages, one seed
    from torch.distributed.pipelining import PipelineStage, ScheduleGPipe

    class Stage(nn.Module):
        def __init__(self, i):
            super().__init__()
            self.layers = nn.ModuleDict({str(i): nn.Sequential(nn.Linear(8, 8),
                                                               nn.Dropout(0.5))})

        def forward(self, x):
            return self.layers[str(rank)](x)

    with window("pipeline"):
        torch.manual_seed(0)
        part = Stage(rank)
        schedule = ScheduleGPipe(PipelineStage(part, rank, 2, torch.device("cpu")),
                                 n_microbatches=2, loss_fn=lambda y, t: y.sum())
        opt = torch.optim.SGD(part.parameters(), lr=0.1)
        for step in range(2):
            if rank == 0:
                schedule.step(torch.ones(4, 8))
            else:
                schedule.step(target=torch.zeros(4, 8))
            opt.step()
            opt.zero_grad()
    dist.destroy_process_group()
''')


@pytest.fixture(scope="module")
def job(tmp_path_factory) -> str:
    """The job's directory: ``<window>.rank<R>.rngtrace.jsonl`` for each window."""
    tmp = tmp_path_factory.mktemp("check_job")
    (tmp / "job.py").write_text(JOB)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc-per-node", "2", "job.py"], cwd=tmp, capture_output=True,
                       text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return str(tmp)


def check(job: str, window: str) -> rngtrace.CheckReport:
    names = [f"{window}.rank{r}.rngtrace.jsonl" for r in (1, 0)]
    logs = [rngtrace.load(os.path.join(job, n)) for n in names]
    return rngtrace.check(logs, labels=names)  # put in rank order from the headers


def _line(text: str) -> str:
    """``job.py:N`` of the first line of the job holding ``text``."""
    return f"job.py:{next(i for i, s in enumerate(JOB.splitlines(), 1) if text in s)}"


@pytest.mark.slow
def test_a_clean_bert_training_on_two_ranks_gives_no_finding(job):
    report = check(job, "bert")
    assert report.logs == ("bert.rank0.rngtrace.jsonl", "bert.rank1.rngtrace.jsonl")
    assert report.ranks == (0, 1) and len(report) == 0 and report.notes == ()
    log = rngtrace.load(os.path.join(job, "bert.rank1.rngtrace.jsonl"))
    # what there was to find nothing in: the model's init (constructor, then post_init),
    # the loader, and 7 dropout masks per step (embeddings, 2 layers x 3) on 2 steps
    masks = [d for d in log.draws if d.phase == "forward"]
    assert len(masks) == 14 and {d.step for d in masks} == {0, 1}
    assert log.steps == 2 and log.generators["default:cpu"].initial_seed >= 2**32


@pytest.mark.slow
def test_ddp_with_one_seed_draws_the_same_masks_on_every_rank(job):
    [f] = check(job, "ddp").findings
    assert (f.kind, f.severity) == ("alike-across-ranks", "error")
    assert f.summary == ("data-parallel ranks 0, 1 (DDP) drew the same random numbers: "
                         "masks of module.1 (Dropout) (2 draws)")
    # the same draw (index 4: after 4 init draws) from the same state on both ranks
    assert [(e.rank, e.index) for e in f.evidence] == [(0, 4), (1, 4)]
    assert f.evidence[0].state == f.evidence[1].state


@pytest.mark.slow
def test_fsdp2_cpu_offload_copies_shards_across_ranks_and_layers(job):
    report = check(job, "fsdp")
    assert [(f.kind, f.severity) for f in report] == [
        ("repeated-stream", "error"), ("equal-shards", "error"), ("alike-across-ranks", "error")]
    layers, shards, noise = report.findings
    # within each rank: both layers' weights from one state (fork_rng set it back)
    assert layers.logs == ("fsdp.rank0.rngtrace.jsonl", "fsdp.rank1.rngtrace.jsonl")
    assert [e.index for e in layers.evidence] == [4, 5, 4, 5]
    assert len({e.state for e in layers.evidence}) == 1
    assert "fork_rng or set_rng_state around each random op" in layers.why
    # across ranks: rows 0-3 on rank 0 and 4-7 on rank 1 drawn from the same state
    assert "(S(0), shards at (0, 0) and (4, 0))" in shards.summary
    assert shards.summary.startswith("2 sharded parameters drew equal shards on ranks 0, 1")
    assert noise.summary == ("data-parallel ranks 0, 1 (sharded parameters) drew the same "
                             f"random numbers: noise at {_line('randn_like')} (2 draws)")


@pytest.mark.slow
def test_hsdp_replicas_seeded_per_rank_differ(job):
    [f] = check(job, "hsdp").findings
    assert (f.kind, f.severity) == ("replicas-differ", "error")
    assert f.summary == ("4 parameters differ across ranks that hold the same shard "
                         "(replicas, as HSDP keeps them), first 0.weight (ranks 0, 1): another "
                         "seed per rank (rank 0: 0, rank 1: 1), set at "
                         f"{_line('torch.manual_seed(0 + rank)')}")
    assert f.where == ("0.weight", "0.bias", "1.weight", "1.bias")


@pytest.mark.slow
def test_pipeline_stages_with_one_seed_share_a_stream(job):
    report = check(job, "pipeline")
    [f] = report.findings
    assert (f.kind, f.severity) == ("stages-share-stream", "error")
    # init (weight, bias) and the masks of the 2 micro-batches x 2 steps; the schedule's
    # shape inference runs a forward under fork_rng first, whose mask is not counted
    assert f.summary.startswith("different parameters or modules on different ranks drew "
                                "the same values (6 pairs of draws): rank 0 layers.0.0.weight "
                                "= rank 1 layers.1.0.weight")
    log = rngtrace.load(os.path.join(job, "pipeline.rank0.rngtrace.jsonl"))
    first, dry = log.draws[2], log.draws[3]
    assert (first.state_before, first.phase) == (dry.state_before, "forward")
    assert len(rngtrace.check(log)) == 0  # alone, the dry run repeats nothing


# -- in one process: logs made as ranks would make them --------------------------------
def rank_log(rank: int, seed: int, *sizes: int) -> rngtrace.Log:
    """Rank ``rank``'s log of building ``nn.Sequential(nn.Linear(*sizes))`` from ``seed``."""
    torch.manual_seed(seed)
    with rngtrace.record() as log:
        nn.Sequential(nn.Linear(*sizes))
    log.meta["dist"] = {"rank": rank, "world_size": 2}
    return log


def test_stages_that_reuse_local_names_are_not_replicas():
    # a hand-made pipeline: each rank builds its stage as an nn.Sequential ("0.weight" on
    # both), seeded seed + stage, as it should be
    assert len(rngtrace.check([rank_log(0, 10, 4, 8), rank_log(1, 11, 8, 2)])) == 0
    # the same model on both ranks, seeded per rank, nothing seen to broadcast it
    [f] = rngtrace.check([rank_log(0, 10, 4, 8), rank_log(1, 11, 4, 8)]).findings
    assert f.kind == "replicas-differ" and f.where == ("0.weight", "0.bias")
    assert f.summary.endswith("another seed per rank (rank 0: 10, rank 1: 11)")
    assert "unless the program broadcasts the parameters itself" in f.why
