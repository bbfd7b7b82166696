"""learn2learn's real example scripts, patched by the diffs docs/learn2learn.md shows, run on
real-format miniImageNet stand-ins: the documented change is the whole change."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import pickle
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = Path(__file__).parent / "upstream"
DIFFS = ROOT / "docs" / "l2l"
SPLITS = json.loads((ROOT / "genie_plugin/data/splits/mini_imagenet.json").read_text())["splits"]


def _stand_ins(home: Path, per_class: int = 4) -> None:
    """learn2learn's miniImageNet pickles under ~/data: the real WordNet ids of each split."""
    data = home / "data"
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, wnids in SPLITS.items():
        x = rng.integers(0, 256, (per_class * len(wnids), 84, 84, 3), dtype=np.uint8)
        cd = {w: list(range(k * per_class, (k + 1) * per_class)) for k, w in enumerate(wnids)}
        with open(data / f"mini-imagenet-cache-{split}.pkl", "wb") as fh:
            pickle.dump({"image_data": x, "class_dict": cd}, fh)


def _patched(name: str, where: Path):
    """The upstream file with the documented diff applied (``git apply``: every context
    line must match), imported as a module."""
    target = where / "examples" / "vision" / f"{name}.py"
    target.parent.mkdir(parents=True)
    shutil.copy(UPSTREAM / f"{name}.py", target)
    subprocess.run(["git", "apply", str(DIFFS / f"{name}.diff")], cwd=where, check=True)
    spec = importlib.util.spec_from_file_location(f"upstream_{name}", target)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@contextlib.contextmanager
def _own_global_rngs():
    """The example seeds and draws the global RNGs itself (it is the user's script): give the
    test's back afterwards."""
    import random

    import torch

    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        yield
    np.random.set_state(np_state)
    random.setstate(py_state)


def changed_lines(name: str) -> int:
    text = (DIFFS / f"{name}.diff").read_text().splitlines()
    return sum(1 for x in text if x[:1] in "+-" and not x.startswith(("+++", "---")))


@pytest.mark.parametrize("name", ["maml_miniimagenet", "protonet_miniimagenet", "anil_fc100"])
def test_the_docs_show_the_whole_diff(name):
    """docs/learn2learn.md quotes each diff file verbatim (imports included)."""
    doc = (ROOT / "docs" / "learn2learn.md").read_text()
    blocks = re.findall(r"```diff\n(.*?)```", doc, flags=re.S)
    assert (DIFFS / f"{name}.diff").read_text() in blocks


def test_maml_example_patched_by_the_docs_runs_and_adapts_on_generated_images(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("HOME", str(tmp_path))
    _stand_ins(tmp_path)
    mod = _patched("maml_miniimagenet", tmp_path / "l2l")
    mod.SD = "embedded"  # the shipped model: no download (the diff names SD 1.5)
    seen, real = [], mod.fast_adapt

    def spy(batch, learner, loss, steps, shots, ways, device):
        data, labels = batch
        seen.append((len(data), len(batch.generated_y)))
        return real(batch, learner, loss, steps, shots, ways, device)

    monkeypatch.setattr(mod, "fast_adapt", spy)
    with _own_global_rngs(), pytest.warns(UserWarning, match="rehearsal"):
        mod.main(ways=5, shots=1, meta_batch_size=1, num_iterations=2, cuda=False, seed=42)
    # two iterations of a training and a validation task, then a test task: 5-way 1-shot
    # tasks of 2 samples per class, and (N-1)·K = 4 images per class where it augments
    assert seen == [(10, 20), (10, 0), (10, 20), (10, 0), (10, 20)]
    assert changed_lines("maml_miniimagenet") == 14


def test_protonet_example_patched_by_the_docs_evaluates_with_generated_prototypes(
    tmp_path, monkeypatch
):
    """ProtoNet builds its own Tasksets and DataLoaders: the diff wraps the test taskset
    (``genie_plugin.l2l.augment``) and collates tasks whole; its prototypes average the real
    shots and the generated images of each class."""
    import runpy
    import sys

    import learn2learn as l2l

    from genie_plugin.l2l import plugin

    monkeypatch.setenv("HOME", str(tmp_path))
    _stand_ins(tmp_path)
    _patched("protonet_miniimagenet", tmp_path / "l2l")  # checks the diff applies
    path = tmp_path / "l2l" / "examples" / "vision" / "protonet_miniimagenet.py"

    class FewTasks(l2l.data.Taskset):  # its 200 validation / 2000 test tasks: 2 each here
        def __init__(self, dataset, task_transforms=None, num_tasks=-1, task_collate=None):
            n = min(num_tasks, 2) if num_tasks > 0 else num_tasks
            super().__init__(dataset, task_transforms=task_transforms, num_tasks=n,
                             task_collate=task_collate)  # fmt: skip

    asked, real = [], plugin._cached_generator

    def shipped(model, device, cache_dir):  # the diff names SD 1.5: run the shipped model
        asked.append(model)
        return real("embedded", device, cache_dir)

    seen = []
    real_collate = plugin.one_task

    def spy(batch):
        task = real_collate(batch)
        seen.append((len(task[0]), len(task.generated_y)))
        return task

    monkeypatch.setattr(l2l.data, "Taskset", FewTasks)
    monkeypatch.setattr(plugin, "_cached_generator", shipped)
    monkeypatch.setattr(plugin, "one_task", spy)
    argv = ["protonet_miniimagenet.py", "--max-epoch", "1", "--train-way", "5",
            "--train-query", "1", "--test-query", "2"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with _own_global_rngs():
        runpy.run_path(str(path), run_name="__main__")
    assert asked == ["stable-diffusion-v1-5/stable-diffusion-v1-5"]
    # two 5-way test tasks of 1 shot + 2 queries per class, (N-1)·K = 4 generated per class
    assert seen == [(15, 20), (15, 20)]
    assert changed_lines("protonet_miniimagenet") == 18


def test_anil_example_on_fc100_adapts_its_head_on_generated_features(tmp_path, monkeypatch):
    """ANIL computes features before splitting: the diff passes the generated images through
    the same feature extractor and joins them to the head's adaptation set; FC100 through
    learn2learn's own FC100 class and hand-built Tasksets (FusedNWaysKShots)."""
    from tests.real_formats import write_fc100

    monkeypatch.setenv("HOME", str(tmp_path))
    write_fc100(tmp_path / "data", per_class=4)
    mod = _patched("anil_fc100", tmp_path / "l2l")
    mod.SD = "embedded"
    seen, real = [], mod.fast_adapt

    def spy(batch, learner, features, loss, steps, shots, ways, device=None):
        seen.append((len(batch[0]), len(getattr(batch, "generated_y", ()))))
        return real(batch, learner, features, loss, steps, shots, ways, device)

    monkeypatch.setattr(mod, "fast_adapt", spy)
    with _own_global_rngs(), pytest.warns(UserWarning, match="rehearsal"):
        mod.main(ways=5, shots=1, adapt_steps=1, meta_bsz=1, iters=2, cuda=0, seed=42)
    assert seen == [(10, 20), (10, 0), (10, 20)] * 2  # train, validation (not wrapped), test
    assert changed_lines("anil_fc100") == 12
