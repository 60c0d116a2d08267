"""diff(full, resumed, resumed_at=K): a checkpointed run resumed in a new process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import rngtrace
from helpers import cli
from rngtrace.diffing.resume import resume_diff

# 8 samples in batches of 4: 2 optimizer steps per epoch; the checkpoint is saved after
# step K = 2 (the end of epoch 0) and the resumed run does epochs 1 and 2 (steps 2-5).
SCRIPT = textwrap.dedent('''
    import random, sys, numpy as np, torch, rngtrace
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    K, STEPS = 2, 6

    def build(use_gen):
        torch.manual_seed(0)
        random.seed(0)
        np.random.seed(0)
        model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 1))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        data = TensorDataset(torch.arange(32.0).reshape(8, 4))
        gen = torch.Generator().manual_seed(1) if use_gen else None
        return model, opt, DataLoader(data, batch_size=4, shuffle=True, generator=gen), gen

    def train(model, opt, loader, step, ckpt=None, gen=None):
        while step < STEPS:
            for (x,) in loader:
                scale = 1.0 + random.random() + np.random.rand()  # augmentations
                loss = model(x * scale).pow(2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
            if ckpt is not None and step == K:  # at the epoch's end, the loader done
                torch.save({"model": model.state_dict(), "opt": opt.state_dict(),
                            "torch": torch.get_rng_state(), "python": random.getstate(),
                            "numpy": np.random.get_state(),
                            "gen": gen.get_state() if gen is not None else None}, ckpt)

    def resume(ckpt, use_gen, restore):
        model, opt, loader, gen = build(use_gen)
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        if "noop" in restore:  # what Lightning's Trainer does: no restore
            saved = torch.get_rng_state()  # isolate_rng: saved, then set back unchanged
            torch.set_rng_state(saved)
            torch.cuda.set_rng_state_all([])  # no CUDA here: nothing to set
            torch.cuda.manual_seed_all(0)
        if "torch" in restore:
            torch.set_rng_state(state["torch"])
        if "python" in restore:
            random.setstate(state["python"])
        if "numpy" in restore:
            np.random.set_state(state["numpy"])
        if "gen" in restore:
            gen.set_state(state["gen"])
        if "reseed" in restore:
            torch.manual_seed(0)  # e.g. a seed_everything() after loading
        if "seedpy" in restore:
            random.seed(0)  # ... before random's first draw in the window
        if "extra" in restore:
            torch.rand(3)  # something draws while loading
        train(model, opt, loader, K)

    what, out, use_gen = sys.argv[1], sys.argv[2], sys.argv[3] == "gen"
    if what == "full":
        with rngtrace.record(path=out + "/full.jsonl"):
            model, opt, loader, gen = build(use_gen)
            train(model, opt, loader, 0, ckpt=out + "/ckpt.pt", gen=gen)
    else:
        for variant in sys.argv[4:]:
            with rngtrace.record(path=f"{out}/{variant}.jsonl"):
                resume(out + "/ckpt.pt", use_gen, variant.split("+"))
''')


def line(text: str) -> str:
    """``train.py:N``: the line of the script that holds ``text``."""
    return f"train.py:{next(i for i, x in enumerate(SCRIPT.split(chr(10)), 1) if text in x)}"


# the lines of the script named in the reports
SEED, SET_TORCH, SET_PY = line("torch.manual_seed(0)"), line('set_rng_state(state'), line(
    'setstate(state')
RESEED, SEEDPY, EXTRA = line("e.g. a seed_everything"), line("random.seed(0)  #"), line(
    "torch.rand(3)")
ALL = "torch+python+numpy"


def run_script(tmp_path, *args):
    path = tmp_path / "train.py"
    path.write_text(SCRIPT)
    subprocess.run([sys.executable, str(path), *args], check=True, cwd=tmp_path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The full run, then resumed runs in a new process (one per restore variant)."""
    tmp = tmp_path_factory.mktemp("resume")
    run_script(tmp, "full", str(tmp), "nogen")
    run_script(tmp, "resume", str(tmp), "nogen", "none", "noop", "torch", ALL,
               ALL + "+reseed", ALL + "+extra", ALL + "+seedpy")
    return tmp


@pytest.fixture(scope="module")
def gen_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume_gen")
    run_script(tmp, "full", str(tmp), "gen")
    run_script(tmp, "resume", str(tmp), "gen", ALL, ALL + "+gen")
    return tmp


def check(tmp, variant):
    full, resumed = rngtrace.load(tmp / "full.jsonl"), rngtrace.load(tmp / f"{variant}.jsonl")
    return rngtrace.diff(full, resumed, resumed_at=2)


def kinds(r):
    return [(f.kind, f.generator) for f in r.starts]


