"""Error branches the rest of the suite did not reach (from the coverage review): each gives
one line naming what is wrong."""

import numpy as np
import pytest
from PIL import Image

from genie_plugin.errors import ConfigError


def test_scenario_files_that_are_not_scenarios(tmp_path):
    from genie_plugin.bench.scenario import Scenario

    bad = tmp_path / "s.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match=r"s\.json: not valid JSON \("):
        Scenario.load(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="a scenario is a JSON object of keys, got list"):
        Scenario.load(bad)
    with pytest.raises(
        ConfigError, match=r"scenario file not found \(shipped scenarios by name: .*mini-5w1s"
    ):
        Scenario.load(tmp_path / "nope.json")
    assert Scenario.load("mini-5w1s").dataset == "mini-imagenet"  # a shipped one by name


@pytest.mark.parametrize(
    "arr, mode, want",
    [
        (np.full((4, 4), 1000, np.int32), "I", round(1000 / 65535 * 255)),  # 16-bit range
        (np.full((4, 4), 200, np.int32), "I", 200),  # 8-bit range in an I image
        (np.full((4, 4), 0.5, np.float32), "F", 128),  # float in [0, 1]
        (np.full((4, 4), 100.0, np.float32), "F", 100),  # float in [0, 255]
    ],
)
def test_integer_and_float_images_scale_to_8_bit(tmp_path, arr, mode, want):
    from genie_plugin.io import load_image

    p = tmp_path / "x.tif"
    Image.fromarray(arr, mode=mode).save(p)
    im = load_image(p)
    assert im.mode == "RGB" and np.asarray(im)[0, 0].tolist() == [want] * 3


def test_an_unreadable_image_says_permission_denied(tmp_path, monkeypatch):
    """As root (CI) chmod 0 still reads, so the open fails the way it does for a user."""
    from genie_plugin import io
    from genie_plugin.errors import InputImageError

    def denied(*a, **kw):
        raise PermissionError(13, "Permission denied")

    (tmp_path / "x.png").write_bytes(b"\x89PNG")
    monkeypatch.setattr(io.Image, "open", denied)
    with pytest.raises(InputImageError, match=r"x\.png: permission denied$"):
        io.load_image(tmp_path / "x.png")


def test_genie_ada_config_checks():
    from genie_plugin.strategies.genie_ada import GenieAdaConfig

    with pytest.raises(ConfigError, match="^genie_ada needs at least two ratios$"):
        GenieAdaConfig(ratios=(0.5,))
    with pytest.raises(ConfigError, match="strictly increasing, got"):
        GenieAdaConfig(ratios=(0.6, 0.5))
    with pytest.raises(ConfigError, match="^fallback_prototype_samples must be >= 1$"):
        GenieAdaConfig(fallback_prototype_samples=0)


def test_episodes_that_cannot_be_augmented():
    from genie_plugin.strategies.base import Episode, SupportItem

    def ep(names, labels):
        support = tuple(SupportItem(f"s{i}", lab) for i, lab in enumerate(labels))
        return Episode(dataset="d", index=0, class_names=names, support=support, shots=1)

    assert ep(("a", "b"), (0, 1)).ways == 2
    with pytest.raises(ConfigError, match="episode has no classes"):
        ep((), ())
    with pytest.raises(ConfigError, match="class name / target must not be empty"):
        ep(("a", " "), (0, 1))
    with pytest.raises(ConfigError, match="support item s1 has label 2 out of range"):
        ep(("a", "b"), (0, 2))


def test_schedule_inputs_that_run_nothing():
    from genie_plugin.core.schedule import num_denoising_steps, shift_timesteps, thinned_indices

    with pytest.raises(ConfigError, match="steps must be >= 1, got 0"):
        num_denoising_steps(0, 0.5)
    with pytest.raises(ConfigError, match="11 steps exceed the model's 10 timesteps"):
        shift_timesteps(list(range(10, -1, -1)), 0.5, num_train_timesteps=10)
    with pytest.raises(ConfigError, match="an item needs at least one timestep, got 0"):
        thinned_indices(0, 3)


def test_learn2learn_tasksets_that_cannot_be_built():
    from genie_plugin.l2l import get_tasksets

    with pytest.raises(ConfigError, match="pass data_augmentation= or image_transform=, not both"):
        get_tasksets("shapes", strategy="none", data_augmentation="normalize", image_transform=id)
    with pytest.raises(ConfigError, match="test_samples=1: a task needs at least one support"):
        get_tasksets("shapes", strategy="none", test_ways=4, test_samples=1)
    with pytest.raises(ConfigError, match="support='middle': choose one of"):
        get_tasksets("shapes", strategy="none", test_ways=4, test_samples=3, support="middle")


def test_backbone_settings_and_weights_that_cannot_be_used(tmp_path):
    import torch

    from genie_plugin.fewshot.backbones import Embedder, read_state_dict

    with pytest.raises(ConfigError, match="backbone interpolation 'lanczos'"):
        Embedder(torch.nn.Identity(), interpolation="lanczos")
    p = tmp_path / "ckpt.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "epoch": object()}, p)
    with pytest.raises(ConfigError, match=r"ckpt\.pt: holds non-tensor objects.*state dict"):
        read_state_dict(p)


def test_a_shard_index_outside_the_shard_count(tmp_path):
    from genie_plugin.bench.runner import generate_scenario
    from genie_plugin.bench.scenario import Scenario

    scn = Scenario.load("mini-5w1s")
    with pytest.raises(ConfigError, match=r"process index 2 outside 0\.\.1"):
        generate_scenario(scn, cache_dir=tmp_path, process_index=2, num_processes=2)
    assert not list(tmp_path.iterdir())


def test_out_folders_that_cannot_be_written(tmp_path, monkeypatch):
    import os

    from cli._common import check_out_dir
    from genie_plugin.errors import GenieError

    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(GenieError, match=r"--out .*file: exists and is not a folder"):
        check_out_dir(f)
    monkeypatch.setattr(os, "access", lambda *a: False)  # as a non-root user on a read-only dir
    with pytest.raises(GenieError, match=r"--out .*: is read-only \(no write permission\)"):
        check_out_dir(tmp_path)
    with pytest.raises(GenieError, match=r"--cache .*new: cannot be made in .*no write permission"):
        check_out_dir(tmp_path / "new", option="--cache")


def test_onnx_on_cuda_without_onnxruntime_gpu_says_what_to_install(tmp_path):
    """This machine's onnxruntime is the CPU build: asking for CUDA stops with the fix."""
    pytest.importorskip("onnxruntime")
    from genie_plugin.diffusion.onnx_backend import OnnxDenoiser, providers_for

    assert providers_for("cpu") == ("CPUExecutionProvider",)
    with pytest.raises(ConfigError, match=r"needs onnxruntime-gpu \(pip install '\.\[gpu\]'\)"):
        providers_for("cuda")
    with pytest.raises(ConfigError, match="ONNX CUDA graphs need --device cuda"):
        OnnxDenoiser(tmp_path / "missing.onnx", "cpu", cuda_graphs=True)
