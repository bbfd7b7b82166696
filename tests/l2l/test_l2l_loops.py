"""learn2learn's own loops take the plugin with the diff in docs/learn2learn.md: MAML (l2l.algorithms.MAML +
CNN4) and a ProtoNet evaluation, as learn2learn's examples write them, first on
learn2learn-style tasksets over the shapes data, then on the plugin's."""

import difflib
import inspect
import random
import re
from pathlib import Path

import pytest
import torch

from benchmarks import l2l_loops as loops
from genie_plugin.l2l.plugin import get_tasksets

DOC = Path(__file__).resolve().parents[2] / "docs" / "learn2learn.md"
WAYS, SHOTS, QUERY = 4, 1, 3


def _ids(ts, index, mask):
    desc = ts.description(index)
    return {ts.source_id(desc[p].index) for p in mask.nonzero().flatten().tolist()}


def _check_generated(ts, task):
    """Sources are the caller's support images only; each image is labelled with its target
    and equals no query image."""
    sources = {r["source_id"] for r in task.records}
    assert sources and sources <= _ids(ts, task.index, task.support_mask)
    assert not sources & _ids(ts, task.index, ~task.support_mask)
    for rec, label in zip(task.records, task.generated_y.tolist(), strict=True):
        assert rec["target_class"] == task.class_names[label] != rec["source_class"]
    assert task.generated_y.bincount().tolist() == [ts.generated_per_class] * WAYS
    for g in task.generated_x:
        assert not any(torch.equal(g, q) for q in task.query_x)


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "l2l-cache"


def _maml_tasksets(cache, strategy="genie"):
    return get_tasksets(
        "shapes", train_ways=WAYS, train_samples=2 * SHOTS, test_ways=WAYS, num_tasks=2,
        strategy=strategy, model="tiny-random", support="alternate", cache_dir=cache,
    )  # fmt: skip


def _proto_tasksets(cache, strategy="genie"):
    return get_tasksets(
        "shapes", test_ways=WAYS, test_samples=SHOTS + QUERY, num_tasks=2, shots=SHOTS,
        strategy=strategy, model="tiny-random", cache_dir=cache,
    )  # fmt: skip


def test_same_real_images_and_labels_for_the_same_task_index(cache):
    l2l_train, _, l2l_test = loops.l2l_tasksets(WAYS, 2 * SHOTS)
    ours = _maml_tasksets(cache).train
    for i in (0, 1):
        state = random.getstate()
        x, y = ours.sample_task(i)
        assert random.getstate() == state  # the caller's RNG never moves
        random.seed(ours.task_seed(i))  # learn2learn draws from the global random
        x0, y0 = l2l_train[0]
        assert torch.equal(x, x0) and torch.equal(y, y0)


def test_maml_loop_runs_on_learn2learn_then_on_the_plugin(cache):
    import learn2learn as l2l

    l2l_train = loops.l2l_tasksets(WAYS, 2 * SHOTS)[0]
    base = loops.run_maml(l2l_train, loops.maml_fast_adapt_example, ways=WAYS, shots=SHOTS)
    ts = _maml_tasksets(cache).train
    assert isinstance(ts, l2l.data.Taskset) and len(ts) == 2
    accs = loops.run_maml(ts, loops.maml_fast_adapt_plugin, ways=WAYS, shots=SHOTS)
    assert len(base) == len(accs) == 4 and all(0 <= a <= 1 for a in base + accs)
    per_task = WAYS * ts.generated_per_class
    # 4 draws from a pool of 2: each pool task generated once, later draws read the cache
    assert ts.generator.generated + ts.generator.hits == 4 * per_task
    assert ts.generator.generated in (per_task, 2 * per_task)
    for i in (0, 1):
        _check_generated(ts, ts.sample_task(i))
    assert ts.generator.generated == 2 * per_task
    again = _maml_tasksets(cache).train  # a second pass, a new process's view of the cache
    loops.run_maml(again, loops.maml_fast_adapt_plugin, ways=WAYS, shots=SHOTS)
    assert again.generator.generated == 0 and again.generator.hits == 4 * per_task


def test_protonet_loop_runs_on_learn2learn_then_on_the_plugin(cache):
    l2l_test = loops.l2l_tasksets(WAYS, SHOTS + QUERY)[2]
    kw = dict(ways=WAYS, shot=SHOTS, query=QUERY)
    base = loops.run_protonet(l2l_test, loops.protonet_fast_adapt_example, **kw)
    ts = _proto_tasksets(cache).test
    accs = loops.run_protonet(ts, loops.protonet_fast_adapt_plugin, **kw)
    assert all(0 <= a <= 1 for a in base + accs)
    for i in (0, 1):
        task = ts.sample_task(i)
        _check_generated(ts, task)
        # support="first": the first `shots` of each class, what a stable sort puts first
        first = [(task[1] == c).nonzero()[0].item() for c in range(WAYS)]
        assert task.support_mask.nonzero().flatten().tolist() == sorted(first)
    none = _proto_tasksets(cache, "none").test
    loops.run_protonet(none, loops.protonet_fast_adapt_plugin, **kw)  # no images: still runs
    again = _proto_tasksets(cache).test
    loops.run_protonet(again, loops.protonet_fast_adapt_plugin, **kw)
    assert again.generator.generated == 0


def _changed(a, b) -> list[str]:
    a_src = inspect.getsource(a).splitlines()[1:]  # without the def line (its name differs)
    b_src = inspect.getsource(b).splitlines()[1:]
    return [
        line[0] + line[2:].strip()
        for line in difflib.ndiff(a_src, b_src)
        if line[:1] in "+-" and line[2:].strip()
    ]


@pytest.mark.parametrize(
    "example,plugin",
    [
        (loops.maml_fast_adapt_example, loops.maml_fast_adapt_plugin),
        (loops.protonet_fast_adapt_example, loops.protonet_fast_adapt_plugin),
    ],
)
def test_readme_diff_is_the_tested_change(example, plugin):
    text = DOC.read_text()
    blocks = re.findall(r"<!-- l2l-diff -->\s*```diff\n(.*?)```", text, re.S)
    assert blocks, "docs/learn2learn.md lacks the learn2learn users' diff"
    readme = [
        line[0] + line[1:].strip()
        for block in blocks
        for line in block.splitlines()
        if line[:1] in "+-" and line[1:].strip()
    ]
    changed = _changed(example, plugin)
    assert changed and all(line in readme for line in changed), changed
