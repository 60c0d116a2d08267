"""Seeding: draws that shift a seeded training (stray consumption), and generators that
draw while nobody seeded them (unseeded).

**Stray consumption.** The first training step is found from the second: a training
loop draws the same things (module, op, site) at every step, so the first draw of step
0 that step 1 draws again starts the training (without draws at step 1, the first draw
after the first optimizer step). Between the last seeding or restore of a generator and
that point, the draws that build a model which trains and the training loader's own
draws (the last DataLoader iteration before training) are expected; what else a module
or a DataLoader draws shifts the training's random numbers: a model built and not
trained (a checkpoint loaded into a second copy), another DataLoader iterated (an
evaluation), forward draws before training, a model's own methods (a LightningModule's
logging hook). Draws outside modules are not reported: the training's own data made
with ``torch.randn`` looks the same as a logging call.

**Unseeded.** Among the generators a program seeds through the functions rngtrace sees
(``torch.manual_seed``, ``random.seed``, ``np.random.seed``), one that draws with no
seeding or restore before its first draw started from the OS's entropy. That is only
certain when the window opened before the program seeded torch: then the default CPU
generator still has torch's start-up seed, a 64-bit number from the OS (``rngtrace
run`` records from the program's start). A generator seeded only after some draws is
reported when those draws filled parameters (a model built before the seeding).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..log import Draw, Event, Log
from ..text import plural
from .common import Source, call, changed, describe, drawn, loader_draw, names, role
from .model import Evidence, Finding

#: Generators whose seeding rngtrace sees (torch's CPU default, random, NumPy's global).
JUDGED = ("default:cpu", "python:random", "numpy:global")
_START_SEED = 2**32  # torch's start-up seed is 64 bits from the OS; programs seed below
_EVIDENCE = 4


def _main(d: Draw) -> bool:
    return d.worker is None and drawn(d) and not d.replay


def _body_key(d: Draw) -> tuple:
    return (d.site, d.op, d.generator, d.phase, d.model, d.module)


def training_start(log: Log) -> int | None:
    """Index of the first draw of the first training step, None when the window did
    not see two optimizer steps (the second is what tells the loop's draws apart)."""
    if log.steps < 2:
        return None
    body = {_body_key(d) for d in log.draws if d.step == 1 and _main(d) and d.phase != "init"}
    for d in log.draws:
        if d.step == 0 and d.phase != "init" and _main(d) and _body_key(d) in body:
            return d.index
    return next((d.index for d in log.draws if d.step >= 1), len(log.draws))


def _last_setting(events: Iterable[Event], gen: str, before: int) -> Event | None:
    last = None
    for e in events:
        # a seed sets the generator even to the state it had; a restore that changed
        # nothing (fork_rng around nothing) did not set anything
        if e.generator == gen and e.before <= before and (
                role(e) == "seed" or (role(e) == "restore" and changed(e))):
            last = e
    return last


def stray(src: Source) -> tuple[list[Finding], list[str]]:
    """Findings, and notes on what could not be judged."""
    log = src.log
    start = training_start(log)
    if start is None:  # no training seen (no note), or one step (said)
        return [], [f"{src.label}: stray consumption needs two optimizer steps in the "
                    f"window (it has 1)"] if log.steps == 1 else []
    trains = None if log.with_grad is None else {m for m, _ in log.with_grad}
    out = []
    for gen in dict.fromkeys(d.generator for d in log.draws[:start] if _main(d)):
        if not any(role(e) == "seed" and e.generator == gen and e.before <= start
                   for e in log.events):
            continue  # the program does not seed it before training: nothing to shift
        setting = _last_setting(log.events, gen, start)
        lo = setting.before if setting is not None else 0
        span = [d for d in log.draws[lo:start] if d.generator == gen and _main(d)]
        loaders = [d for d in span if loader_draw(d)]
        ours = {loaders[-1].site} if loaders else set()
        extra = [d for d in span if not _expected(d, trains, ours)]
        if extra:
            out.append(_stray_finding(src, gen, setting, log.draws[start], extra))
    return out, []


def _expected(d: Draw, trains: set[str | None] | None, loader_sites: set[str | None]) -> bool:
    if d.phase == "init" and d.target is not None:
        return trains is None or d.model in trains
    if loader_draw(d):
        return d.site in loader_sites
    # outside modules: the training's own data (torch.randn for inputs) looks the same as
    # a logging call; only what modules draw (forward, hooks such as a LightningModule's
    # logging methods) is told apart
    return d.module is None


def _what(d: Draw) -> str:
    if d.phase == "init" and d.target is not None:
        return f"builds {d.model or 'a model'}, which gets no gradient"
    if loader_draw(d):
        return "iterates a DataLoader that is not the training loop's"
    if d.phase == "forward":
        return f"runs {describe(d)} forward before training"
    return f"{d.api or d.op} in {describe(d)}"


def _stray_finding(src: Source, gen: str, setting: Event | None, first: Draw,
                   extra: list[Draw]) -> Finding:
    parts: dict[str, list[Draw]] = {}
    for d in extra:
        parts.setdefault(_what(d), []).append(d)
    listed = [f"{what} ({plural(len(ds), 'draw')} at {names([d.site or '?' for d in ds], 2)})"
              for what, ds in parts.items()]
    seeded = call(setting) if setting is not None else "the window's start"
    summary = (f"{plural(len(extra), 'draw')} on {gen} between {seeded} and the first "
               f"training step (draw {first.index} at {first.site or '?'}) come from other "
               f"code: {names(listed, 3)}")
    why = ("the training's random numbers (masks, shuffles, noise) then depend on this code: "
           "removing, reordering or skipping it (a resumed run, a config without "
           "evaluation) changes the training")
    fix = ("run it before the seeding, or inside torch.random.fork_rng() (Lightning: "
           "isolate_rng()), or give it a torch.Generator of its own")
    evidence = tuple(Evidence.of(ds[0], src.label, src.rank) for ds in parts.values())
    where = tuple(dict.fromkeys(d.site or describe(d) for d in extra))
    return Finding("stray-consumption", "warning", summary, (gen,), where, evidence, why,
                   fix, (src.label,))


def unseeded(src: Source) -> tuple[list[Finding], list[str]]:
    """Findings, and notes on what could not be judged."""
    log = src.log
    seeds = [e for e in log.events if role(e) == "seed"]
    if not seeds:
        return [], []
    out = []
    for gen in JUDGED:
        draws = [d for d in log.draws if d.generator == gen and _main(d)]
        # the first thing that set this generator (a seed, a restore); OS seeding aside
        settle = next((e for e in log.events if e.generator == gen
                       and role(e) != "entropy"), None)
        if not draws or (settle is not None and settle.before <= draws[0].index):
            continue
        if settle is None:
            entropy = next((e for e in log.events if e.generator == gen), None)
            out.append(_never(src, gen, draws, seeds[0], entropy))
            continue
        early = [d for d in draws if d.index < settle.before and d.target is not None]
        if early:
            out.append(_early(src, gen, early, settle))
    info = log.generators.get("default:cpu")
    start_seed = info.initial_seed if info is not None else None
    if out and (start_seed is None or start_seed < _START_SEED):
        # seeded before the window: what it shows as unseeded may have been seeded then
        return [], [f"{src.label}: {names([f.generators[0] for f in out])} drew before any "
                    "seeding in the window, which opened after torch was seeded: not judged "
                    "(rngtrace run records from the program's start)"]
    return out, []


def _never(src: Source, gen: str, draws: list[Draw], seed: Event,
           entropy: Event | None) -> Finding:
    sites = names([d.site or describe(d) for d in draws], 3)
    how = ("was never seeded" if entropy is None else
           f"was seeded only from the OS ({call(entropy)})")
    summary = (f"{gen} drew {plural(len(draws), 'time')} and {how}, while the program seeds "
               f"{seed.generator} ({call(seed)}): at {sites}")
    why = ("a generator nobody seeds starts from the OS's entropy, so these draws differ in "
           "every run: the seed does not make this program reproducible")
    fix = {"numpy:global": "np.random.seed(seed) next to torch.manual_seed (or draw from a "
                           "seeded np.random.default_rng(seed))",
           "python:random": "random.seed(seed) next to torch.manual_seed",
           }.get(gen, "torch.manual_seed(seed) before the first draw")
    evidence = tuple(Evidence.of(d, src.label, src.rank) for d in draws[:_EVIDENCE])
    return Finding("unseeded", "warning", summary, (gen,),
                   tuple(dict.fromkeys(d.site or describe(d) for d in draws)), evidence, why,
                   fix, (src.label,))


def _early(src: Source, gen: str, early: list[Draw], seed: Event) -> Finding:
    targets = names([d.target or "" for d in early], 3)
    summary = (f"{plural(len(early), 'draw')} on {gen} filled parameters ({targets}) before "
               f"its first seeding ({call(seed)})")
    why = ("those parameters start from the OS's entropy, other values in every run: the "
           "seed only fixes what is drawn after it")
    fix = "seed before building the model"
    evidence = tuple(Evidence.of(d, src.label, src.rank) for d in early[:_EVIDENCE])
    return Finding("unseeded", "warning", summary, (gen,),
                   tuple(dict.fromkeys(d.target or "" for d in early)), evidence, why, fix,
                   (src.label,))
