"""Filtered synthetic data: over-generate with any strategy, score every image with a judge
that is not the evaluation backbone, keep the best per class.

``{"name": "filtered", "inner": "genie", "inner_params": {"ratio": 0.6}, "scorer": "oracle",
"keep": 0.5}`` runs ``genie`` at ``1/keep`` times its count and keeps, per (episode, class), the
``keep`` share with the highest P(target) (ties: plan order). The over-generation is paid for
(every image is counted in the row's UNet rows); the filter's statistics go in the row.

Scorers: ``oracle`` — the dataset's oracle (``genie_plugin.oracles``: the shapes oracle, or the
ImageNet classifier for the ImageNet-derived sets); ``timm:<model>`` — any timm ImageNet-1k
classifier by name (classes matched by WordNet lemma, as the report's oracle);
``clip:<arch>:<pretrained>`` — an open_clip model where the user has it and its weights,
zero-shot over the episode's class names. The evaluation
backbone is refused: filtering with the model that is then scored would leak the evaluator.
Note for reading boards: on the shapes sets the oracle that filters is also the report's
judge of label consistency, so a filtered row's consistency there is not an independent
measurement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from genie_plugin.errors import ConfigError
from genie_plugin.strategies.base import (
    Episode,
    GeneratedImage,
    GenerationSpec,
    RenderContext,
    Strategy,
    StrategyConfig,
)

STRATEGIES = "genie_plugin.strategies"


def _inner(name: str, params: dict) -> Strategy:
    from genie_plugin import plugins

    if name in ("filtered", "he_filter"):
        raise ConfigError(f"inner = {name!r}: a filter of a filter is not a strategy here")
    if not plugins.has(STRATEGIES, name):
        raise ConfigError(f"inner = {name!r}: unknown; choose one of "
                          f"{', '.join(plugins.names(STRATEGIES))}")  # fmt: skip
    cls = plugins.load(STRATEGIES, name)
    strat = cls(cls.config_cls.from_dict(dict(params)) if params else None)
    if not strat.generative or not hasattr(strat.config, "count"):
        raise ConfigError(f"inner = {name!r}: not a generative strategy (nothing to filter)")
    return strat


def load_scorer(spec: str, dataset: str, device=None):
    """A judge with ``classes`` and ``probs(images)``, by name (see the module docstring)."""
    from genie_plugin import plugins

    if spec in ("backbone", "embedded-backbone"):
        raise ConfigError("scorer = backbone: the evaluation backbone would judge its own "
                          f"training data (a leak); use {SCORERS}")  # fmt: skip
    if spec == "oracle":
        base = dataset.split("/")[0]
        if not plugins.has(plugins.ORACLES, base):
            raise ConfigError(f"scorer = oracle: no oracle for dataset {base!r} (installed: "
                              f"{', '.join(plugins.names(plugins.ORACLES))}); use timm:<model>")  # fmt: skip
        return plugins.load(plugins.ORACLES, base)(device=device)
    if spec.startswith("timm:") and len(spec) > 5:  # the oracles group's ImageNet judge
        return plugins.load(plugins.ORACLES, "timm")(device=device, model=spec[5:])
    if spec.startswith("clip:") and spec.count(":") == 2:
        _, arch, pretrained = spec.split(":")
        return ClipScorer(arch, pretrained, device=device)
    raise ConfigError(f"scorer = {spec!r}: choose {SCORERS}")


SCORERS = "oracle, timm:<model> or clip:<arch>:<pretrained>"


class ClipScorer:
    """An open_clip model as a zero-shot judge over the episode's own class names ("a photo of
    a {name}."), as He et al. filter; weights come from the user's open_clip / HF cache."""

    def __init__(self, arch: str, pretrained: str, device=None) -> None:
        try:
            import open_clip
        except ImportError:
            raise ConfigError(
                f"scorer = clip:{arch}:{pretrained} needs open_clip (pip install "
                "open_clip_torch) and its weights in the local cache"
            ) from None
        try:
            with torch.random.fork_rng(devices=[]):
                model, _, self.preprocess = open_clip.create_model_and_transforms(
                    arch, pretrained=pretrained, device=device or "cpu"
                )
        except Exception as exc:
            raise ConfigError(
                f"scorer = clip:{arch}:{pretrained}: weights not available "
                f"({type(exc).__name__}); fetch them on a machine with network"
            ) from None
        self.model, self.tokenizer = model.eval(), open_clip.get_tokenizer(arch)
        self.device = next(model.parameters()).device

    def zero_shot(self, images, names) -> np.ndarray:
        """P(name) per image over ``names`` (softmax of 100 × cosine, CLIP's own scale)."""
        with torch.no_grad():
            text = self.tokenizer([f"a photo of a {n.replace('_', ' ')}." for n in names])
            t = self.model.encode_text(text.to(self.device)).float()
            x = torch.stack([self.preprocess(im.convert("RGB")) for im in images]).to(self.device)
            v = self.model.encode_image(x).float()
            t, v = t / t.norm(dim=-1, keepdim=True), v / v.norm(dim=-1, keepdim=True)
            return torch.softmax(100.0 * v @ t.T, dim=-1).cpu().numpy()


