"""The real path: a real dataset runs its own scenario (never the shapes model), prompts are
words, and what cannot run stops before any work with one line naming the option."""

import json

import pytest
from typer.testing import CliRunner

from genie_cli.bench import load_scenario
from genie_cli.main import app
from genie_plugin.bench.scenario import Scenario, shipped_scenario
from genie_plugin.data.datasets import load_split
from genie_plugin.data.names import is_synset_id
from genie_plugin.errors import ConfigError
from tests.real_formats import write_cub, write_mini, write_tiered

SD15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"


@pytest.mark.parametrize("dataset", ["mini-imagenet", "tiered-imagenet", "cub"])
@pytest.mark.parametrize("shots", [1, 5])
def test_dataset_option_starts_from_its_shipped_scenario(dataset, shots):
    scn = load_scenario(None, None, dataset=dataset, shots=shots, root="/data")
    short = {"mini-imagenet": "mini", "tiered-imagenet": "tiered", "cub": "cub"}[dataset]
    assert scn.name == f"{short}-5w{shots}s" and scn.dataset == dataset
    assert scn.model == SD15 and scn.steps == 50 and scn.view_size == 224
    assert scn.guidance == 7.5 and scn.backbone.startswith("resnet18:")
    assert scn.split == "test" and scn.root == "/data" and scn.shots == shots
    assert scn.episodes >= 600


def test_overrides_rename_the_run_and_never_bring_the_shapes_model():
    scn = load_scenario(None, None, dataset="cub", ways=10)
    assert scn.name == "cub-10w1s" and scn.ways == 10 and scn.model == SD15
    scn = load_scenario(None, None)
    assert scn.name == "embedded-5w1s" and scn.model == "embedded"
    # the embedded benchmark file pointed at CUB: renamed, and its shapes settings dropped
    scn = load_scenario("embedded-5w1s", None, dataset="cub", root="/data")
    assert scn.name == "cub-5w1s" and scn.split == "test" and scn.model is None
    assert scn.missing_options()[:2] == ["--model", "--backbone"]
    scn = load_scenario("embedded-5w1s", None, dataset="cub", model="embedded", backbone="embedded")
    assert scn.model == "embedded"  # named by the user: allowed
    # a real dataset without model/backbone stops naming the options
    with pytest.raises(ConfigError, match=r"--model / --backbone.*pass --model, --backbone"):
        Scenario(dataset="cub", root="/data").require_runnable()
    # shapes alone gets the embedded defaults
    assert Scenario().model == "embedded" and Scenario().backbone == "embedded"
    assert Scenario(dataset="cub").model is None and Scenario(dataset="cub").view_size is None
    with pytest.raises(ConfigError, match="no shipped scenario"):
        shipped_scenario("omniglot")


@pytest.fixture(scope="module")
def cub_root(tmp_path_factory):
    return write_cub(tmp_path_factory.mktemp("cub"), per_class=2)


