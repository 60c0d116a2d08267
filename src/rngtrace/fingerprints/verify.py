"""Comparing the generators after a resume with the fingerprint saved at the checkpoint.

Per generator of the saved fingerprint, from the strongest evidence to the weakest:

- ``restored``: its state is the saved one;
- ``drew-after-restore``: it is the saved state moved on by draws (the same Mersenne
  Twister block further on, or the next block; the same CUDA seed at a later offset; a
  PCG64 state a known number of steps on): it was restored, then drew. A state that
  goes on from both the saved one and the one before loading (within one block of
  the twister: a checkpoint among a process's first 624 words) is told by the nearer:
  a check made soon after the restore sees few draws since;
- with a fingerprint taken before the checkpoint was loaded (``before``):
  ``not-restored`` when it is (or goes on from) that state, ``restored-elsewhere``
  when it is neither;
- without one: ``differs`` (not restored, or set to another state);
- ``missing``: not found now (not reachable from the objects given, CUDA not started).

A log recorded over the resume (``log``) names the lines: the first draw after the
restore, the seeding a generator that was not restored goes on from.
"""

from __future__ import annotations

from ..log import UNCHANGED, Log
from ..recording.streams.digests import pcg64_words
from .model import CheckKind, Fingerprint, GeneratorCheck, GeneratorPrint, RestoreCheck


def check(saved: Fingerprint, live: Fingerprint, before: Fingerprint | None = None,
          log: Log | None = None) -> RestoreCheck:
    """Each generator of ``saved`` as it stands in ``live`` (see the module doc)."""
    out = []
    for s in saved.generators:
        now = live.get(s.name)
        b = before.get(s.name) if before is not None else None
        out.append(_one(s, now, b, log))
    return RestoreCheck(tuple(out))


def words_since(ref: GeneratorPrint, now: GeneratorPrint) -> int | None:
    """How far ``now`` is from ``ref`` along the same stream (words, Philox offset or
    PCG64 steps), or None when it is not ``ref`` moved on (or cannot be told)."""
    if now.digest == ref.digest:
        return 0
    if ref.block is not None and ref.pos is not None and now.pos is not None:
        if now.block == ref.block and now.pos >= ref.pos:
            return now.pos - ref.pos
        if now.block == ref.next_block:
            return max(624 - ref.pos, 0) + now.pos
        return None
    if ref.offset is not None and now.offset is not None:
        return now.offset - ref.offset if (now.seed == ref.seed and
                                           now.offset >= ref.offset) else None
    if ref.pcg is not None and now.pcg is not None and ref.pcg[1] == now.pcg[1]:
        def state(p: tuple[int, int]) -> dict[str, object]:
            return {"bit_generator": "PCG64", "state": {"state": p[0], "inc": p[1]}}
        n = pcg64_words(state(ref.pcg), state(now.pcg))
        return n if n is not None and n < 1 << 64 else None  # forward, not 2**128 - k
    return None


def _one(s: GeneratorPrint, now: GeneratorPrint | None, b: GeneratorPrint | None,
         log: Log | None) -> GeneratorCheck:
    name = s.name
    if now is None:
        return GeneratorCheck(name, "missing", f"{name} was not found now (not reachable "
                              "from the objects given, not made yet, or CUDA not started): "
                              "not checked")
    if now.digest == s.digest:
        return GeneratorCheck(name, "restored", f"{name} is in the checkpoint's state")
    # the saved state moved on, or the state before loading moved on: the nearer one
    # explains it (a check soon after the restore: few draws since)
    n = words_since(s, now)
    since = words_since(b, now) if b is not None and b.digest != s.digest else None
    kept = since is not None and (n is None or since < n)
    if n is not None and not kept:
        unit = "offset steps" if s.offset is not None else "words"
        first = _first_draw(log, name, s.digest)
        return GeneratorCheck(name, "drew-after-restore",
                              f"{name} goes on from the checkpoint's state: moved {n} "
                              f"{unit} by draws since" + (f" (the first: {first})"
                                                          if first else ""))
    seeded = _last_seeding(log, name)
    if kept:
        kind: CheckKind = "not-restored"
        text = f"{name} was not restored: it goes on from its state before loading"
    elif b is not None:
        kind = "restored-elsewhere"
        text = (f"{name} was set to another state than the checkpoint's (neither the "
                "saved state nor the one before loading: another checkpoint's, or a reseed)")
    else:
        kind = "differs"
        text = f"{name} is not in the checkpoint's state: not restored, or set to another"
    if seeded:
        text += f" (its last seeding: {seeded})"
    return GeneratorCheck(name, kind, text, fix(s))


def fix(s: GeneratorPrint) -> str:
    """How to save and restore a generator, in a few words."""
    name = s.name
    if name == "default:cpu":
        return "save torch.get_rng_state() with the checkpoint, torch.set_rng_state() it"
    if name.startswith("default:cuda"):
        return ("save torch.cuda.get_rng_state_all() with the checkpoint, "
                "torch.cuda.set_rng_state_all() it")
    if name == "python:random":
        return "save random.getstate() with the checkpoint, random.setstate() it"
    if name == "numpy:global":
        return "save np.random.get_state() with the checkpoint, np.random.set_state() it"
    if s.kind == "numpy":
        return f"save {name}.bit_generator.state with the checkpoint, assign it back"
    if s.kind == "python":
        return f"save {name}.getstate() with the checkpoint, {name}.setstate() it"
    if s.kind == "numpy-legacy":
        return f"save {name}.get_state() with the checkpoint, {name}.set_state() it"
    return f"save {name}.get_state() with the checkpoint, {name}.set_state() it"


def _first_draw(log: Log | None, name: str, digest: str) -> str | None:
    """The first draw a log saw from ``digest`` on ``name``: its op and line."""
    if log is None:
        return None
    for d in log.draws:
        if d.generator == name and d.state_before == digest and d.worker is None:
            return f"{d.op} at {d.site or '?'}"
    return None


def _last_seeding(log: Log | None, name: str) -> str | None:
    if log is None:
        return None
    seeds = [e for e in log.events if e.generator == name and e.kind == "reseed"
             and not e.detail.endswith(UNCHANGED)]
    if not seeds:
        return None
    e = seeds[-1]
    return e.detail.split(" (", 1)[0] + (f" at {e.site}" if e.site else "")

