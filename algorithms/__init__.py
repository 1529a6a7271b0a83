"""The five RLVR algorithms behind one LightningModule interface, and their pure math."""

from __future__ import annotations

import importlib

from algorithms import losses

# name -> (module, class); modules import lazily so `import algorithms` stays light.
_REGISTRY = {
    "a_star_po": ("algorithms.a_star_po", "AStarPO"),
    "basis": ("algorithms.basis", "BASIS"),
    "grpo": ("algorithms.grpo", "GRPO"),
    "ppo": ("algorithms.ppo", "PPO"),
    "rebel": ("algorithms.rebel", "REBEL"),
}


def names() -> list[str]:
    return sorted(_REGISTRY)


def get(name: str):
    """The LightningModule subclass for `name`; unknown names raise ValueError listing the known ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown algorithm {name!r}; known algorithms: {', '.join(names())}")
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)


def __getattr__(attr: str):
    # `algorithms.grpo.group_advantages` etc. without importing every module up front.
    if attr in ("grpo", "ppo", "rebel", "a_star_po", "basis"):
        return importlib.import_module(f"algorithms.{attr}")
    raise AttributeError(attr)


__all__ = ["names", "get", "losses"]
