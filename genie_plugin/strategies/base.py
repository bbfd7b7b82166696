"""Strategy contract: a cheap random *plan* and a deterministic *render*.

``plan(episode, rng)`` decides every output (source -> target, r, seed, prompt) as frozen
:class:`GenerationSpec` records; ``render(specs, ctx)`` turns specs into images, deterministic
given the specs. Specs are written to a JSONL manifest, so every generated image can be audited
or regenerated (the reference code kept no record of which source made which image).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from genie_plugin.core.prompts import class_prompt
from genie_plugin.errors import ConfigError, check_int, check_known_keys
from genie_plugin.seeding import stable_seed


@dataclass(frozen=True)
class SupportItem:
    """A real support image of an episode: stable id and class index within the episode."""

    item_id: str
    label: int


@dataclass(frozen=True, kw_only=True)
class Episode:
    """The part of an episode a strategy may see: class names and the support set.

    ``targets`` restricts which classes receive generated images (None: all), e.g. the CLI's
    single ``--target``. ``seed`` is the run seed that per-item seeds are hashed from.
    """

    dataset: str
    index: int
    class_names: tuple[str, ...]
    support: tuple[SupportItem, ...]
    shots: int
    seed: int = 0
    targets: tuple[int, ...] | None = None
    # N×N prototype cosine similarity on the support set (core.affinity), for a strategy that
    # picks sources by it (``needs_affinity``); None until :meth:`Strategy.plan_episode` adds it
    affinity: tuple[tuple[float, ...], ...] | None = None
    # what the strategy's prepare step fitted on this episode (learned token names, ...); None
    # until :meth:`Strategy.plan_episode` adds it
    fit: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.class_names:
            raise ConfigError("episode has no classes")
        for name in self.class_names:
            if not str(name).strip():
                raise ConfigError("class name / target must not be empty")
        for it in self.support:
            if not 0 <= it.label < len(self.class_names):
                raise ConfigError(f"support item {it.item_id} has label {it.label} out of range")

    @property
    def ways(self) -> int:
        return len(self.class_names)

    @property
    def budget_per_class(self) -> int:
        """(N-1)·K generated images per class (reference.md), for every generative strategy."""
        return (self.ways - 1) * self.shots

    def target_classes(self) -> tuple[int, ...]:
        return tuple(range(self.ways)) if self.targets is None else self.targets

    def items_of(self, label: int) -> list[SupportItem]:
        return [it for it in self.support if it.label == label]

    def items_not_of(self, label: int) -> list[SupportItem]:
        return [it for it in self.support if it.label != label]

    def item_seed(self, target: int, source_id: str | None, copy: int = 0) -> int:
        return stable_seed(
            self.seed, self.dataset, self.index, self.class_names[target], source_id, copy
        )


@dataclass(frozen=True, kw_only=True)
class GenerationSpec:
    """One planned output. ``ratios`` is set (and ``ratio`` None) for GeNIe-Ada's candidates."""

    strategy: str
    dataset: str
    episode: int
    label: int
    target_class: str
    prompt: str
    seed: int
    ratio: float | None = None
    ratios: tuple[float, ...] = ()
    source_id: str | None = None
    source_class: str | None = None
    copy: int = 0
    prototype_ids: tuple[str, ...] = ()
    # a third-party strategy's own fields (JSON values), recorded in manifests. Recorded, not
    # keyed: whatever changes pixels must reach the generation key through the prompt (a
    # learned word) or the model view (an adapter), as the shipped peers do
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            json.dumps(dict(self.extra))
        except (TypeError, ValueError):
            raise ConfigError(
                f"GenerationSpec extra must be JSON values, got {self.extra!r}"
            ) from None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ratios"] = list(self.ratios)
        d["prototype_ids"] = list(self.prototype_ids)
        d["extra"] = dict(self.extra)
        if not d["extra"]:  # records written before extra existed read the same
            del d["extra"]
        return dict(sorted(d.items()))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GenerationSpec:
        """A spec back from its record; a subclass's own fields (a plugin's spec) are taken by
        the subclass, anything else names the key it does not know."""
        check_known_keys(cls, d, cls.__name__, list_known=False)
        kw = dict(d)
        kw["ratios"] = tuple(kw.get("ratios", ()))
        kw["prototype_ids"] = tuple(kw.get("prototype_ids", ()))
        kw["extra"] = dict(kw.get("extra", {}))
        return cls(**kw)


@dataclass(frozen=True, eq=False)
class GeneratedImage:
    """A generated image, its hard label (episode class index) and its manifest record."""

    image: Image.Image
    label: int
    record: dict
    candidates: tuple[Image.Image, ...] = ()  # GeNIe-Ada: the output at every grid ratio


Embedder = Callable[[Sequence[Image.Image]], np.ndarray]


@dataclass(eq=False)
class RenderContext:
    """Runtime inputs to ``render``: never part of a config or a spec."""

    model: Any  # DiffusionGenerator (or the cache in front of it)
    images: Mapping[str, Image.Image] = field(default_factory=dict)
    embed: Embedder | None = None
    max_batch: int = 16
    progress: Callable[[int], None] | None = None


