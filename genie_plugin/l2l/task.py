"""What a generative taskset's ``sample()`` returns, and which real images are the support set."""

from __future__ import annotations

from typing import Any

import torch

from genie_plugin.errors import ConfigError

SUPPORT_RULES = ("first", "alternate")


class AugmentedTask(tuple):
    """``(X, y)`` exactly as learn2learn's ``sample()`` returns them (real images only; unpack
    it the same way), plus named fields: ``generated_x``/``generated_y`` (the strategy's images,
    labelled with their target class), ``support_x``/``support_y`` (the real support images,
    then the generated ones), ``query_x``/``query_y``, ``support_mask`` (over X), ``records``
    (manifest records of the generated images), ``class_names`` and ``index``.

    Why the generated images are not in X: learn2learn's examples split X by position after
    the fact — MAML takes the even positions, ProtoNet sorts by label with the unstable
    ``torch.sort`` (which permutes equal labels even in sorted input) — so any image placed
    in X could land in their query set.
    """

    def __new__(cls, x: torch.Tensor, y: torch.Tensor, **fields: Any):
        task = super().__new__(cls, (x, y))
        task.__dict__.update(fields)
        return task

    def __getnewargs_ex__(self):  # pickling (DataLoader workers)
        return (self[0], self[1]), dict(self.__dict__)

    @property
    def x(self) -> torch.Tensor:
        return self[0]

    @property
    def y(self) -> torch.Tensor:
        return self[1]


def support_positions(y: torch.Tensor, shots: int, rule: str) -> torch.Tensor:
    """Bool mask over a task: which real images the user's split takes as support."""
    mask = torch.zeros(len(y), dtype=torch.bool)
    if rule == "first":  # learn2learn's partition_task: first `shots` of each class, in order
        seen: dict[int, int] = {}
        for p, lab in enumerate(y.tolist()):
            if seen.get(lab, 0) < shots:
                mask[p] = True
                seen[lab] = seen.get(lab, 0) + 1
    elif rule == "alternate":  # learn2learn's MAML examples
        ways = len(set(y.tolist()))
        mask[torch.arange(shots * ways) * 2] = True
    else:
        raise ConfigError(f"support={rule!r}: choose one of {', '.join(SUPPORT_RULES)}")
    return mask
