"""DA-Fusion (Trabucco et al., ICLR 2024): a word per class learned by textual inversion on the
episode's support images, then SDEdit of the class's own images under "a photo of a <word>" at
a strength drawn per output from {0.25, 0.5, 0.75, 1.0} (the paper's randomised t0).

After ``brandontrabucco/da-fusion``: per-class textual inversion from the initializer token
"the" (its ``fine_tune.py``), prompt "a photo of a {name}", guidance as the model's. Where we
deviate, and why: the tokens of one episode are learned jointly (each step takes one image of
every class; the loss is a sum of per-class losses, so this is the per-class fit batched), for
far fewer steps (``fit_steps``; their 1000 at 512 px would cost more than the whole embedded
board), and the outputs number (N−1)·K per class, like every strategy here, instead of their
M = 10 per real image, so the comparison is at the same count.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from genie_plugin.core.prompts import DEFAULT_PROMPT, class_prompt
from genie_plugin.core.schedule import validate_ratio
from genie_plugin.errors import ConfigError
from genie_plugin.seeding import stable_seed
from genie_plugin.strategies.base import (
    DiffusionStrategy,
    Episode,
    FitContext,
    GenerationSpec,
    GenerativeConfig,
    check_fit_settings,
)


@dataclass(frozen=True, kw_only=True)
class TokenFitConfig(GenerativeConfig):
    """Textual inversion settings shared by the peers that learn a word per class."""

    prompt: str = DEFAULT_PROMPT
    fit_steps: int = 100  # embedded model: 100 joint steps learn a recognisable shape
    fit_lr: float = 5e-3
    init_token: str = "the"  # DA-Fusion's initializer token

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fit_settings(self.fit_steps, self.fit_lr)

    def fit_settings(self) -> dict:
        return {"prompt": self.prompt, "steps": self.fit_steps, "lr": float(self.fit_lr),
                "init_token": self.init_token}  # fmt: skip


class TokenFitMixin:
    """``prepare``: one learned word per class of the episode, from the content-addressed
    store when this exact fit was made before (same support images, settings, base model and
    seed), else trained and stored. ``episode.fit["tokens"][c]`` is class c's word."""

    fits = True

    def prepare(self, episode: Episode, images, ctx: FitContext) -> dict:
        from genie_plugin.diffusion import tokens
        from genie_plugin.diffusion.fit_store import fit_key
        from genie_plugin.diffusion.key import image_digest

        # a word for every class with support images (the CLI's episode has one class only)
        classes = [c for c in range(episode.ways) if episode.items_of(c)]
        by_class = [[images[it.item_id] for it in episode.items_of(c)] for c in classes]
        # not the strategy's name: every peer that learns words with these settings shares the fit
        seed = stable_seed(episode.seed, episode.dataset, episode.index, "textual_inversion")
        key = fit_key(kind="textual_inversion", settings=self.config.fit_settings(),
                      support=[[image_digest(im) for im in ims] for ims in by_class],
                      model=ctx.model.fingerprint, seed=seed)  # fmt: skip
        cfg = self.config

        def fit(model):
            from genie_plugin.diffusion.inversion import textual_inversion

            vectors, cost = textual_inversion(
                model, by_class, prompt=cfg.prompt, init_text=cfg.init_token,
                steps=cfg.fit_steps, lr=float(cfg.fit_lr),
                generator=torch.Generator().manual_seed(seed),
            )  # fmt: skip
            return {f"class{c}": v for c, v in zip(classes, vectors, strict=True)}, cost, {}

        tensors, _ = ctx.get_or_fit(key, "textual_inversion", fit)
        vectors = [tensors[f"class{c}"] for c in classes]
        names = dict(zip(classes, tokens.learn(vectors), strict=True))
        return {"tokens": tuple(names.get(c) for c in range(episode.ways)), "fit_key": key}

    def token_prompt(self, episode: Episode, label: int) -> str:
        if not episode.fit or "tokens" not in episode.fit:
            raise ConfigError(
                f"{self.name} plans with the words it learned on the episode: plan it with "
                "plan_episode (which runs its fit first)"
            )
        word = episode.fit["tokens"][label]
        if word is None:
            raise ConfigError(
                f"{self.name}: class {episode.class_names[label]!r} has no support image to "
                "learn its word from"
            )
        return class_prompt(self.config.prompt, word)


@dataclass(frozen=True, kw_only=True)
class DaFusionConfig(TokenFitConfig):
    ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)  # the paper's randomised t0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.ratios:
            raise ConfigError("ratios must not be empty")
        for r in self.ratios:
            validate_ratio(r)


class DaFusionStrategy(TokenFitMixin, DiffusionStrategy):
    """(N−1)·K outputs per class from its own support images, each at a drawn strength,
    under the class's learned word."""

    name = "da_fusion"
    sources = "same"
    config_cls = DaFusionConfig

    def plan(self, episode: Episode, rng: torch.Generator) -> list[GenerationSpec]:
        cfg = self.config
        specs = []
        for c in episode.target_classes():
            own = episode.items_of(c)
            prompt = self.token_prompt(episode, c)
            for j in range(episode.budget_per_class * cfg.count):
                r = float(cfg.ratios[int(torch.randint(len(cfg.ratios), (1,), generator=rng))])
                src, copy = own[j % len(own)], j // len(own)
                spec = self.spec(episode, c, src, copy, ratio=r)
                specs.append(replace(spec, prompt=prompt))
        return specs
