"""Several processes: per-rank logs, DTensor shard fields, ``compare_ranks`` and
``rngtrace ranks``; the ``slow`` tests run real 2-process gloo jobs under torchrun."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

import helpers
import rngtrace
from rngtrace.cli import DIFFERENT, ERROR, OK, main
from rngtrace.log import Draw, Log
from rngtrace.recording.window.distributed import rank_path


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 8)
        self.drop = nn.Dropout(0.5)
        self.b = nn.Linear(8, 2)

    def forward(self, x):
        return self.b(self.drop(self.a(x)))


def rank_log(rank: int, seed: int, extra: bool = False, reseed: int | None = None,
             forward: bool = False, world: int = 2) -> Log:
    """The log one rank would write: seeded with ``seed`` before its window."""
    torch.manual_seed(seed)
    with rngtrace.record() as log:
        if extra:
            torch.rand(3)  # one more draw on this rank only
        if reseed is not None:
            torch.manual_seed(reseed)
        model = Net()
        if forward:
            model(torch.ones(2, 4))
    log.meta["dist"] = {"rank": rank, "world_size": world, "local_rank": rank,
                        "backend": "gloo", "host": "h"}
    return log


# -- per-rank names and the header ------------------------------------------------------

def test_rank_path_names():
    assert rank_path("train.rngtrace.jsonl", 1) == "train.rank1.rngtrace.jsonl"
    assert rank_path(os.path.join("out", "a.jsonl"), 0) == os.path.join("out", "a.rank0.jsonl")
    assert rank_path("log", 12) == "log.rank12"
    assert rank_path("run-{rank}.rngtrace.jsonl", 3) == "run-3.rngtrace.jsonl"


def test_record_path_is_per_rank_and_header_has_the_rank(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    with rngtrace.record(path=tmp_path / "train.rngtrace.jsonl") as log:
        torch.rand(2)
    assert sorted(os.listdir(tmp_path)) == ["train.rank3.rngtrace.jsonl"]
    loaded = rngtrace.load(tmp_path / "train.rank3.rngtrace.jsonl")
    dist = loaded.meta["dist"]
    # no process group in this process: no backend
    assert (dist["rank"], dist["world_size"], dist["local_rank"], dist["backend"]) == (
        3, 4, 1, None)
    assert dist["host"] and log.meta["dist"] == dist


def test_no_rank_no_dist_and_path_unchanged(tmp_path, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    with rngtrace.record(path=tmp_path / "a.rngtrace.jsonl") as log:
        torch.rand(2)
    assert os.listdir(tmp_path) == ["a.rngtrace.jsonl"] and "dist" not in log.meta


def test_shard_fields_round_trip(tmp_path):
    d = Draw(index=0, op="aten::normal_", module="", module_type="M", target="w",
             phase="init", step=0, shape=(6, 4), dtype="float32", device="cpu", numel=24,
             args={}, generator="default:cpu", state_before="a", state_after="b",
             consumed=True, site=None, code=None, api=None,
             local_shape=(3, 4), local_offset=(3, 0), placement="S(0)")
    plain = Draw(**{**{f: getattr(d, f) for f in d.__slots__}, "index": 1,
                    "local_shape": None, "local_offset": None, "placement": None})
    Log(draws=[d, plain]).save(tmp_path / "x.jsonl")
    back = rngtrace.load(tmp_path / "x.jsonl").draws
    assert back == [d, plain]


# -- compare_ranks, in one process --------------------------------------------------------

def test_same_seed_everywhere_agrees():
    rep = rngtrace.compare_ranks([rank_log(1, 0), rank_log(0, 0)])
    assert rep.same and not rep.problems
    assert [i.rank for i in rep.ranks] == [0, 1]  # by header rank, not argument order
    # Net: a.weight, a.bias, b.weight, b.bias, one draw each
    assert [(p.name, p.relation, p.draws) for p in rep.parameters] == [
        ("a.weight", "same", 1), ("a.bias", "same", 1), ("b.weight", "same", 1),
        ("b.bias", "same", 1)]
    assert rep.parallelism == "none seen"


def test_seed_plus_rank_names_the_seeds():
    rep = rngtrace.compare_ranks([rank_log(0, 10), rank_log(1, 11)])
    assert not rep.same
    first = rep.first_difference
    assert first is not None and first.name == "a.weight" and first.groups == ((0,), (1,))
    assert first.why == "another seed per rank on default:cpu (rank 0: 10, rank 1: 11)"
    assert first.verdict == "bug"
    assert rep.problems[0].startswith("4 replicated parameters differ across ranks, first "
                                      "a.weight: another seed per rank")
    assert [i.seeds for i in rep.ranks] == [{"default:cpu": 10}, {"default:cpu": 11}]


def test_extra_draw_on_one_rank_is_named():
    rep = rngtrace.compare_ranks([rank_log(0, 0), rank_log(1, 0, extra=True), rank_log(2, 0)])
    first = rep.first_difference
    assert first is not None and first.groups == ((0, 2), (1,))
    # the diff of rank 0 and rank 1 names the extra draw and its line
    assert first.why.startswith("draws only in rank 1 outside any module (torch.rand), "
                                "1 draw at ")
    assert "test_ranks.py:" in first.why


def test_reseed_on_one_rank_is_named():
    rep = rngtrace.compare_ranks([rank_log(0, 0), rank_log(1, 0, reseed=5)])
    first = rep.first_difference
    assert first is not None
    assert first.why.startswith("another seed per rank on default:cpu (rank 0: 0, rank 1: 5)")
    assert "test_ranks.py" in first.why  # the reseed's site


def test_dropout_masks_and_ddp_names():
    logs = [rank_log(0, 0, forward=True), rank_log(1, 1, forward=True)]
    rep = rngtrace.compare_ranks(logs)
    assert [(f.name, f.relation) for f in rep.forward] == [("drop (Dropout)", "differ")]
    # the same logs, as if the model had been wrapped by DDP
    ddp = [Log(draws=[_renamed(d) for d in log.draws], events=log.events,
               generators=log.generators, meta=log.meta) for log in logs]
    rep = rngtrace.compare_ranks(ddp)
    assert rep.parallelism == "DDP" and not rep.same and not rep.problems
    assert {p.verdict for p in rep.parameters} == {"harmless"}


def _renamed(d: Draw) -> Draw:
    import dataclasses

    return dataclasses.replace(
        d, module=None if d.module is None else f"module.{d.module}",
        target=None if d.target is None else f"module.{d.target}")


def test_equal_shards_are_a_problem():
    import dataclasses

    logs = []
    for r in (0, 1):
        log = rank_log(r, 0)
        log.draws = [dataclasses.replace(d, placement="S(0)", local_offset=(4 * r, 0))
                     for d in log.draws]
        logs.append(log)
    rep = rngtrace.compare_ranks(logs)
    assert rep.same and rep.parallelism == "sharded"  # the draws agree: exit 0 ...
    assert {p.verdict for p in rep.parameters} == {"bug"}  # ... but the shards are copies
    assert rep.problems[0].startswith("4 sharded parameters drew equal shards on every "
                                      "rank, first a.weight (S(0))")


def test_errors():
    with pytest.raises(rngtrace.RngtraceError, match="2 logs or more"):
        rngtrace.compare_ranks([rank_log(0, 0)])
    with pytest.raises(rngtrace.RngtraceError, match="two logs for rank 0"):
        rngtrace.compare_ranks([rank_log(0, 0), rank_log(0, 0)], labels=["a", "b"])


def test_cli_exit_codes_json_and_errors(tmp_path, capsys):
    paths = []
    for r, seed in ((0, 0), (1, 0), (2, 1)):
        p = tmp_path / f"t.rank{r}.rngtrace.jsonl"
        rank_log(r, seed).save(p)
        paths.append(str(p))
    assert main(["ranks", *paths[:2]]) == OK
    assert "every parameter's initial draws agree across ranks (4 of 4)" in (
        capsys.readouterr().out)
    r = helpers.cli("ranks", "--json", *paths)  # once for real, in a subprocess
    assert r.returncode == DIFFERENT, r.stderr
    data = json.loads(r.stdout)
    assert data["same"] is False and data["parameters"][0]["groups"] == [[0, 1], [2]]
    assert main(["ranks", paths[0]]) == ERROR
    assert main(["ranks", paths[0], str(tmp_path / "nope.jsonl")]) == ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("rngtrace: error: ") for e in err)



def test_cli_refuses_logs_without_rank_information(tmp_path, capsys):
    """Two ordinary logs are not ranks 0 and 1 of a job: refused, with the way to
    record a job's logs."""
    paths = []
    for name, rank in (("a", 0), ("b", 1)):
        log = rank_log(rank, 0)
        if name == "b":
            del log.meta["dist"]
        log.save(tmp_path / f"{name}.rngtrace.jsonl")
        paths.append(str(tmp_path / f"{name}.rngtrace.jsonl"))
    assert main(["ranks", *paths]) == ERROR
    assert capsys.readouterr().err.strip() == (
        f"rngtrace: error: rngtrace ranks: {paths[1]} carries no rank information "
        "(meta['dist']): it was not recorded in a torch.distributed job; record one log "
        "per rank with 'torchrun --nproc-per-node N -m rngtrace run train.py' (or "
        "record(path=...) in each process of the job)")

