"""A strategy as a learn2learn augmentation: generated images join the support set after
learn2learn's own split, with their labels; tasks are reproducible; README's example runs."""

import random
import re
from pathlib import Path

import pytest
import torch

from genie_plugin.l2l.plugin import get_tasksets  # noqa: E402

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture(scope="module")
def genie_tasks():
    # test_ways=4: the shapes validation split has 4 classes (more fail at construction)
    return get_tasksets(
        "shapes",
        strategy="genie",
        model="tiny-random",
        test_ways=4,
        test_samples=3,
        shots=1,
        seed=0,
    )


def test_generated_images_join_support_after_split(genie_tasks):
    state = random.getstate()
    task = genie_tasks.test.sample()
    assert random.getstate() == state
    ways, shots, queries = 4, 1, 2
    n_gen = ways * (ways - 1) * shots  # (N-1)·K hard negatives per class
    assert task.support_x.shape == (ways * shots + n_gen, 3, 32, 32)
    assert task.query_x.shape == (ways * queries, 3, 32, 32)
    assert torch.equal(task.support_x[ways * shots :], task.generated_x)
    assert sorted(task.generated_y.tolist()) == sorted(list(range(ways)) * (ways - 1))
    # each generated image is labelled with its target class, made from another class's image
    for rec, label in zip(task.records, task.generated_y.tolist(), strict=True):
        assert rec["target_class"] == task.class_names[label] and rec["label"] == label
        assert rec["source_class"] != rec["target_class"]
    # query images are real dataset images: none equals a generated one
    for g in task.generated_x:
        assert not any(torch.equal(g, q) for q in task.query_x)


def test_tasks_are_reproducible_by_index(genie_tasks):
    a = genie_tasks.test.sample_task(3)
    b = genie_tasks.test.sample_task(3)
    c = genie_tasks.test.sample_task(4)
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_y, b.query_y)
    assert not torch.equal(a.support_x[:5], c.support_x[:5])


def test_non_generative_strategy_adds_nothing():
    t = get_tasksets("shapes", strategy="none", test_ways=4, test_samples=3, shots=2).test.sample()
    assert t.support_x.shape[0] == 8 and t.generated_x.shape[0] == 0


def test_readme_example_runs():
    text = README.read_text()
    m = re.search(r"<!-- l2l-example -->\s*```python\n(.*?)```", text, re.S)
    assert m, "README lacks the learn2learn example block"
    code = m.group(1).replace('model="embedded"', 'model="tiny-random"')
    ns: dict = {}
    exec(compile(code, "README-example", "exec"), ns)
    assert ns["task"].support_x.shape[0] == 4 + 12 and ns["task"].query_x.shape[0] == 4 * 15


def test_every_strategy_that_scores_images_gets_the_backbone(tmp_path):
    """Capabilities, not names: each GeNIe-Ada variant gets a backbone (the embedded one on
    shapes); on a real dataset the caller must name model and backbone."""
    from genie_plugin.errors import ConfigError
    from genie_plugin.registry import REGISTRY
    from tests.real_formats import write_mini

    scorers = [n for n in REGISTRY.names() if REGISTRY.create(n).needs_embedder]
    assert {"genie_ada", "genie_ada_lite", "genie_ada_fast"} <= set(scorers)
    for name in scorers:
        ts = get_tasksets(
            "shapes",
            strategy=name,
            model="tiny-random",
            test_ways=4,
            test_samples=3,
            cache_dir=tmp_path,
        )
        assert ts.test.embed is not None and ts.test.embed.name == "embedded", name
    assert (
        get_tasksets(
            "shapes", strategy="genie", model="tiny-random", test_ways=4, cache_dir=tmp_path
        ).test.embed
        is None
    )
    write_mini(tmp_path / "mini", per_class=3)
    for name in scorers:
        with pytest.raises(ConfigError, match="pass backbone="):
            get_tasksets(
                "mini-imagenet", strategy=name, model="tiny-random", root=tmp_path / "mini"
            )
    with pytest.raises(ConfigError, match="pass model="):
        get_tasksets("mini-imagenet", strategy="genie", root=tmp_path / "mini")


