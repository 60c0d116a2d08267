"""DataLoader workers: their Python and NumPy draws merged into the log, copies flagged."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import rngtrace
from helpers import cli
from rngtrace.diffing.workers import copied_streams

# DataLoader workers are processes (and the CLI runs in one): slow, as main's convention
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not hasattr(os, "fork"), reason="forked workers")]


class Noisy(Dataset):
    """Holds one default_rng: every worker gets a copy of it."""

    def __init__(self, seeded_per_worker=False):
        self.rng = np.random.default_rng(0)
        self.seeded_per_worker = seeded_per_worker

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return torch.tensor(self.rng.normal(size=3))  # 3 values, 3 PCG64 words


def per_worker_seed(worker_id):
    info = torch.utils.data.get_worker_info()
    info.dataset.rng = np.random.default_rng(info.seed)


def load_all(dataset, **kw):
    torch.manual_seed(0)
    loader = DataLoader(dataset, batch_size=2, num_workers=2, multiprocessing_context="fork",
                        **kw)
    with rngtrace.record() as log:
        batches = [b for b in loader]
    return log, batches


def test_two_workers_copies_of_one_generator_are_recorded_and_flagged():
    log, batches = load_all(Noisy())
    # the copies draw the same numbers: batch 0 (worker 0) equals batch 1 (worker 1)
    assert torch.equal(batches[0], batches[1])
    gen = [d for d in log.draws if d.worker is not None]
    # 8 items in batches of 2: 4 fetches, 2 per worker, one boundary record each,
    # 2 items x 3 words = 6 words per fetch
    assert [(d.worker, d.op, d.generator, d.module, d.numel, d.args) for d in gen] == [
        (w, "numpy.Generator", "numpy:Generator#1", "Noisy.__getitem__", 6,
         {"held_by": "Noisy.rng"}) for w in (0, 0, 1, 1)]
    assert [d.index for d in gen] == list(range(len(log.draws) - 4, len(log.draws)))
    first = [d.state_before for d in gen]
    assert first[0] == first[2] and first[1] == first[3] and first[0] != first[1]
    found = copied_streams(log)
    assert [(c.generator, c.workers, c.held_by, c.draws) for c in found] == [
        ("numpy:Generator#1", (0, 1), "Noisy.rng", 2)]
    assert "seed Noisy.rng per worker in worker_init_fn" in found[0].line()


class LegacyNoisy(Noisy):
    """Holds a legacy RandomState: read at boundaries the same way."""

    def __init__(self):
        self.rng = np.random.RandomState(0)

    def __getitem__(self, i):
        return torch.tensor(self.rng.rand(3))


def test_a_held_random_state_is_flagged_too():
    log, batches = load_all(LegacyNoisy())
    assert torch.equal(batches[0], batches[1])
    ops = {(d.op, d.generator, d.numel) for d in log.draws if d.worker is not None}
    assert ops == {("numpy.RandomState", "numpy:RandomState#1", 0)}  # MT19937: no count
    assert [(c.generator, c.workers, c.held_by) for c in copied_streams(log)] == [
        ("numpy:RandomState#1", (0, 1), "LegacyNoisy.rng")]


def test_seeding_per_worker_is_not_flagged():
    log, batches = load_all(Noisy(), worker_init_fn=per_worker_seed)
    assert not torch.equal(batches[0], batches[1])
    assert len([d for d in log.draws if d.worker is not None]) == 4
    assert copied_streams(log) == []


class PyNoisy(Dataset):
    def __init__(self):
        self.r = random.Random(0)

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return self.r.random() + random.random()  # a held copy, and the reseeded global


def test_python_random_in_workers_held_copy_flagged_global_not():
    log, _ = load_all(PyNoisy())
    rows = [(d.worker, d.op, d.generator, d.args.get("held_by")) for d in log.draws
            if d.worker is not None]
    # 4 items, 2 per worker (one batch each), 2 draws per item
    assert rows == [(w, op, g, h) for w in (0, 1) for _ in range(2) for op, g, h in (
        ("Random.random", "python:Random#1", "PyNoisy.r"),
        ("random.random", "python:random", None))]
    # torch seeds python:random per worker: only the held copy is flagged
    assert [(c.generator, c.workers) for c in copied_streams(log)] == [
        ("python:Random#1", (0, 1))]


def test_show_and_diff_flag_the_copies(tmp_path):
    log, _ = load_all(Noisy())
    log.save(tmp_path / "a.jsonl")
    show = cli("show", str(tmp_path / "a.jsonl"))
    assert show.returncode == 0, show.stderr
    assert "Workers with identical streams:" in show.stdout
    assert "workers 0, 1 drew identical streams from numpy:Generator#1 (Noisy.rng" \
        in show.stdout
    fixed, _ = load_all(Noisy(), worker_init_fn=per_worker_seed)
    fixed.save(tmp_path / "b.jsonl")
    diff = cli("diff", str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl"))
    assert diff.returncode == 1, diff.stderr  # the workers' streams start elsewhere in b
    flagged = [ln for ln in diff.stdout.splitlines() if "drew identical streams" in ln]
    assert len(flagged) == 1 and flagged[0].startswith("a.jsonl: workers 0, 1 drew"), flagged
    back = rngtrace.load(tmp_path / "a.jsonl")
    assert [d.worker for d in back.draws] == [d.worker for d in log.draws]


def test_no_parts_left_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    load_all(Noisy())
    assert os.listdir(tmp_path) == []


def test_workers_compute_the_same_with_and_without_recording():
    torch.manual_seed(0)
    plain = list(DataLoader(PyNoisy(), batch_size=2, num_workers=2, shuffle=True,
                            multiprocessing_context="fork"))
    state = torch.get_rng_state()
    _, recorded = load_all(PyNoisy(), shuffle=True)
    assert [b.tolist() for b in recorded] == [b.tolist() for b in plain]
    assert torch.equal(torch.get_rng_state(), state)


class TorchNoisy(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.rand(3)  # torch seeds its generator per worker: distinct streams


def test_torch_draws_in_workers_are_recorded_and_not_flagged():
    log, batches = load_all(TorchNoisy())
    rows = [(d.worker, d.op, d.generator, d.module, d.numel, d.api) for d in log.draws
            if d.worker is not None]
    # 4 items in batches of 2: one batch per worker, 2 draws of 3 values each
    assert rows == [(w, "aten::rand", "default:cpu", "TorchNoisy.__getitem__", 3, "torch.rand")
                    for w in (0, 0, 1, 1)]
    worker_draws = [d for d in log.draws if d.worker is not None]
    # each worker's draws chain: the second starts where the first ended
    assert worker_draws[0].state_after == worker_draws[1].state_before
    assert worker_draws[0].state_before != worker_draws[2].state_before
    assert copied_streams(log) == []
    assert not torch.equal(batches[0], batches[1])