@pytest.mark.slow
def test_a_checkpoint_without_rng_state_tells_one_story(runs):
    r = check(runs, "none")
    assert not r.identical
    # step 2 starts with the loader's iter (default:cpu's random_ seeding the sampler's
    # new generator, then its randperm), then the forward's random and NumPy draws; the
    # second epoch's sampler (generator:2) is seeded from default:cpu at step 4
    assert kinds(r) == [("not-restored", "default:cpu"), ("consequence", "generator:1"),
                        ("not-restored", "python:random"), ("not-restored", "numpy:global"),
                        ("consequence", "generator:2")]
    assert r.findings == [f for f in r.starts if not f.right]
    # the resumed run went on from the script's seeding: it repeats step 0's draws
    assert r.starts[0].text == (
        f"default:cpu was not restored: its state goes on from torch.manual_seed(0) at "
        f"{SEED}; it starts step 2 in the state the full run had at step 0")
    assert r.starts[1].text == (
        "generator:1 is made during training (a DataLoader sampler's generator, seeded "
        "from default:cpu) and starts elsewhere: a consequence of default:cpu")
    # the aligned diff tells the same: no window-start seed, no unexplained move, the
    # samplers paired by what made them, no "rejection sampling"
    causes = [c.summary for c in r.diff.causes if not c.consequence]
    assert causes == [r.starts[i].text for i in (0, 2, 3)]
    assert [c.summary for c in r.diff.causes if c.consequence] == [
        r.starts[i].text for i in (1, 4)]
    assert all(s.a_name == s.b_name for s in r.diff.streams)
    text = r.report()
    assert "different seed" not in text and "rejection" not in text
    assert "nothing recorded" not in text
    # construction: 2 Linear x (weight, bias) = 4 draws, before training
    assert r.preamble == 4 and r.steps == 4


@pytest.mark.slow
def test_a_state_set_back_unchanged_and_cuda_calls_without_cuda_are_no_restore(runs):
    """Lightning's Trainer sets back the state it read a moment before (isolate_rng)
    and calls torch.cuda.set_rng_state_all on a CPU machine: neither restores."""
    r = check(runs, "noop")
    assert kinds(r)[0] == ("not-restored", "default:cpu")
    assert r.starts[0].text.startswith("default:cpu was not restored: its state goes on "
                                       f"from torch.manual_seed(0) at {SEED}")


@pytest.mark.slow
def test_restoring_torch_only_leaves_python_and_numpy(runs):
    r = check(runs, "torch")
    assert kinds(r) == [("restored", "default:cpu"), ("same", "generator:1"),
                        ("not-restored", "python:random"), ("not-restored", "numpy:global"),
                        ("same", "generator:2")]
    assert r.starts[0].text == (f"default:cpu was restored at {SET_TORCH} (torch.set_rng_state"
                                "(<state of 5056 bytes>)): it starts step 2 where the full "
                                "run was")
    assert [m.split(":")[0] for m in r.mismatches] == ["python", "numpy"]


@pytest.mark.slow
def test_restoring_every_generator_says_restored_and_the_cli_exits_0(runs):
    r = check(runs, ALL)
    assert r.identical and r.findings == [] and r.mismatches == []
    assert [f.kind for f in r.starts] == ["restored", "same", "restored", "restored", "same"]
    full = str(runs / "full.jsonl")
    ok = cli("diff", full, str(runs / f"{ALL}.jsonl"), "--resumed-at", "2")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "identical over 4 steps" in ok.stdout
    assert f"python:random was restored at {SET_PY} (random.setstate(<state>))" in ok.stdout
    bad = cli("diff", full, str(runs / "none.jsonl"), "--resumed-at", "2")
    assert bad.returncode == 1 and "default:cpu was not restored" in bad.stdout
    wrong = cli("diff", full, str(runs / "none.jsonl"), "--resumed-at", "9")
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1
    assert "the full run did only 6 optimizer steps" in wrong.stderr


@pytest.mark.slow
def test_reseed_after_restore_and_extra_draws_while_loading_are_named(runs):
    r = check(runs, ALL + "+reseed")
    # the samplers' per-epoch generators are seeded from the reseeded stream
    assert kinds(r)[:2] == [("reseed-after-restore", "default:cpu"),
                            ("consequence", "generator:1")]
    assert r.starts[0].text.endswith(f"then reseeded: torch.manual_seed(0) at {RESEED} "
                                     "overwrites the restored state")
    r = check(runs, ALL + "+extra")
    assert kinds(r)[:2] == [("loading-draws", "default:cpu"), ("consequence", "generator:1")]
    assert r.starts[0].text == (f"default:cpu was restored at {SET_TORCH}, then 1 extra "
                                f"draw while loading moved it (aten::rand at {EXTRA})")
    assert r.preamble == 4 + 1  # construction, and the draw while loading


@pytest.mark.slow
def test_seeding_random_before_its_first_draw_is_seen(runs):
    """random.seed after random.setstate, both before random's first draw in the
    window: the seeding is an event, and overwrites the restore."""
    r = check(runs, ALL + "+seedpy")
    assert ("reseed-after-restore", "python:random") in kinds(r)
    (f,) = [f for f in r.starts if f.generator == "python:random"]
    assert f.text == (f"python:random was restored at {SET_PY} (random.setstate(<state>)),"
                      f" then reseeded: random.seed(0) at {SEEDPY} overwrites the restored "
                      "state")


@pytest.mark.slow
def test_sampler_generator_must_be_restored_too(gen_runs):
    r = check(gen_runs, ALL)
    assert not r.identical
    assert [(f.kind, f.generator) for f in r.findings] == [("not-restored", "generator:1")]
    assert r.findings[0].text == (
        "generator:1 was not restored: no seeding or restore of it was recorded before "
        "training; it starts step 2 in the state the full run had at step 0 (a restore with "
        "Generator.set_state before its first draw shows only in the states)")
    assert check(gen_runs, ALL + "+gen").identical


def test_resumed_at_is_checked():
    with pytest.raises(rngtrace.RngtraceError, match="did only 0 optimizer steps"):
        resume_diff(rngtrace.Log(), rngtrace.Log(), resumed_at=1)
    with pytest.raises(rngtrace.RngtraceError, match="not -1"):
        resume_diff(rngtrace.Log(), rngtrace.Log(), resumed_at=-1)