@pytest.mark.parametrize("name", ["weak", "strong", "mixup", "cutmix"])
def test_view_baselines_refuse_instead_of_returning_none(name):
    from genie_plugin.errors import ConfigError

    with pytest.raises(ConfigError, match=r"feature protocol \(`genie bench run`\)"):
        get_tasksets("shapes", strategy=name)


def test_splits_too_small_fail_at_construction_naming_counts():
    from genie_plugin.errors import ConfigError

    with pytest.raises(
        ConfigError, match=r"shapes/val: 5 ways asked, but the split has only 4 classes"
    ):
        get_tasksets("shapes", strategy="none", test_ways=5)
    with pytest.raises(ConfigError, match=r"shapes/base: 500 samples per class asked, 20 classes"):
        get_tasksets("shapes", strategy="none", train_samples=500, test_ways=4)


def test_shapes_metadataset_takes_learn2learn_split_names():
    from genie_plugin.embedded.dataset import shapes_metadataset

    assert sorted(shapes_metadataset("test").labels) == sorted(shapes_metadataset("novel").labels)
    assert len(shapes_metadataset("validation").labels) == 4


def test_task_tensors_on_the_requested_device(monkeypatch):
    ts = get_tasksets("shapes", strategy="none", test_ways=4, test_samples=3, device="meta")
    task = ts.validation.sample()
    assert {t.device.type for t in (task.support_x, task.query_x, task.generated_x)} == {"meta"}


def test_num_tasks_is_a_fixed_pool_generated_once(tmp_path):
    """learn2learn's num_tasks: a fixed pool sampled from, so a second pass generates nothing;
    the caller's global random is never moved."""
    ts = get_tasksets(
        "shapes",
        strategy="genie",
        model="tiny-random",
        test_ways=4,
        test_samples=3,
        num_tasks=2,
        cache_dir=tmp_path,
    )
    state = random.getstate()
    tasks = [ts.test.sample() for _ in range(8)]
    assert random.getstate() == state and len(ts.test) == 2
    episodes = {t.records[0]["episode"] for t in tasks}
    assert episodes == {0, 1}  # only pool members, both drawn
    per_task = 4 * 3  # (N-1)·K per class × N classes
    assert ts.test.generator.generated == 2 * per_task and ts.test.generator.hits == 6 * per_task
    again = [ts.test.sample_task(i) for i in (0, 1)]
    assert ts.test.generator.generated == 2 * per_task  # nothing new
    by_ep = {t.records[0]["episode"]: t for t in tasks}
    assert all(torch.equal(by_ep[i].support_x, again[i].support_x) for i in (0, 1))


def test_sample_unpacks_like_learn2learn_and_is_a_taskset():
    import learn2learn as l2l

    ts = get_tasksets("shapes", test_ways=4, test_samples=3, strategy="none")
    assert all(isinstance(t, l2l.data.Taskset) for t in ts)
    x, y = ts.test.sample()
    assert x.shape == (12, 3, 32, 32) and y.shape == (12,)
    again = type(ts.test).wrap(ts.test, ts.test.strategy, **_wrap_options(ts.test))
    assert torch.equal(again.sample_task(5)[0], ts.test.sample_task(5)[0])


def _wrap_options(t):
    keys = ("shots", "source", "source_id", "class_names", "image_transform", "seed", "name")
    return {k: getattr(t, k) for k in keys}


def test_shots_default_to_half_the_samples_and_must_leave_a_query():
    from genie_plugin.errors import ConfigError

    ts = get_tasksets("shapes", test_ways=4, train_samples=10, test_samples=4, strategy="none")
    assert (ts.train.shots, ts.test.shots) == (5, 2)
    assert int(ts.train.sample().support_mask.sum()) == 5 * 5
    with pytest.raises(ConfigError, match=r"train tasks have 2 samples per class and shots=2"):
        get_tasksets("shapes", test_ways=4, train_samples=2, shots=2, strategy="none")
    with pytest.raises(ConfigError, match=r"support='alternate' is the MAML examples"):
        get_tasksets("shapes", test_ways=4, test_samples=3, shots=1, support="alternate")


