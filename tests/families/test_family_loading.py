"""Which family a folder is, what is refused, and the model protocol every view states."""

from __future__ import annotations

import json
import shutil

import pytest

from genie_plugin.diffusion import load_generator
from genie_plugin.diffusion.tiny import tiny_model_dir
from genie_plugin.errors import ModelFormatError


def _with_index(tmp_path, **changes):
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir(), d)
    index = json.loads((d / "model_index.json").read_text())
    (d / "model_index.json").write_text(json.dumps({**index, **changes}))
    return d


def test_a_pipeline_of_another_family_is_refused_in_one_line_naming_it(tmp_path):
    d = _with_index(tmp_path, _class_name="KandinskyV22Pipeline")
    with pytest.raises(ModelFormatError) as exc:
        load_generator(str(d), device="cpu")
    msg = str(exc.value)
    assert "KandinskyV22Pipeline" in msg and "\n" not in msg and "FluxPipeline" in msg


def test_a_crafted_index_cannot_make_the_loader_build_another_class(tmp_path):
    d = _with_index(tmp_path, unet=["diffusers", "StableDiffusionPipeline"])
    with pytest.raises(ModelFormatError, match="not a diffusers class|not a diffusers"):
        load_generator(str(d), device="cpu")
    d2 = _with_index(tmp_path / "x", text_encoder=["os", "system"])
    with pytest.raises(ModelFormatError, match="only diffusers and transformers"):
        load_generator(str(d2), device="cpu")


def test_every_model_view_states_the_protocol(tiny_gen, tmp_path):
    from genie_plugin.diffusion.cache import AugmentationCache, CachedGenerator
    from genie_plugin.diffusion.protocol import ModelView

    cached = CachedGenerator(tiny_gen, AugmentationCache(tmp_path / "c"))
    for view in (tiny_gen, cached, cached.with_sampler(steps=3)):
        assert isinstance(view, ModelView)
        assert view.family == "sd" and view.guidance_embedded is False