@dataclass(frozen=True, kw_only=True)
class FilteredConfig(StrategyConfig):
    inner: str = "text2image"
    inner_params: dict = field(default_factory=dict)
    scorer: str = "oracle"
    keep: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.keep, int | float) or not 0 < float(self.keep) <= 1:
            raise ConfigError(f"keep must be in (0, 1], got {self.keep!r}")
        if not isinstance(self.inner_params, dict):
            raise ConfigError(f"inner_params must be an object, got {self.inner_params!r}")
        if not isinstance(self.scorer, str) or not (
            self.scorer == "oracle" or self.scorer.startswith(("timm:", "clip:"))
            or self.scorer in ("backbone", "embedded-backbone")
        ):  # fmt: skip
            raise ConfigError(f"scorer = {self.scorer!r}: choose {SCORERS}")
        if self.scorer in ("backbone", "embedded-backbone"):
            load_scorer(self.scorer, "")  # raises the leak's message
        _inner(self.inner, self.inner_params)  # checks the inner strategy and its values

    def to_dict(self) -> dict:
        return {"inner": self.inner, "inner_params": dict(self.inner_params),
                "keep": self.keep, "scorer": self.scorer}  # fmt: skip


class FilteredStrategy(Strategy):
    """``inner`` at 1/keep its count, the best ``keep`` share per class kept (by P(target))."""

    name = "filtered"
    config_cls = FilteredConfig

    def __init__(self, config=None, **overrides) -> None:
        super().__init__(config, **overrides)
        cfg = self.config
        base = _inner(cfg.inner, cfg.inner_params)
        self.factor = math.ceil(1.0 / float(cfg.keep) - 1e-9)
        self.inner = type(base)(base.config.replace(count=base.config.count * self.factor))
        self.kept_count = base.config.count
        self.sources = self.inner.sources
        self._scorer = None

    # what the runner asks of a strategy, as the inner one answers it
    @property
    def fits(self) -> bool:
        return self.inner.fits

    @property
    def needs_affinity(self) -> bool:
        return self.inner.needs_affinity

    @property
    def needs_embedder(self) -> bool:
        return self.inner.needs_embedder

    def prepare(self, episode, images, ctx):
        return self.inner.prepare(episode, images, ctx)

    def plan(self, episode: Episode, rng: torch.Generator) -> list[GenerationSpec]:
        return self.inner.plan(episode, rng)

    def planned_image_steps(self, model, specs) -> int:
        return self.inner.planned_image_steps(model, specs)

    def render(self, specs: Sequence[GenerationSpec], ctx: RenderContext) -> list[GeneratedImage]:
        made = self.inner.render(specs, ctx)
        if not made:
            return []
        if self._scorer is None:
            self._scorer = load_scorer(self.config.scorer, made[0].record.get("dataset", ""),
                                       device=getattr(ctx.model, "device", None))  # fmt: skip
        judge = self._scorer
        if hasattr(judge, "zero_shot"):  # CLIP: over the episode's own class names
            names = sorted({g.record.get("target_class") for g in made})
            col = {c: i for i, c in enumerate(names)}
            probs = judge.zero_shot([g.image for g in made], names)
        else:
            col = {c: i for i, c in enumerate(judge.classes)}
            probs = judge.probs([g.image for g in made])
        groups: dict[tuple, list[int]] = {}
        for i, g in enumerate(made):
            groups.setdefault((g.record.get("episode"), g.label), []).append(i)
        out = []
        for idx in groups.values():
            target = made[idx[0]].record.get("target_class")
            if target not in col:
                raise ConfigError(f"scorer {self.config.scorer!r} has no class {target!r}")
            p = probs[idx, col[target]]
            # the best scores first; equal scores keep plan order (a stable sort)
            order = sorted(range(len(idx)), key=lambda k: (-round(float(p[k]), 6), k))
            n_keep = max(1, round(len(idx) / self.factor))
            for rank, k in enumerate(order[:n_keep]):
                g = made[idx[k]]
                rec = {**g.record, "strategy": self.name,
                       "filter": {"scorer": self.config.scorer, "score": round(float(p[k]), 6),
                                  "rank": rank, "scored": len(idx), "kept": n_keep,
                                  "group_mean": round(float(np.mean(p)), 6)}}  # fmt: skip
                out.append(GeneratedImage(g.image, g.label, rec, g.candidates))
        return out


@dataclass(frozen=True, kw_only=True)
class HeFilterConfig(FilteredConfig):
    inner: str = "text2image"
    keep: float = 0.5


class HeFilterStrategy(FilteredStrategy):
    """He et al. (ICLR 2023): text-to-image images filtered by a classifier's confidence in
    the target. Where we deviate: their CLIP zero-shot filter is the dataset's oracle here
    (``scorer``; no CLIP weights ship), keeping the top half at the same final count."""

    name = "he_filter"
    config_cls = HeFilterConfig
