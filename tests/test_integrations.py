"""rngtrace.integrations with the real frameworks: train, checkpoint after step K = 2 (an
epoch's end: 8 samples in batches of 4), resume in a new process with and without the
RNG state restored, and read what the integration's check said.

Each script prints, when it resumes, the check's result and rngtrace's warnings as JSON.
Seeding is the framework's (HF's ``seed``, Lightning's ``seed_everything``, accelerate's
``set_seed``): it seeds NumPy, which nothing draws from, so NumPy's global generator is
in the checkpoint's state with or without a restore.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import rngtrace

HF = textwrap.dedent('''
    import json, os, random, sys, warnings
    import torch
    from torch import nn
    from transformers import Trainer, TrainingArguments
    from rngtrace.integrations.transformers import RngtraceCallback

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin, self.drop = nn.Linear(4, 1), nn.Dropout(0.5)

        def forward(self, x, labels):
            out = self.lin(self.drop(x * (1 + random.random()))).squeeze(-1)
            return {"loss": ((out - labels) ** 2).mean()}

    what, out = sys.argv[1], sys.argv[2]
    data = [{"x": torch.full((4,), float(i)), "labels": torch.tensor(float(i))}
            for i in range(8)]
    args = TrainingArguments(out, per_device_train_batch_size=4, max_steps=4, save_steps=2,
                             report_to=[], use_cpu=True, disable_tqdm=True, seed=0)
    cb = RngtraceCallback(record_steps=1 if what == "resume" else 0)
    trainer = Trainer(Tiny(), args, train_dataset=data, callbacks=[cb])
    if what == "full":
        trainer.train()
    else:
        if what == "forget":  # the Trainer logs this at info level and goes on
            os.remove(os.path.join(out, "checkpoint-2", "rng_state.pth"))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.train(resume_from_checkpoint=os.path.join(out, "checkpoint-2"))
        print(json.dumps({"result": cb.result.to_dict(), "warnings": [
            str(w.message) for w in caught if "rngtrace" in str(w.message)]}))
''')

LIGHTNING = textwrap.dedent('''
    import json, random, sys, warnings
    import numpy as np
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    import pytorch_lightning as pl
    import rngtrace
    from rngtrace.integrations.lightning import RngtraceCallback

    class Tiny(pl.LightningModule):
        def __init__(self, keep_rng):
            super().__init__()
            self.lin, self.drop, self.keep_rng = nn.Linear(4, 1), nn.Dropout(0.5), keep_rng

        def training_step(self, batch, i):
            (x,) = batch
            return self.lin(self.drop(x * (1 + random.random()))).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

        # Lightning restores no RNG state: its documented checkpoint hooks can
        def on_save_checkpoint(self, checkpoint):
            if self.keep_rng:
                checkpoint["rng"] = (torch.get_rng_state(), random.getstate(),
                                     np.random.get_state())

        def on_load_checkpoint(self, checkpoint):
            if self.keep_rng:
                torch.set_rng_state(checkpoint["rng"][0])
                random.setstate(checkpoint["rng"][1])
                np.random.set_state(checkpoint["rng"][2])

    class Save(pl.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            if trainer.current_epoch == 0:
                trainer.save_checkpoint(out + "/epoch0.ckpt")

    what, out = sys.argv[1], sys.argv[2]
    with rngtrace.record(path=f"{out}/{what}.jsonl"):
        pl.seed_everything(0)
        loader = DataLoader(TensorDataset(torch.arange(32.0).reshape(8, 4)), batch_size=4,
                            shuffle=True)
        cb = RngtraceCallback()
        trainer = pl.Trainer(max_epochs=2, logger=False, enable_progress_bar=False,
                             enable_model_summary=False, enable_checkpointing=False,
                             default_root_dir=out,
                             callbacks=[cb] + ([Save()] if what == "full" else []))
        model = Tiny(keep_rng=what != "forget")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.fit(model, loader, ckpt_path=None if what == "full" else
                        out + "/epoch0.ckpt", weights_only=False)
    if what != "full":
        print(json.dumps({"result": cb.result.to_dict(), "warnings": [
            str(w.message) for w in caught if "rngtrace" in str(w.message)]}))
''')

ACCELERATE = textwrap.dedent('''
    import json, os, random, sys, warnings
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset
    from accelerate import Accelerator, DataLoaderConfiguration
    from accelerate.utils import set_seed
    import rngtrace
    from rngtrace.integrations.accelerate import watch

    what, out = sys.argv[1], sys.argv[2]
    set_seed(0)
    acc = Accelerator(cpu=True, dataloader_config=DataLoaderConfiguration(
        use_seedable_sampler=True))  # its sampler reseeds its generator at each epoch
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = DataLoader(TensorDataset(torch.arange(32.0).reshape(8, 4)), batch_size=4,
                        shuffle=True)
    model, opt, loader = acc.prepare(model, opt, loader)
    resume = watch(acc, loader=loader)

    def epoch():
        for (x,) in loader:
            loss = model(x * (1 + random.random())).pow(2).mean()
            opt.zero_grad()
            acc.backward(loss)
            opt.step()

    if what == "full":
        with rngtrace.record(path=out + "/full.jsonl"):
            epoch()
            acc.save_state(out + "/ckpt")
            epoch()
    else:
        if what == "forget":
            os.remove(out + "/ckpt/random_states_0.pkl")  # accelerate logs it, goes on
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            acc.load_state(out + "/ckpt")
        epoch()
        print(json.dumps({"result": resume.result.to_dict(), "warnings": [
            str(w.message) for w in caught if "rngtrace" in str(w.message)]}))
''')

NOT_RESTORED = {"default:cpu": "not-restored", "python:random": "not-restored",
                "numpy:global": "restored"}
# the warning's lines for the two generators that were not restored
WARNED = [
    "  default:cpu was not restored: it goes on from its state before loading; save "
    "torch.get_rng_state() with the checkpoint, torch.set_rng_state() it",
    "  python:random was not restored: it goes on from its state before loading; save "
    "random.getstate() with the checkpoint, random.setstate() it"]


def run(tmp, script: str, *variants: str) -> dict[str, dict]:
    """Run the script for the full run, then once per variant, each in a new process;
    what each resume printed."""
    path = tmp / "train.py"
    path.write_text(script)
    env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore"}
    out = {}
    for what in ("full", *variants):
        done = subprocess.run([sys.executable, str(path), what, str(tmp)], cwd=tmp, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        if what != "full":
            out[what] = json.loads(done.stdout.strip().split("\n")[-1])
    return out


def kinds(result: dict) -> dict[str, str]:
    return {g["name"]: g["kind"] for g in result["result"]["generators"]}


@pytest.mark.slow
def test_hugging_face_trainer(tmp_path):
    pytest.importorskip("transformers")
    out = run(tmp_path, HF, "resume", "forget")
    ok, bad = out["resume"], out["forget"]
    # restored by the Trainer at the epoch's start, then the DataLoader's iter drew
    assert kinds(ok) == {"default:cpu": "drew-after-restore", "python:random": "restored",
                         "numpy:global": "restored"}
    assert ok["result"]["ok"] and ok["warnings"] == []
    assert kinds(bad) == NOT_RESTORED and not bad["result"]["ok"]
    assert bad["warnings"] == ["rngtrace: resumed at step 2, but 2 generators do not go on "
                               "from the checkpoint's state:\n" + "\n".join(WARNED)]
    # each checkpoint holds the fingerprint; the resumed run's first step was recorded,
    # from before the Trainer's restore
    assert os.path.exists(tmp_path / "checkpoint-2" / "rngtrace_fingerprint.json")
    log = rngtrace.load(tmp_path / "resume.rngtrace.jsonl")
    assert log.steps == 1
    assert [e.detail for e in log.events if e.generator == "default:cpu"] == [
        "torch.random.set_rng_state(<state of 5056 bytes>)"]


@pytest.mark.slow
def test_lightning(tmp_path):
    pytest.importorskip("pytorch_lightning")
    out = run(tmp_path, LIGHTNING, "resume", "forget")
    ok, bad = out["resume"], out["forget"]
    assert ok["result"]["ok"] and ok["warnings"] == []
    assert kinds(ok)["python:random"] == "restored"
    assert kinds(bad) == NOT_RESTORED
    assert bad["warnings"] == ["rngtrace: resumed at step 2, but 2 generators do not go on "
                               "from the checkpoint's state:\n" + "\n".join(WARNED)]
    # the logs tell the same: Lightning's isolate_rng (a state set back) and its CUDA
    # calls on a CPU machine are no restore
    full = rngtrace.load(tmp_path / "full.jsonl")
    forgot = rngtrace.diff(full, rngtrace.load(tmp_path / "forget.jsonl"), resumed_at=2)
    assert [(f.kind, f.generator) for f in forgot.starts] == [
        ("not-restored", "default:cpu"), ("consequence", "generator:1"),
        ("not-restored", "python:random")]
    assert forgot.starts[0].text == (
        "default:cpu was not restored: its state goes on from torch.manual_seed(0) at "
        "lightning_fabric/utilities/seed.py:65; it starts step 2 in the state the full run "
        "had at step 0")
    kept = rngtrace.diff(full, rngtrace.load(tmp_path / "resume.jsonl"), resumed_at=2)
    assert kept.identical
    assert [f.kind for f in kept.starts] == ["restored", "same", "restored"]


@pytest.mark.slow
def test_accelerate(tmp_path):
    pytest.importorskip("accelerate")
    out = run(tmp_path, ACCELERATE, "resume", "forget")
    ok, bad = out["resume"], out["forget"]
    sampler = "loader.base_dataloader.batch_sampler.sampler.generator"
    # checked right after load_state's restore; the seedable sampler makes its generator
    # when the epoch starts (and seeds it from the epoch): not there yet
    assert kinds(ok) == {"default:cpu": "restored", "python:random": "restored",
                         "numpy:global": "restored", sampler: "missing"}
    assert ok["result"]["ok"] and ok["warnings"] == []
    assert kinds(bad) == {**NOT_RESTORED, sampler: "missing"}
    assert bad["warnings"] == ["rngtrace: resumed, but 2 generators do not go on from the "
                               "checkpoint's state:\n" + "\n".join(WARNED)]
    # the sampler's per-epoch Generator.manual_seed is a reseed event, not a gap
    events = rngtrace.load(tmp_path / "full.jsonl").events
    assert [(e.kind, e.detail.split(" (")[0]) for e in events] == [
        ("reseed", "Generator.manual_seed(1)")]  # epoch 1: its seed (0) + the epoch