@dataclass(eq=False)
class FitContext:
    """What a strategy's prepare step may use: the model (the loaded one: fitting trains
    through it), the content-addressed store of fits, and the row's tally, where it counts
    ``fit:made`` / ``fit:reused`` and the fit's cost (``fit:steps``, ``fit:ms``,
    ``fit:flops``: each fit's own cost, reused or not, as UNet rows count cache hits)."""

    model: Any
    store: Any  # diffusion.fit_store.FitStore
    tally: Any = None  # collections.Counter

    @classmethod
    def of(cls, strategy, model, store=None, tally=None) -> FitContext | None:
        """The context a strategy that fits needs (None for one that fits nothing); without a
        store every call fits afresh (the CLI's and learn2learn's one-off episodes)."""
        return cls(model, store, tally) if getattr(strategy, "fits", False) else None

    def get_or_fit(self, key: str, kind: str, fit) -> tuple[dict, dict]:
        """(tensors, record) of the fit ``key``: from the store when it was made before, else
        ``fit(model)`` -> (tensors, FitCost, more record fields) on the loaded model, stored;
        counted in the tally either way."""
        got = self.store.get(key) if self.store is not None else None
        if got is not None:
            tensors, record = got
        else:
            from genie_plugin.diffusion.costs import unet_row_flops
            from genie_plugin.diffusion.lazy import loaded_model

            model = loaded_model(self.model)
            tensors, cost, more = fit(model)
            record = {"kind": kind, "steps": cost.steps, "seconds": round(cost.seconds, 3),
                      "flops": cost.flops, "key": key, "unet_row_flops": unet_row_flops(model),
                      **more}  # fmt: skip
            if self.store is not None:
                self.store.put(key, tensors, record)
        self.count(record, reused=got is not None)
        return tensors, record

    def count(self, record: dict, *, reused: bool) -> None:
        if self.tally is None:
            return
        self.tally["fit:reused" if reused else "fit:made"] += 1
        self.tally["fit:steps"] += int(record.get("steps", 0))
        self.tally["fit:ms"] += int(round(1000 * float(record.get("seconds", 0.0))))
        self.tally["fit:flops"] += int(record.get("flops", 0))
        row = record.get("unet_row_flops")
        if not row and record.get("flops") and self.model is not None:
            # a fit stored before its records carried the unit: measured on the model now
            from genie_plugin.diffusion.costs import unet_row_flops
            from genie_plugin.diffusion.lazy import loaded_model

            row = unet_row_flops(loaded_model(self.model))
        if row:  # the fit in the generation's own unit
            self.tally["fit:unet_rows"] += round(record["flops"] / row)


def check_fit_settings(steps, lr) -> None:
    """A per-episode fit's optimizer steps (an integer >= 1) and learning rate (in (0, 1))."""
    check_int(steps, "fit_steps", minimum=1)
    if not (isinstance(lr, int | float) and not isinstance(lr, bool) and 0 < float(lr) < 1):
        raise ConfigError(f"fit_lr must be a number in (0, 1), got {lr!r}")


@dataclass(frozen=True, kw_only=True)
class StrategyConfig:
    """Base for frozen strategy configs: sorted-key dict round trip, unknown keys raise."""

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(d.items())}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]):
        check_known_keys(cls, d, cls.__name__)
        kw = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()}
        return cls(**kw)

    def replace(self, **changes: Any):
        return type(self).from_dict({**self.to_dict(), **changes})


@dataclass(frozen=True, kw_only=True)
class GenerativeConfig(StrategyConfig):
    """What every generative strategy's config has: ``count``, its images per class as a
    multiple of the reference budget (N−1)·K. Copy 0 of every output is the ×1 plan's (the
    same seed, so the same cached image); copies 1… get their own seeds."""

    count: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ConfigError(
                f"count must be an integer >= 1 (images per class ×(N−1)·K), got {self.count!r}"
            )

    def to_dict(self) -> dict:
        d = super().to_dict()
        if d.get("count") == 1:
            del d["count"]  # configs recorded before count existed read the same
        return d


