"""The reference step functions under the name the course has always used: ``<name>_step``
for every registered optimizer (``optimlab.reference.adam_step``), and any other public name
of an optimizer's module (``optimlab.reference.nadam_momentum``).

They live in :mod:`optimlab.optimizers`, one module per optimizer.
"""

from __future__ import annotations

import sys
from typing import Any

from .optimizers import SPECS


def _modules() -> list[Any]:
    return [sys.modules[s.step_fn.__module__] for s in SPECS.values()]


def __getattr__(name: str) -> Any:
    if name.endswith("_step") and name.removesuffix("_step") in SPECS:
        return SPECS[name.removesuffix("_step")].step_fn
    if not name.startswith("_"):
        for module in _modules():
            obj = getattr(module, name, None)
            if callable(obj) and getattr(obj, "__module__", None) == module.__name__:
                return obj
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(f"{name}_step" for name in SPECS)
