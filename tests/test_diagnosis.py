"""The checker's diagnosis: a catalogued mistake is named only when the learner made it, and the
same function always gets the same diagnosis.

``tests/learners/uncatalogued.py`` holds wrong step functions whose mistake is in no catalogue:
each must fail, and no failure may be given a catalogued mistake's name (its hint would send
the learner to fix something that is not broken).
"""

from __future__ import annotations

import pytest

from optimlab.check import catalogue, check
from optimlab.optimizers.registry import SPECS

from .learners import uncatalogued
from .learners.uncatalogued import UNCATALOGUED


def run(fn, name, groups=None, **kw):
    return check(fn, name, groups, raise_on_failure=False, display=False, **kw)


def named(result) -> dict[str, list[str]]:
    """Case title → the keys of the mistakes named there, for the cases that name any."""
    return {c.title: [m.key for m in c.mistakes] for c in result.cases if c.mistakes}


def keys(result) -> list[str]:
    return [m.key for m in result.mistakes]


# ------------------------------------------------------------------ the collection itself
def test_the_collection_covers_every_optimizer_and_imports_no_optimlab():
    counts = {name: sum(n == name for n, _ in UNCATALOGUED) for name in SPECS}
    assert all(counts[name] >= (1 if name == "gd" else 2) for name in SPECS), counts
    assert len(UNCATALOGUED) >= 24
    fns = [fn for _, fn in UNCATALOGUED]
    assert len({fn.__name__ for fn in fns}) == len(fns), "two functions share a name"
    assert all(fn.__doc__ and len(fn.__doc__.strip().splitlines()) == 1 for fn in fns), (
        "each says in one line what is wrong")
    borrowed = [k for k, v in vars(uncatalogued).items()
                if (getattr(v, "__module__", None) or getattr(v, "__name__", "")).startswith(
                    "optimlab")]
    assert not borrowed, f"uncatalogued.py takes {borrowed} from optimlab"


# ------------------------------------------------------------------ no false names
@pytest.mark.parametrize(("name", "fn"), [
    pytest.param(name, fn, id=f"{name}-{fn.__name__}") for name, fn in UNCATALOGUED
])
def test_an_uncatalogued_mistake_gets_no_catalogued_name(name, fn):
    visible = run(fn, name)
    assert not visible.passed, f"{fn.__name__} passes every visible case: it is not wrong"
    assert visible.mistakes == [], (
        f"{fn.__name__} ({fn.__doc__}) was told {keys(visible)}: {named(visible)}")
    assert not any(c.mistakes for c in visible.cases), named(visible)

    hidden = run(fn, name, "hidden")
    assert not hidden.passed, f"{fn.__name__} passes every hidden case"
    assert hidden.mistakes == [], (
        f"{fn.__name__} ({fn.__doc__}) was told {keys(hidden)} on hidden cases: {named(hidden)}")
    assert not any(c.mistakes for c in hidden.cases), named(hidden)


# ------------------------------------------------------------------ the same diagnosis each time
def _catalogued(name: str, key: str):
    mistake = next(m for m in catalogue(name) if m.key == key)
    assert mistake.step_fn is not None, key
    return mistake.step_fn


_BY_NAME = {fn.__name__: (name, fn) for name, fn in UNCATALOGUED}
_SAME = [
    *(pytest.param(*_BY_NAME[f], False, id=f"uncatalogued-{f}") for f in (
        "sgd_dampening_twice", "adam_eps_times_lr", "adamw_step_too_long",
        "nadam_mu_next_default_psi", "rmsprop_float32_state")),
    # catalogued mistakes call optimlab's own code, by design
    *(pytest.param(name, _catalogued(name, key), True, id=f"{name}-{key}") for name, key in (
        ("adam", "eps_inside_sqrt"), ("adamw", "decay_after_update"),
        ("sgd", "sutskever_lr_in_buffer"), ("adamax", "no_eps"),
        ("nadam", "momentum_decay_ignored"), ("adagrad", "eps_inside_sqrt"))),
]


@pytest.mark.parametrize(("name", "fn", "allow_reference"), _SAME)
def test_the_same_function_gets_the_same_diagnosis(name, fn, allow_reference):
    texts = [str(run(fn, name, allow_reference=allow_reference)) for _ in range(3)]
    assert not any(t.startswith(f"{fn.__name__} matches") for t in texts), texts[0]
    assert texts[1] == texts[0], f"first:\n{texts[0]}\n\nsecond:\n{texts[1]}"
    assert texts[2] == texts[0], f"first:\n{texts[0]}\n\nthird:\n{texts[2]}"

    hidden = [keys(run(fn, name, "hidden", allow_reference=allow_reference)) for _ in range(3)]
    assert hidden[0] == hidden[1] == hidden[2], f"hidden runs named {hidden}"
