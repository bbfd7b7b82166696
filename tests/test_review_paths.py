"""Paths the coverage review found no test reaching (issue 19): each is something a user or a
downstream tool relies on."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from genie_cli.main import app
from genie_plugin.errors import ConfigError

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def test_bench_compare_passes_a_reproduction_and_lists_what_differs(tmp_path):
    """CI's leaderboard check runs this command outside pytest: here it is tested itself."""
    committed = RESULTS / "embedded-5w1s.jsonl"
    rows = [json.loads(x) for x in committed.read_text().splitlines()]
    res = CliRunner().invoke(app, ["bench", "compare", str(committed), str(committed)])
    assert res.exit_code == 0 and f"reproduces {committed} ({len(rows)} rows)" in res.output

    changed = [dict(r) for r in rows]
    changed[1]["mean"] = changed[1]["mean"] + 0.5
    rerun = tmp_path / "rerun.jsonl"
    rerun.write_text("".join(json.dumps(r) + "\n" for r in changed))
    res = CliRunner().invoke(app, ["bench", "compare", str(committed), str(rerun)])
    assert res.exit_code == 1 and changed[1]["strategy"] in res.output
    assert "reproduces" not in res.output


def test_version_prints_the_package_version():
    from genie_plugin import __version__

    res = CliRunner().invoke(app, ["version"])
    assert res.exit_code == 0 and res.output.strip() == __version__


def test_export_shapes_writes_a_png_tree_the_folder_loader_reads(tmp_path):
    from genie_plugin.embedded import shapes

    res = CliRunner().invoke(app, ["datasets", "export-shapes", str(tmp_path), "--per-class", "1"])
    assert res.exit_code == 0, res.output
    pngs = sorted(tmp_path.rglob("*.png"))
    assert f"wrote {len(pngs)} images under {tmp_path}" in res.output
    assert len(pngs) == len(shapes.CLASSES)
    assert {p.parent.name for p in pngs} == set(shapes.CLASSES)
    assert {p.parent.parent.name for p in pngs} == set(shapes.SPLITS)
    with Image.open(pngs[0]) as im:
        assert im.size == (shapes.IMAGE_SIZE, shapes.IMAGE_SIZE) and im.mode == "RGB"


def test_a_fixed_task_pool_indexes_and_iterates_like_learn2learn():
    from genie_plugin.l2l import get_tasksets

    pool = get_tasksets(
        "shapes", strategy="none", test_ways=4, test_samples=3, shots=1, num_tasks=3
    ).test
    tasks = list(pool)
    assert len(tasks) == 3
    assert torch.equal(pool[1].support_x, tasks[1].support_x)
    assert torch.equal(pool[-1].support_x, tasks[2].support_x)  # negative index, as a list
    assert not torch.equal(tasks[0].support_x, tasks[1].support_x)
    with pytest.raises(IndexError, match="task 3 of a pool of 3"):
        pool[3]


def test_an_endless_pool_gives_a_new_task_for_every_index_and_step():
    from genie_plugin.l2l import get_tasksets

    ts = get_tasksets("shapes", strategy="none", test_ways=4, test_samples=3, shots=1).test
    a, b = ts[0], ts[0]  # learn2learn's num_tasks=-1: any index draws the next task
    assert not torch.equal(a.support_x, b.support_x)
    it = iter(ts)
    c, d = next(it), next(it)
    assert not torch.equal(c.support_x, d.support_x)
    # the same sequence again from a fresh taskset: drawing is seeded, not global
    again = get_tasksets("shapes", strategy="none", test_ways=4, test_samples=3, shots=1).test
    assert torch.equal(again[5].support_x, a.support_x)


def test_tasks_pickle_with_their_fields():
    """DataLoader workers pickle tasks: (X, y) and the generated part must survive."""
    from genie_plugin.l2l import get_tasksets

    task = get_tasksets("shapes", strategy="none", test_ways=4, test_samples=3, shots=1).test[0]
    back = pickle.loads(pickle.dumps(task))
    x, y = back  # still learn2learn's (X, y)
    assert torch.equal(x, task.x) and torch.equal(y, task.y)
    assert torch.equal(back.support_x, task.support_x) and back.class_names == task.class_names