class Strategy:
    """Base class. Subclasses set ``name``, ``config_cls`` and implement ``plan``/``render``."""

    name: ClassVar[str]
    config_cls: ClassVar[type[StrategyConfig]]
    generative: ClassVar[bool] = True
    augment_real: ClassVar[bool] = True  # weak views of real support images (reference protocol)
    view: ClassVar[str] = "weak"  # how real support views are made: "weak" or "strong"
    mix: ClassVar[str | None] = None  # "mixup"/"cutmix": add mixed views with soft labels
    needs_embedder: ClassVar[bool] = False  # render() scores images with the few-shot backbone
    needs_affinity: bool = False  # plan() reads episode.affinity (support features' prototypes)
    fits: ClassVar[bool] = False  # prepare() fits something per episode before plan()
    # whose support images a generated image starts from: "other" classes' (GeNIe), the target
    # class's own ("same": Img2Img) or none ("none": Text2Image and every non-generative one)
    sources: ClassVar[str] = "other"

    def __init__(self, config: StrategyConfig | None = None, **overrides: Any) -> None:
        cfg = config if config is not None else self.config_cls()
        if not isinstance(cfg, self.config_cls):
            raise ConfigError(f"{self.name} expects a {self.config_cls.__name__}")
        self.config = cfg.replace(**overrides) if overrides else cfg

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    def prepare(self, episode: Episode, images, ctx: FitContext) -> Mapping[str, Any] | None:
        """Fit what this strategy needs on the episode's support ``images`` ({id: image})
        before planning (a peer's textual inversion or LoRA); the result becomes
        ``episode.fit``. Store fits in ``ctx.store`` and count them with ``ctx.count``."""
        return None

    def plan_episode(
        self,
        episode: Episode,
        rng: torch.Generator,
        images=None,
        embed: Embedder | None = None,
        fit: FitContext | None = None,
    ) -> list[GenerationSpec]:
        """:meth:`plan`, with the episode's class affinity added first where it is needed
        (from ``embed`` over the support ``images``, {id: image}) and the strategy's fit
        (:meth:`prepare`, through ``fit``)."""
        if self.fits and episode.fit is None:
            if fit is None or images is None:
                raise ConfigError(
                    f"{self.name} fits on each episode's support images first: run it through "
                    "genie bench run / study or get_tasksets (they give it a model and a store)"
                )
            episode = dataclasses.replace(episode, fit=self.prepare(episode, images, fit))
        if self.needs_affinity and episode.affinity is None:
            if embed is None or images is None:
                raise ConfigError(
                    f"{self.name} with {self.config.to_dict()} picks sources by the backbone's "
                    "view of the support set: give it a backbone (--backbone)"
                )
            from genie_plugin.core.affinity import class_affinity

            feats = embed([images[it.item_id] for it in episode.support])
            aff = class_affinity(feats, [it.label for it in episode.support], episode.ways)
            episode = dataclasses.replace(episode, affinity=aff)
        return self.plan(episode, rng)

    def plan(self, episode: Episode, rng: torch.Generator) -> list[GenerationSpec]:
        raise NotImplementedError

    def render(self, specs: Sequence[GenerationSpec], ctx: RenderContext) -> list[GeneratedImage]:
        raise NotImplementedError

    def planned_image_steps(self, model, specs: Sequence[GenerationSpec]) -> int:
        """UNet image-steps ``render`` will run for ``specs`` (progress-bar totals)."""
        from genie_plugin.diffusion.schedulers import schedule_plan

        if not specs:
            return 0
        return schedule_plan(model).image_steps([r for s in specs for r in s.ratios or (s.ratio,)])

    def spec(
        self, episode: Episode, label: int, source: SupportItem | None = None, copy: int = 0, **more
    ) -> GenerationSpec:
        """One planned output of class ``label``, from support image ``source`` (None: noise):
        the config's prompt for the class, the stable per-item seed, the source's class."""
        target = episode.class_names[label]
        return GenerationSpec(
            strategy=self.name,
            dataset=episode.dataset,
            episode=episode.index,
            label=label,
            target_class=target,
            prompt=class_prompt(self.config.prompt, target),
            seed=episode.item_seed(label, source.item_id if source else None, copy),
            source_id=source.item_id if source else None,
            source_class=episode.class_names[source.label] if source else None,
            copy=copy,
            **more,
        )

    def record(self, spec: GenerationSpec, ctx: RenderContext, **extra: Any) -> dict:
        """Manifest record: the spec, strategy + config, model fingerprint and sampler, and the
        noise level the image actually started from (``start_level``)."""
        rec = spec.to_dict()
        rec.update(
            strategy=self.name,
            strategy_config=self.config.to_dict(),
            model=ctx.model.describe(),
            **extra,
        )
        if rec.get("ratio") is not None:
            from genie_plugin.diffusion.sampler import start_level

            rec["start_level"] = start_level(ctx.model, rec["ratio"])
        return dict(sorted(rec.items()))


class DiffusionStrategy(Strategy):
    """A strategy whose specs each map to one sampler item at ``spec.ratio``."""

    def render(self, specs: Sequence[GenerationSpec], ctx: RenderContext) -> list[GeneratedImage]:
        from genie_plugin.diffusion.sampler import SampleItem

        items = [
            SampleItem(
                prompt=s.prompt,
                ratio=float(s.ratio),
                seed=s.seed,
                source=_source(ctx, s.source_id) if s.ratio < 1.0 else None,
            )
            for s in specs
        ]
        images = ctx.model.generate(items, max_batch=ctx.max_batch, progress=ctx.progress)
        return [
            GeneratedImage(image=im, label=s.label, record=self.record(s, ctx))
            for s, im in zip(specs, images, strict=True)
        ]


def _source(ctx: RenderContext, source_id: str | None) -> Image.Image:
    if source_id is None or source_id not in ctx.images:
        raise ConfigError(f"render context has no image for source {source_id!r}")
    return ctx.images[source_id]
