"""The peers' fits on a real SD 1.5 and SDXL, where their weights are in the HF cache
(``pytest -m slow tests/peers/test_peers_real.py``; on a GPU: a fit there is minutes on a CPU).

Each fits a few steps on two structured images per class and generates from the fit: the image
is not flat, a learned word and an episode LoRA change the output against the base model's at
the same seed, and the fit's cost is counted."""

from __future__ import annotations

import numpy as np
import pytest
import torch

CASES = {
    "sd15": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "sdxl": "stabilityai/stable-diffusion-xl-base-1.0",
}


def _cached(repo: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo, "model_index.json"), str)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("peer", ["datadream", "da_fusion"])
def test_a_peer_fits_on_real_weights_and_its_fit_changes_the_images(case, peer, tmp_path):
    from collections import Counter

    from PIL import Image

    from genie_plugin.diffusion import load_generator
    from genie_plugin.diffusion.fit_store import FitStore
    from genie_plugin.diffusion.sampler import SampleItem
    from genie_plugin.registry import create_strategy
    from genie_plugin.strategies.base import Episode, FitContext, SupportItem

    repo = CASES[case]
    if not _cached(repo):
        pytest.skip(f"{repo} not in the HF cache")
    gen = load_generator(repo)
    n = gen.resolution
    ims = {}
    for c, colour in enumerate(((220, 30, 30), (30, 30, 220))):
        for k in range(2):
            im = Image.new("RGB", (n, n), (240, 240, 240))
            im.paste(colour, (n // 4 + 20 * k, n // 4, 3 * n // 4, 3 * n // 4))
            ims[f"c{c}k{k}"] = im
    ep = Episode(dataset="real", index=0, class_names=("red square", "blue square"),
                 support=tuple(SupportItem(i, int(i[1])) for i in ims), shots=2)  # fmt: skip
    s = create_strategy(peer, fit_steps=10)
    tally = Counter()
    specs = s.plan_episode(ep, torch.Generator().manual_seed(0), ims, None,
                           FitContext(gen, FitStore(tmp_path), tally))  # fmt: skip
    assert tally["fit:made"] == 1 and tally["fit:flops"] > 0 and tally["fit:unet_rows"] > 0
    from genie_plugin.strategies.base import RenderContext

    out = s.render(specs[:1], RenderContext(gen, ims))[0].image
    base = gen.generate([SampleItem(f"a photo of a {ep.class_names[specs[0].label]}.",
                                    specs[0].ratio, specs[0].seed,
                                    ims.get(specs[0].source_id))])[0]  # fmt: skip
    a, b = np.asarray(out, dtype=np.float64), np.asarray(base, dtype=np.float64)
    assert a.std() > 5.0  # not a flat (NaN) decode
    assert np.abs(a - b).mean() > 1.0  # the fit is what generated it
