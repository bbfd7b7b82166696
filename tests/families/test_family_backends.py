"""Backends per family: SDXL's UNet exported through optimum to ONNX gives the torch images
(its pooled embeddings and time ids are graph inputs), and ``--backend auto`` times what can run
a family's network here, with a one-line reason for what cannot (transformers: no export)."""

from __future__ import annotations

import numpy as np
import pytest

from genie_plugin.diffusion import auto, load_generator
from genie_plugin.diffusion.sampler import SampleItem, sample
from tests.families import tiny

pytest.importorskip("onnxruntime")

_MODELS: dict = {}


def model(case, tmp_path_factory):
    if case not in _MODELS:
        build = {"sdxl": tiny.sdxl, "sd3": tiny.sd3, "flux": tiny.flux}[case]
        folder = tiny.saved(build(), tmp_path_factory.mktemp("backends") / case)
        _MODELS[case] = load_generator(str(folder), device="cpu")
    return _MODELS[case]


def _arr(images):
    return np.stack([np.asarray(im, dtype=np.int16) for im in images])


def test_sdxl_unet_exports_to_onnx_and_gives_the_torch_images(images, tmp_path_factory, tmp_path):
    from genie_plugin.diffusion.onnx_backend import export_unet

    gen = model("sdxl", tmp_path_factory).with_sampler(steps=6)
    rep = export_unet(gen, tmp_path / "onnx")
    assert rep["checker"] == "ok" and rep["parity"]["max_abs"] < 1e-4
    onnx = gen.with_backend("onnx", onnx_dir=tmp_path / "onnx")
    items = [SampleItem(p, r, 40 + k, images[k]) for k, (p, r) in
             enumerate([("a photo of a cat.", 0.3), ("a photo of a dog.", 0.6),
                        ("a photo of a star.", 1.0)])]  # fmt: skip
    ours, ref = sample(onnx, items), sample(gen, items)
    assert int(np.abs(_arr(ours) - _arr(ref)).max()) <= 1
    assert len({im.tobytes() for im in ref}) == 3


@pytest.mark.parametrize("case", ["sdxl", "sd3", "flux"])
def test_backend_auto_times_what_runs_each_family(case, tmp_path_factory):
    gen = model(case, tmp_path_factory)
    if case == "flux":
        gen = gen.with_sampler(scheduler="flow-euler", resolution=32)
    c = auto.choose_backend(gen, batch=2, iters=1, use_cache=False)
    assert c.ms_per_call["torch"] > 0 and c.backend == min(c.ms_per_call, key=c.ms_per_call.get)
    if gen.adapter.network == "unet":
        assert set(c.ms_per_call) == {"torch", "onnx"}
    else:  # optimum exports UNets: the transformer families run on torch, and say why
        assert set(c.ms_per_call) == {"torch"}
        assert "transformer" in c.skipped["onnx"] and "\n" not in c.skipped["onnx"]
    resolved = gen.with_backend("auto")
    assert resolved.backend in c.ms_per_call  # never "auto"
