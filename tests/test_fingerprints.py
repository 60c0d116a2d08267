"""rngtrace.fingerprint and rngtrace.check_restored: a resume certified without a second run."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

import rngtrace
from rngtrace import Fingerprint


class Noisy(Dataset):
    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)
        self.py = random.Random(1)
        self.legacy = np.random.RandomState(2)

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> float:
        return float(self.rng.random())


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = torch.nn.Sequential(torch.nn.Linear(2, 2))
        self.block[0].noise = torch.Generator().manual_seed(3)  # deep in the model


def names(fp: Fingerprint) -> list[str]:
    return [g.name for g in fp.generators]


def test_a_fingerprint_names_every_generator_reachable_and_round_trips_as_json():
    gen = torch.Generator().manual_seed(1)
    loader = DataLoader(Noisy(), batch_size=2, shuffle=True, generator=gen)
    fp = rngtrace.fingerprint(loader, model=Net())
    # the process's own, then the loader's (its sampler holds the same generator: once)
    # and the dataset's, then the model's, found by walking module attributes
    assert names(fp) == ["default:cpu", "python:random", "numpy:global",
                         "DataLoader.dataset.rng", "DataLoader.dataset.py",
                         "DataLoader.dataset.legacy", "DataLoader.generator",
                         "model.block.0.noise"]
    assert [g.kind for g in fp.generators] == ["torch", "python", "numpy-legacy", "numpy",
                                               "python", "numpy-legacy", "torch", "torch"]
    assert fp.get("DataLoader.generator").seed == 1
    assert not torch.cuda.is_initialized()  # a fingerprint never starts CUDA
    text = json.dumps(fp.to_dict())
    assert Fingerprint.from_dict(json.loads(text)) == fp


@pytest.mark.parametrize(("data", "message"), [
    ({"generators": []}, "not an rngtrace fingerprint"),
    ({"rngtrace_fingerprint": 9, "generators": []}, "format 9 is newer"),
    ({"rngtrace_fingerprint": 1, "generators": [{"name": "x"}]}, "not a generator"),
    ([1, 2], "not an rngtrace fingerprint")])
def test_a_foreign_or_newer_fingerprint_is_refused(data, message):
    with pytest.raises(rngtrace.RngtraceError, match=message):
        Fingerprint.from_dict(data)


def _save() -> tuple[Fingerprint, tuple]:
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)
    torch.rand(100), random.random(), np.random.rand()  # the training drew
    return rngtrace.fingerprint(), (torch.get_rng_state(), random.getstate(),
                                    np.random.get_state())


def _restore(states: tuple) -> None:
    torch.set_rng_state(states[0])
    random.setstate(states[1])
    np.random.set_state(states[2])


def kinds(result) -> dict[str, str]:
    return {g.name: g.kind for g in result.generators}


def test_restored_generators_and_those_that_drew_since_are_told_apart():
    saved, states = _save()
    torch.rand(5)
    _restore(states)
    assert kinds(rngtrace.check_restored(saved)) == {
        "default:cpu": "restored", "python:random": "restored", "numpy:global": "restored"}
    torch.rand(3)  # 3 float32 values: 3 words of the twister
    torch.rand(700)  # past the end of the block: the next block, 703 words on
    random.random()  # 53 bits: 2 words
    result = rngtrace.check_restored(saved)
    assert result.ok and kinds(result)["numpy:global"] == "restored"
    assert [g.text for g in result.generators[:2]] == [
        "default:cpu goes on from the checkpoint's state: moved 703 words by draws since",
        "python:random goes on from the checkpoint's state: moved 2 words by draws since"]


def test_without_a_restore_the_check_names_each_generator_and_its_fix():
    saved, _ = _save()
    torch.manual_seed(0)  # a new process: seeded again, not restored
    random.seed(0)
    np.random.seed(0)
    before = rngtrace.fingerprint()
    # without a fingerprint from before loading, "not restored" cannot be told from
    # "set to another state"
    assert set(kinds(rngtrace.check_restored(saved)).values()) == {"differs"}
    torch.rand(2)  # the training's first draws, after loading
    result = rngtrace.check_restored(saved, before=before)
    assert not result.ok
    assert [(g.name, g.kind) for g in result.problems] == [
        ("default:cpu", "not-restored"), ("python:random", "not-restored"),
        ("numpy:global", "not-restored")]
    assert result.report().split("\n")[:2] == [
        "rngtrace: 3 of 3 generators do not go on from the checkpoint's state",
        "  default:cpu was not restored: it goes on from its state before loading; save "
        "torch.get_rng_state() with the checkpoint, torch.set_rng_state() it"]


def test_a_state_from_elsewhere_and_a_generator_not_found_are_named():
    saved, states = _save()
    before = rngtrace.fingerprint()
    torch.manual_seed(7)  # e.g. another checkpoint's state, or a reseed after loading
    _, *rest = states
    random.setstate(rest[0])
    np.random.set_state(rest[1])
    gen = torch.Generator().manual_seed(1)
    saved_gen = rngtrace.fingerprint(loader_gen=gen)
    result = rngtrace.check_restored(saved, before=before)
    assert kinds(result)["default:cpu"] == "restored-elsewhere"
    missing = rngtrace.check_restored(saved_gen)  # not given this time
    assert kinds(missing)["loader_gen"] == "missing" and "not checked" in (
        missing.generators[-1].text)


def test_numpy_generators_moved_on_are_counted_in_words():
    rng = np.random.default_rng(0)
    saved = rngtrace.fingerprint(rng=rng)
    rng.random(5)  # one 64-bit word per double
    (g,) = [c for c in rngtrace.check_restored(saved, rng=rng).generators if c.name == "rng"]
    assert (g.kind, g.text) == ("drew-after-restore", "rng goes on from the checkpoint's "
                                                      "state: moved 5 words by draws since")
