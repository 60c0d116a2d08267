"""Synthetic op-level logs of any length, shaped like a training run, for the diff and
log-file benchmarks.

A GPT-like model's parameters are drawn first (``init``), then every step draws a
dropout mask in the embedding and three per block (``forward``). ``insert`` puts extra
draws into the run the way a tidy-up does (an extra parameter, an extra dropout); after
each one the generator's states differ from the original run's, as they would: an
inserted draw moves every later state.
"""

from __future__ import annotations

from rngtrace import Draw, GeneratorInfo, Log

_MASK = (1 << 64) - 1
_LAYERS = 12


def _plan() -> tuple[list[tuple], list[tuple]]:
    """(op, module, module_type, target, shape, args, phase, site, code) of init and step."""
    init: list[tuple] = [
        ("aten::normal_", "wte", "Embedding", "wte.weight", (50257, 768), {"std": 0.02}),
        ("aten::normal_", "wpe", "Embedding", "wpe.weight", (1024, 768), {"std": 0.02}),
    ]
    for i in range(_LAYERS):
        for name, shape in (("attn.c_attn", (2304, 768)), ("attn.c_proj", (768, 768)),
                            ("mlp.c_fc", (3072, 768)), ("mlp.c_proj", (768, 3072))):
            init.append(("aten::uniform_", f"h.{i}.{name}", "Linear", f"h.{i}.{name}.weight",
                         shape, {"from": -0.036, "to": 0.036}))
            init.append(("aten::uniform_", f"h.{i}.{name}", "Linear", f"h.{i}.{name}.bias",
                         shape[:1], {"from": -0.036, "to": 0.036}))
    init = [(*d, "init", "models/gpt.py:41", "self.reset_parameters()") for d in init]
    step: list[tuple] = [("aten::bernoulli_", "drop", "Dropout", None, (8, 64, 768),
                          {"p": 0.9}, "forward", "models/gpt.py:88", "x = self.drop(x)")]
    for i in range(_LAYERS):
        for name, shape, line in (("attn.attn_dropout", (8, 12, 64, 64), 57),
                                  ("attn.resid_dropout", (8, 64, 768), 60),
                                  ("mlp.dropout", (8, 64, 768), 71)):
            step.append(("aten::bernoulli_", f"h.{i}.{name}", "Dropout", None, shape,
                         {"p": 0.9}, "forward", f"models/gpt.py:{line}",
                         f"return self.{name.split('.')[-1]}(x)"))
    return init, step


_EXTRA = ("aten::normal_", "h.3.attn", "Attention", "h.3.attn.gamma", (1, 12, 1, 1), {},
          "init", "models/gpt.py:52", "self.gamma = nn.Parameter(torch.randn(1, 12, 1, 1))")


def _state(c: int, salt: int) -> str:
    return f"{(c * 0x9E3779B97F4A7C15 + salt * 0x632BE59BD9B4E5) & _MASK:016x}"


def synthetic(n: int, insert: tuple[int, ...] = ()) -> Log:
    """A log of ``n`` draws (plus one per position in ``insert``, placed before the draw
    of the original run with that index)."""
    init, step = _plan()
    extra_at = set(insert)
    draws: list[Draw] = []
    salt = 0
    c = 0
    steps = 0
    k = 0  # draws of the original run emitted so far
    shapes: dict[tuple, int] = {}
    while k < n:
        if k in extra_at:
            extra_at.discard(k)
            spec = _EXTRA
            salt += 1
        else:
            j = k if k < len(init) else (k - len(init)) % len(step)
            if k >= len(init) and j == 0 and k > len(init):
                steps += 1
            spec = init[k] if k < len(init) else step[j]
            k += 1
        op, module, mtype, target, shape, args, phase, site, code = spec
        numel = shapes.get(shape)
        if numel is None:
            numel = shapes[shape] = _prod(shape)
        draws.append(Draw(
            index=len(draws), op=op, module=module, module_type=mtype, target=target,
            phase=phase, step=steps if phase != "init" else 0, shape=shape,
            dtype="float32", device="cpu", numel=numel, args=args,
            generator="default:cpu", state_before=_state(c, salt),
            state_after=_state(c + 1, salt), consumed=True, site=site, code=code,
            api="torch.nn.functional.dropout" if phase == "forward" else None,
            model="GPT2LMHead",
        ))
        c += 1
    log = Log(draws=draws, steps=steps, meta={"tool": "rngtrace", "synthetic": True})
    log.generators = {"default:cpu": GeneratorInfo("default:cpu", "cpu", 0, _state(0, 0))}
    return log


def _prod(shape: tuple[int, ...]) -> int:
    p = 1
    for s in shape:
        p *= s
    return p