def test_learn2learn_arguments_keep_their_order_and_unknown_ones_are_named():
    from genie_plugin.errors import ConfigError

    with pytest.raises(ConfigError, match=r"the strategy is a keyword.*strategy='genie'"):
        get_tasksets("shapes", "genie")
    with pytest.raises(ConfigError, match=r"unknown keyword shots_per_class; passed on"):
        get_tasksets("shapes", test_ways=4, strategy="none", shots_per_class=1)
    with pytest.raises(ConfigError, match=r"data_augmentation='autoaugment': choose None"):
        get_tasksets("shapes", test_ways=4, strategy="none", data_augmentation="autoaugment")


@pytest.mark.parametrize("aug", [None, "normalize"])
@pytest.mark.parametrize("name", ["mini-imagenet", "tiered-imagenet"])
def test_pixels_equal_learn2learns_own_tasksets(tmp_path, name, aug):
    """Same task, same pixels as learn2learn's get_tasksets on real-format files (0–255 floats
    for its miniImageNet, 0–1 for tieredImageNet; 'normalize': 0–1)."""
    import learn2learn as l2l

    from tests.real_formats import write_mini, write_tiered

    write = write_mini if name == "mini-imagenet" else write_tiered
    for split in ("train", "validation", "test"):
        write(tmp_path, per_class=4, split=split)
    kw = dict(test_ways=5, test_samples=4, train_samples=4, root=str(tmp_path))
    theirs = l2l.vision.benchmarks.get_tasksets(name, data_augmentation=aug, **kw)
    ours = get_tasksets(name, data_augmentation=aug, strategy="none", **kw)
    for split in ("train", "validation", "test"):
        t = getattr(ours, split)
        random.seed(t.task_seed(3))
        x0, y0 = getattr(theirs, split)[0]
        x, y = t.sample_task(3)
        assert torch.equal(x, x0) and torch.equal(y, torch.as_tensor(y0)), split
    top = 255.0 if name == "mini-imagenet" and aug is None else 1.0
    assert float(x.min()) >= 0 and float(x.max()) <= top and float(x.max()) > top / 2


def test_lee2019_random_transforms_are_seeded_per_task():
    ts = get_tasksets("shapes", test_ways=4, strategy="none", data_augmentation="lee2019")
    a, b = ts.train.sample_task(2)[0], ts.train.sample_task(2)[0]
    assert torch.equal(a, b) and float(a.min()) < 0  # normalised, and the same every time
    assert not torch.equal(a, ts.train.sample_task(3)[0])