# -- real jobs: 2 processes, gloo on CPU, under torchrun --------------------------------

HEAD = """\
import os, torch, torch.distributed as dist
from torch import nn
dist.init_process_group("gloo")
rank = dist.get_rank()
"""

SCRIPTS = {
    "same": HEAD + """\
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2))
model(torch.ones(3, 4)).sum().backward()
dist.destroy_process_group()
""",
    "ddp": HEAD + """\
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset
torch.manual_seed(100 + rank)
model = DDP(nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2)))
data = TensorDataset(torch.arange(8.0).reshape(8, 1))
for (x,) in DataLoader(data, batch_size=4, sampler=DistributedSampler(data, seed=7)):
    pass
w = model.module[0].weight.detach().clone()
ws = [torch.empty_like(w) for _ in range(2)]
dist.all_gather(ws, w)
if rank == 0:  # one line: two ranks printing at once may interleave
    print("broadcast:", torch.equal(ws[0], ws[1]))
dist.destroy_process_group()
""",
    "fsdp": HEAD + """\
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
torch.manual_seed(0)
mesh = init_device_mesh("cpu", (2,))
with torch.device("meta"):
    model = nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2))
for m in model:
    fully_shard(m, mesh=mesh)
fully_shard(model, mesh=mesh)
model.to_empty(device="cpu")
for m in model:
    m.reset_parameters()
local = model[0].weight.to_local().detach().clone()
both = [torch.empty_like(local) for _ in range(2)]
dist.all_gather(both, local)
if rank == 0:
    print("equal shards:", torch.equal(both[0], both[1]))
dist.destroy_process_group()
""",
}


EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
with open(os.path.join(EXAMPLES, "ranks_seed.py"), encoding="utf-8") as _f:
    SCRIPTS["ranks_seed"] = _f.read()  # the README's example


def _job(tmp_path, name: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    (tmp_path / f"{name}.py").write_text(SCRIPTS[name])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                        "--nproc-per-node", "2", "-m", "rngtrace", "run", f"{name}.py"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    logs = sorted(p for p in os.listdir(tmp_path) if p.endswith(".jsonl"))
    # Once in about 20 runs on a loaded machine, a rank of the FSDP job aborted while
    # exiting ("terminate called without an active exception": a C++ thread alive at
    # shutdown), after its log was complete; that is tolerated, nothing else is.
    aborted = "terminate called without an active exception" in r.stderr
    assert r.returncode == 0 or aborted, r.stdout + r.stderr
    assert r.stderr.count(" recorded in ") == 2, r.stderr
    assert all(rngtrace.load(tmp_path / p).complete for p in logs)
    return r, logs


def _ranks(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rngtrace", "ranks", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_torchrun_same_seed_everywhere(tmp_path):
    _, logs = _job(tmp_path, "same")
    assert logs == ["same.rank0.rngtrace.jsonl", "same.rank1.rngtrace.jsonl"]
    dist = rngtrace.load(tmp_path / logs[1]).meta["dist"]
    # backend read before the script's destroy_process_group
    assert (dist["rank"], dist["local_rank"], dist["world_size"], dist["backend"]) == (
        1, 1, 2, "gloo")
    r = _ranks(tmp_path, *logs)
    assert r.returncode == OK, r.stdout + r.stderr
    assert "every parameter's initial draws agree across ranks (4 of 4)" in r.stdout
    # one forward on the same seed: the same dropout mask on both ranks
    assert "  1 (Dropout): 1 draw, same on every rank" in r.stdout


@pytest.mark.slow
def test_torchrun_seed_plus_rank(tmp_path):
    _, logs = _job(tmp_path, "ranks_seed")
    assert logs == ["ranks_seed.rank0.rngtrace.jsonl", "ranks_seed.rank1.rngtrace.jsonl"]
    r = _ranks(tmp_path, *logs)
    assert r.returncode == DIFFERENT, r.stdout + r.stderr
    # Linear, Dropout, Linear: 0.weight, 0.bias, 2.weight, 2.bias, all seeded per rank
    assert ("4 of 4 parameters differ across ranks; first: 0.weight (differ: rank 0 | "
            "rank 1): another seed per rank on default:cpu (rank 0: 0, rank 1: 1), set at "
            "ranks_seed.py:12") in r.stdout
    assert "seeds: default:cpu rank 0: 0, rank 1: 1" in r.stdout
    assert "PROBLEM: 4 replicated parameters differ across ranks" in r.stdout


@pytest.mark.slow
def test_torchrun_ddp(tmp_path):
    job, logs = _job(tmp_path, "ddp")
    assert job.stdout.count("broadcast: True") == 1  # DDP did broadcast rank 0's values
    r = _ranks(tmp_path, "--json", *logs)
    assert r.returncode == DIFFERENT, r.stderr  # the draws differ (seed 100 + rank) ...
    data = json.loads(r.stdout)
    assert data["parallelism"] == "DDP" and data["problems"] == []  # ... harmlessly
    assert [p["name"] for p in data["parameters"]] == [
        "module.0.weight", "module.0.bias", "module.1.weight", "module.1.bias"]
    assert {p["verdict"] for p in data["parameters"]} == {"harmless"}
    # DistributedSampler: randperm(8) on its own generator seeded 7 + epoch 0: equal
    [s] = data["samplers"]
    assert s["relation"] == "same" and s["verdict"] == "ok" and "randperm(8)" in s["name"]


@pytest.mark.slow
def test_torchrun_fsdp2_equal_shards(tmp_path):
    job, logs = _job(tmp_path, "fsdp")
    assert job.stdout.count("equal shards: True") == 1  # what CONTEXT.md says of CPU meshes
    draws = [d for d in rngtrace.load(tmp_path / logs[1]).draws if d.consumed]
    # 2 Linear layers x (weight, bias), drawn by reset_parameters into the DTensors;
    # rank 1 holds rows 4..7 of 0.weight (8x4) and row 1 of 1.weight (2x8)
    assert [(d.target, d.shape, d.local_shape, d.local_offset, d.placement)
            for d in draws] == [
        ("0.weight", (8, 4), (4, 4), (4, 0), "S(0)"), ("0.bias", (8,), (4,), (4,), "S(0)"),
        ("1.weight", (2, 8), (1, 8), (1, 0), "S(0)"), ("1.bias", (2,), (1,), (1,), "S(0)")]
    r = _ranks(tmp_path, *logs)
    assert r.returncode == OK, r.stdout + r.stderr  # the draws agree, so exit 0 ...
    assert ("PROBLEM: 4 sharded parameters drew equal shards on every rank, first "
            "0.weight (S(0))") in r.stdout  # ... and the report flags it


def test_dot_draws_ranks_side_by_side(tmp_path, capsys):
    paths = []
    for r, seed in ((0, 0), (1, 0), (2, 1)):
        p = tmp_path / f"t.rank{r}.rngtrace.jsonl"
        rank_log(r, seed).save(p)
        paths.append(str(p))
    assert main(["dot", *paths, "-o", "-"]) == OK  # three logs: the ranks of one job
    src = capsys.readouterr().out
    # one column per rank, one row per parameter (4), each row at one height
    assert [src.count(f"subgraph cluster_rank{r}") for r in range(3)] == [1, 1, 1]
    assert src.count("rank=same") == 4
    # ranks 0 and 1 drew a.weight alike (A), rank 2 not (B); replicas that differ: red
    assert 'r0_0 [label="a.weight\\nvalues A" color=red' in src
    assert 'r2_0 [label="a.weight\\nvalues B" color=red' in src
    assert main(["dot", "--ranks", paths[0], "-o", "-"]) == ERROR


def test_cuda_mesh_shards_at_other_offsets_differ():
    # Forged: what a 2-GPU FSDP2 init would log (not run: no GPU here). DTensor's RNG
    # tracker offsets each shard inside the op, after the state the recorder reads, so
    # both ranks show the same "SEED:OFFSET" before; the shard offsets tell them apart.
    import dataclasses

    logs = []
    for r in (0, 1):
        log = rank_log(r, 0)
        log.draws = [dataclasses.replace(d, device=f"cuda:{r}", generator=f"default:cuda:{r}",
                                         state_before="0:0", placement="S(0)",
                                         local_offset=(4 * r, 0)) for d in log.draws]
        logs.append(log)
    rep = rngtrace.compare_ranks(logs)
    assert not rep.problems and {p.verdict for p in rep.parameters} == {"ok"}
    assert {p.relation for p in rep.parameters} == {"differ"}  # parts of one tensor
    assert [list(i.seeds) for i in rep.ranks] == [["default:cuda"], ["default:cuda"]]