def test_generation_specs_read_back_from_their_records():
    """A manifest record says which source made which image: a spec rebuilt from it is equal."""
    from genie_plugin.strategies.base import GenerationSpec

    spec = GenerationSpec(
        strategy="genie_ada", dataset="shapes", episode=3, label=1, target_class="star",
        prompt="a photo of a star.", seed=42, ratios=(0.5, 0.6, 0.7), source_id="novel/3",
        source_class="moon", copy=1, prototype_ids=("novel/1", "novel/2"),
    )  # fmt: skip
    record = json.loads(json.dumps(spec.to_dict()))  # as written to and read from a manifest
    assert GenerationSpec.from_dict(record) == spec
    with pytest.raises(ConfigError, match="GenerationSpec.*ratio_s"):
        GenerationSpec.from_dict({**record, "ratio_s": [0.5]})


def test_a_damaged_feature_file_is_recomputed_and_rewritten(tmp_path):
    from genie_plugin.fewshot.backbones import MemoEmbedder

    calls = []

    def embed(images):
        calls.append(len(images))
        return np.arange(len(images) * 3, dtype=np.float32).reshape(len(images), 3)

    images = [Image.new("RGB", (8, 8), (i, 0, 0)) for i in range(2)]
    first = MemoEmbedder(embed, store=tmp_path)(images)
    (path,) = tmp_path.rglob("*.npy")
    assert np.array_equal(MemoEmbedder(embed, store=tmp_path)(images), first) and calls == [2]
    path.write_bytes(b"\x93NUMPY truncated")
    again = MemoEmbedder(embed, store=tmp_path)(images)
    assert np.array_equal(again, first) and calls == [2, 2]  # recomputed
    from genie_plugin.fewshot.backbones import _read_sealed_npy

    assert np.array_equal(_read_sealed_npy(path), first)  # and the file is good again


def test_cache_root_follows_xdg_then_home(monkeypatch, tmp_path):
    from genie_plugin.paths import cache_root

    monkeypatch.delenv("GENIE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "genie_plugin"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "genie_plugin"
    monkeypatch.setenv("GENIE_CACHE_DIR", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--ratios", "0.5,x"], "--ratios must be comma-separated numbers"),
        (["--ratios", "0.5,0.5"], "--ratios needs at least two distinct values"),
        (["--target", " "], "--target must not be empty"),
    ],
)
def test_sweep_option_errors_name_the_option(tmp_path, argv, message):
    src = tmp_path / "a.png"
    Image.new("RGB", (16, 16)).save(src)
    base = ["sweep", str(src), "--target", "cat", "--out", str(tmp_path / "o")]
    res = CliRunner().invoke(app, [*base, *argv])
    assert res.exit_code == 2 and message in res.output, res.output
    assert not (tmp_path / "o").exists()


def test_datasets_download_fetches_each_split_then_checks_the_files(tmp_path, monkeypatch):
    """The download itself is learn2learn's (network); the command's flow is ours: every split
    asked for goes to the downloader, then the files are checked and the verdict printed."""
    from genie_plugin.data import datasets

    calls = []
    monkeypatch.setattr(datasets, "load_split", lambda *a, **kw: calls.append((a, kw)))
    res = CliRunner().invoke(
        app, ["datasets", "download", "mini-imagenet", "--root", str(tmp_path), "--split", "val"]
    )
    assert calls == [(("mini-imagenet", "validation"), {"root": tmp_path, "download": True})]
    # the stand-in fetched nothing: the check after it says so and the exit code is 1
    assert res.exit_code == 1 and f"mini-imagenet: incomplete under {tmp_path}" in res.output
    res = CliRunner().invoke(app, ["datasets", "download", "imagenet", "--root", str(tmp_path)])
    assert res.exit_code == 2 and "choose one of" in res.output and len(calls) == 1
    monkeypatch.chdir(tmp_path)  # a short path: typer's error box wraps long lines
    (tmp_path / "file").write_text("x")
    res = CliRunner().invoke(app, ["datasets", "check", "file"])
    assert res.exit_code == 2 and "is not a folder" in res.output