def test_no_banner_from_the_plugins_imports(tmp_path):
    """Quiet: importing and using the plugin prints nothing (the 'Multiple distributions found
    for package optimum' line, gym's banner, learn2learn's TaskDataset deprecation)."""
    import os
    import subprocess
    import sys

    code = (
        "import warnings; warnings.simplefilter('default')\n"
        "from genie_plugin.l2l import get_tasksets\n"
        "ts = get_tasksets('shapes', test_ways=4, test_samples=3, strategy='genie', "
        f"model='tiny-random', cache_dir={str(tmp_path)!r})\n"
        "x, y = ts.test.sample()\n"
    )
    env = {**os.environ, "GENIE_CACHE_DIR": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout + out.stderr
    for banner in ("Multiple distributions", "Gym has been unmaintained", "TaskDataset is"):
        assert banner not in text, text


def test_cli_dataset_check_prints_no_gym_banner(tmp_path):
    """The CUB file check is the first learn2learn import of a `bench run`: quiet too."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "genie_cli.main", "bench", "run", "--dataset", "cub", "--root",
         str(tmp_path), "--episodes", "1", "-s", "genie"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 2 and "cubirds200" in out.stdout + out.stderr
    assert "Gym has been unmaintained" not in out.stdout + out.stderr


def test_per_split_strategies_shots_pools_and_budgets():
    """Augment the test split only (the paper's protocol), other shots and pools per split,
    and a budget: per_class images per class, capped per task and spread over the classes."""
    ts = get_tasksets(
        "shapes", strategy={"test": "genie"}, model="tiny-random", train_ways=3,
        train_samples=5, test_ways=4, test_samples=3, shots={"train": 2, "test": 1,
        "validation": 1}, num_tasks={"test": 2, "validation": 3}, per_class={"test": 2},
        per_task={"test": 6}, seed=0,
    )  # fmt: skip
    assert [t.strategy.name for t in ts] == ["none", "none", "genie"]
    assert [t.num_tasks for t in ts] == [-1, 3, 2] and [t.shots for t in ts] == [2, 1, 1]
    assert ts.test.generated_per_class == 2 and ts.test.generated_per_task == 6
    task = ts.test.sample()
    counts = torch.bincount(task.generated_y, minlength=4)
    assert len(task.generated_y) == 6 and int(counts.max() - counts.min()) <= 1
    assert len(ts.train.sample().generated_y) == 0 and ts.train.generated_per_class == 0
    assert len(ts.validation[0].generated_y) == 0


def test_per_split_mistakes_and_the_support_rule_warning(tmp_path):
    import warnings

    from genie_plugin.data.specs import DatasetError
    from genie_plugin.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown split 'tset'"):
        get_tasksets("shapes", strategy={"tset": "genie"}, model="tiny-random", test_ways=4)
    with pytest.raises(ConfigError, match="per_class"):
        get_tasksets("shapes", strategy="none", test_ways=4, per_class={"test": -2})
    # MAML's layout (samples = 2·shots everywhere) with the default rule: say which rule runs
    with pytest.warns(UserWarning, match="support='alternate'"):
        get_tasksets("shapes", strategy="genie", model="tiny-random", test_ways=4,
                     train_samples=2, test_samples=2)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_tasksets("shapes", strategy="genie", model="tiny-random", test_ways=4,
                     train_samples=2, test_samples=2, support="first")  # fmt: skip
    with pytest.warns(UserWarning, match="rehearsal"), pytest.raises(DatasetError):
        get_tasksets("mini-imagenet", strategy="genie", model="embedded", root=tmp_path)


def test_generation_inside_sample_shows_progress_and_cached_tasks_stay_quiet(capfd, tmp_path):
    kw = dict(strategy="genie", model="tiny-random", test_ways=4, test_samples=3, shots=1,
              num_tasks=1, cache_dir=tmp_path)  # fmt: skip
    ts = get_tasksets("shapes", **kw)
    capfd.readouterr()
    ts.test[0]
    err = capfd.readouterr().err
    assert "task 0" in err and "image-steps" in err, err  # plain lines: stderr is not a TTY
    ts.test[0]  # every image from the cache: nothing to report
    assert capfd.readouterr().err == ""
    quiet = get_tasksets("shapes", progress=False, **{**kw, "cache_dir": tmp_path / "q"})
    capfd.readouterr()
    quiet.test[0]
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("dataset", ["cifarfs", "fc100"])
def test_cifarfs_and_fc100_through_learn2learns_own_datasets(tmp_path, dataset):
    """Two more of learn2learn's five vision benchmarks, read by its own CIFARFS / FC100
    classes: 32 px tasks, CIFAR-100 class names as prompts, the test split augmented."""
    from typer.testing import CliRunner

    from genie_cli.main import app
    from tests.real_formats import write_cifarfs, write_fc100

    root = (write_cifarfs if dataset == "cifarfs" else write_fc100)(tmp_path / "d", per_class=4)
    ts = get_tasksets(dataset, root=str(root), strategy={"test": "genie"}, model="tiny-random",
                      train_ways=5, test_ways=5, train_samples=4, test_samples=3, shots=1,
                      support="first")  # fmt: skip
    task = ts.test.sample()
    x, y = task
    assert x.shape[1:] == (3, 32, 32) and task.generated_x.shape[1:] == (3, 32, 32)
    assert len(task.generated_y) == 5 * 4 and len(ts.train.sample().generated_y) == 0
    assert all(n.replace(" ", "").isalpha() for n in task.class_names)
    res = CliRunner().invoke(app, ["datasets", "classes", dataset, "--root", str(root)])
    assert res.exit_code == 0, res.output
    want = "sweet pepper" if dataset == "cifarfs" else "maple tree"  # FC100: fine id 47
    assert f"a photo of a {want}." in res.output
