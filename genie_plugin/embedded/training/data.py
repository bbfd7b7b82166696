"""The shapes pools the stages train on (generated in parallel, one seeded stream per class)."""

from __future__ import annotations

import numpy as np

from genie_plugin.embedded import shapes


def generate_parallel(n_per_class: int, seed: int, pool: str):
    """``shapes.generate`` with one process per class (each class has its own seeded stream)."""
    import os
    from concurrent.futures import ProcessPoolExecutor

    workers = min(len(shapes.CLASSES), os.cpu_count() or 1)
    if workers <= 2:
        return shapes.generate(n_per_class, seed=seed, pool=pool)
    with ProcessPoolExecutor(workers) as ex:
        xs = list(ex.map(_render_class, [(c, n_per_class, seed, pool) for c in shapes.CLASSES]))
    ys = np.repeat(np.arange(len(shapes.CLASSES)), n_per_class)
    return np.concatenate(xs), ys


def _render_class(args):
    name, n, seed, pool = args
    return shapes.generate_class(name, n, seed=seed, pool=pool)[0]
