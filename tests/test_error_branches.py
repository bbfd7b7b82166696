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
