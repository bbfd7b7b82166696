"""DataDream (Kim et al., 2024): a LoRA fitted on the few real images, then text-to-image from
the adapted model under the class prompts.

After ``ExplainableML/DataDream`` (LoRA on the UNet's attention, class-name prompts, then
generation from the prompt alone). Where we deviate, and why: one LoRA per episode on all its
classes (their dataset-level variant; their per-class one would be N fits per episode) on the
UNet only (they also adapt the text encoder), for ``fit_steps`` steps (their 200 epochs at 512
px are a GPU-hour per dataset); the outputs number (N−1)·K per class, as every strategy here.
The adapter is in every generation key (:class:`~genie_plugin.diffusion.episode_lora.AdaptedModel`),
and it runs on the torch backend only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from genie_plugin.core.prompts import class_prompt
from genie_plugin.errors import ConfigError, check_int
from genie_plugin.seeding import stable_seed
from genie_plugin.strategies.base import (
    Episode,
    FitContext,
    GeneratedImage,
    RenderContext,
    check_fit_settings,
)
from genie_plugin.strategies.text2image import Text2ImageConfig, Text2ImageStrategy


@dataclass(frozen=True, kw_only=True)
class DataDreamConfig(Text2ImageConfig):
    fit_steps: int = 100
    fit_lr: float = 1e-3
    rank: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fit_settings(self.fit_steps, self.fit_lr)
        check_int(self.rank, "rank", minimum=1)


class DataDreamStrategy(Text2ImageStrategy):
    """Text2Image's plan, rendered by the episode's adapted model."""

    name = "datadream"
    config_cls = DataDreamConfig
    fits = True

    def __init__(self, config=None, **overrides) -> None:
        super().__init__(config, **overrides)
        self._fits: dict[tuple, dict] = {}

    def prepare(self, episode: Episode, images, ctx: FitContext) -> dict:
        from genie_plugin.diffusion.episode_lora import fit_lora
        from genie_plugin.diffusion.fit_store import fit_key
        from genie_plugin.diffusion.key import image_digest

        cfg = self.config
        pairs = [(images[it.item_id], class_prompt(cfg.prompt, episode.class_names[it.label]))
                 for it in episode.support]  # fmt: skip
        seed = stable_seed(episode.seed, episode.dataset, episode.index, "lora")
        settings = {"prompt": cfg.prompt, "steps": cfg.fit_steps, "lr": float(cfg.fit_lr),
                    "rank": cfg.rank}  # fmt: skip
        key = fit_key(kind="lora", settings=settings,
                      support=[[image_digest(im), p] for im, p in pairs],
                      model=ctx.model.fingerprint, seed=seed)  # fmt: skip

        def fit(model):
            state, config, cost = fit_lora(
                model, pairs, rank=cfg.rank, steps=cfg.fit_steps,
                lr=float(cfg.fit_lr), generator=torch.Generator().manual_seed(seed), seed=seed,
            )  # fmt: skip
            return state, cost, {"config": config}

        state, record = ctx.get_or_fit(key, "lora", fit)
        fit = {"lora_state": state, "lora_config": record["config"], "lora_key": key}
        self._fits[(episode.dataset, episode.index)] = fit
        return {"lora_key": key}

    def render(self, specs: Sequence, ctx: RenderContext) -> list[GeneratedImage]:
        from genie_plugin.diffusion.episode_lora import AdaptedModel

        out = []
        by_episode: dict[tuple, list] = {}
        for s in specs:
            by_episode.setdefault((s.dataset, s.episode), []).append(s)
        for ep, group in by_episode.items():
            fit = self._fits.get(ep)
            if fit is None:
                raise ConfigError(f"datadream: episode {ep[1]} was not prepared (no LoRA fit)")
            view = ctx.model
            adapt = lambda base, f=fit: AdaptedModel(base, f["lora_state"], f["lora_config"],  # noqa: E731
                                                       f["lora_key"])  # fmt: skip
            model = view.with_model(adapt) if hasattr(view, "with_model") else adapt(view)
            out += super().render(group, replace(ctx, model=model))
        return out