def test_cub_command_stops_on_sd15_offline_never_runs_shapes(cub_root, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    out = tmp_path / "r.jsonl"
    args = ["bench", "run", "--dataset", "cub", "--root", str(cub_root), "--episodes", "2"]
    res = CliRunner().invoke(app, [*args, "-s", "none", "-s", "genie", "--out", str(out)])
    assert res.exit_code == 2, res.output
    text = " ".join(res.output.split())
    assert "cub-5w1s" in text and f"model {SD15} (50 steps" in text and "224 px views" in text
    assert "not in the Hugging Face cache" in text and "huggingface-cli download" in text
    assert "embedded" not in text and not out.exists()
    # without a generative strategy the next culprit is the backbone file, named with its option
    res = CliRunner().invoke(app, [*args, "-s", "none", "--out", str(out)])
    assert res.exit_code == 2 and "--backbone resnet18:" in " ".join(res.output.split())
    assert "not found" in res.output and not out.exists()


def _prompts(data):
    from genie_plugin.core.prompts import class_prompt

    return [class_prompt("a photo of a {name}.", n) for n in data.class_names]


def test_prompt_audit_every_real_format_gives_words(tmp_path, cub_root):
    """No prompt of any real-format fixture holds a synset id (README's prompt audit)."""
    audit = {}
    write_mini(tmp_path / "m", per_class=2)
    write_tiered(tmp_path / "t", per_class=2)
    for name, root in (("mini-imagenet", tmp_path / "m"), ("tiered-imagenet", tmp_path / "t")):
        audit[name] = _prompts(load_split(name, "test", root=root))
    audit["cub"] = _prompts(load_split("cub", "test", root=cub_root))
    for name, prompts in audit.items():
        bad = [p for p in prompts if is_synset_id(p) or "_" in p]
        assert not bad, f"{name}: {bad[:3]}"
        assert len(prompts) == {"mini-imagenet": 20, "tiered-imagenet": 8, "cub": 30}[name]
    assert "a photo of a golden retriever." in audit["mini-imagenet"]
    assert "a photo of a boxer." not in audit["mini-imagenet"]
    assert audit["tiered-imagenet"][0] == "a photo of a face powder."  # n03314780
    assert "a photo of a Rhinoceros Auklet." in audit["cub"]  # 008.Rhinoceros_Auklet


def test_datasets_classes_command(tmp_path):
    write_mini(tmp_path, per_class=2)
    res = CliRunner().invoke(
        app, ["datasets", "classes", "mini-imagenet", "--root", str(tmp_path), "--split", "test"]
    )
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 20 and not any(is_synset_id(line.split("\t", 1)[1]) for line in lines)
    assert "n02099601\ta photo of a golden retriever." in lines


def test_shipped_scenarios_are_package_data():
    from genie_plugin.bench.scenario import SCENARIO_DIR

    names = {p.stem for p in SCENARIO_DIR.glob("*.json")}
    real = ("mini", "mini-full", "tiered", "tiered-full", "cub")
    assert names == {f"{d}-5w{k}s" for d in real for k in (1, 5)} | {"embedded-5w1s"}
    for p in SCENARIO_DIR.glob("*.json"):
        scn = Scenario.from_dict(json.loads(p.read_text()))
        assert scn.name == p.stem and not scn.missing_options()
        assert (scn.model == "embedded") == (scn.dataset == "shapes")


def test_split_definitions_rebuild_the_published_csvs_byte_for_byte():
    """The shipped miniImageNet split (bitmasks) reproduces Ravi & Larochelle's CSVs exactly
    (their sha256 was recorded from the published files), and tieredImageNet's class lists
    have the published sizes."""
    import hashlib

    from genie_plugin.data.specs import full_classes, mini_positions, split_definition

    mini = split_definition("mini_imagenet")
    for split, n_classes in (("train", 64), ("validation", 16), ("test", 20)):
        wnids = full_classes("mini-imagenet-full", split)
        assert len(wnids) == n_classes
        rows = ["filename,label"]
        for w in wnids:
            pos = mini_positions(w)
            assert len(pos) == 600 and pos == sorted(set(pos)) and pos[-1] <= 1300
            rows += [f"{w}{p:08d}.jpg,{w}" for p in pos]
        text = "\r\n".join(rows) + "\r\n"
        digests = {hashlib.sha256(t.encode()).hexdigest() for t in (text, text.replace("\r", ""))}
        assert mini["csv_sha256"][split] in digests, split
    sizes = {
        s: len(full_classes("tiered-imagenet-full", s)) for s in ("train", "validation", "test")
    }
    assert sizes == {"train": 351, "validation": 97, "test": 160}
    assert not set(full_classes("tiered-imagenet-full", "train")) & set(
        full_classes("tiered-imagenet-full", "test")
    )


def test_imagenet_folder_missing_and_short_classes_are_named(tmp_path):
    from genie_plugin.data.specs import DatasetError, full_classes
    from tests.real_formats import write_imagenet

    wnids = full_classes("mini-imagenet-full", "test")
    write_imagenet(tmp_path, dict.fromkeys(wnids[:-1], 30))
    with pytest.raises(DatasetError, match=rf"(?s)missing train/{wnids[-1]}/.*image-net.org"):
        load_split("mini-imagenet-full", "test", root=tmp_path)
    write_imagenet(tmp_path, {wnids[-1]: 30})
    with pytest.raises(DatasetError, match=r"has 30 images, the split needs \d+"):
        load_split("mini-imagenet-full", "test", root=tmp_path)


def test_every_imagenet_derived_class_has_a_word():
    """All 100 miniImageNet and 608 tieredImageNet classes, every split: a WordNet lemma."""
    from genie_plugin.data.names import wordnet_lemma
    from genie_plugin.data.specs import full_classes

    for dataset, total in (("mini-imagenet-full", 100), ("tiered-imagenet-full", 608)):
        wnids = [w for s in ("train", "validation", "test") for w in full_classes(dataset, s)]
        words = [wordnet_lemma(w) for w in wnids]
        assert len(set(wnids)) == total
        assert not [w for w in words if is_synset_id(w)], dataset
