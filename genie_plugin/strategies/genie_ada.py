"""GeNIe-Ada: GeNIe with the noise ratio chosen per (source, target) pair (paper §3.2).

All grid ratios of a pair share one ε (the same seed) and are generated in one batched sampler
pass; the caller's embedding function (the few-shot backbone) scores them and
:func:`genie_plugin.core.ada.select_from_rows` picks r*. The whole curve goes into the manifest.

The paper's GeNIe-Ada costs the sum of the grid's ratios in denoising steps per output (3.5×
the steps at the reference grid, 4.4× GeNIe at r = 0.8): once GeNIe itself fills the GPU,
batching cannot hide that. A probe scores the candidates coarsely instead and regenerates only
r* at the full count with the same seed, so the output is the paper's (up to batch rounding)
whenever the probe picks the same r*: ``probe_steps`` (``genie_ada_fast``) samples candidates on a
coarse global schedule; ``probe_item_steps`` (``genie_ada_lite``) gives each candidate a fixed
number of solver steps from exactly its full-schedule start noise (so nearby r never merge).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from genie_plugin.core.ada import ADA_RATIOS, select_from_rows, unit_rows
from genie_plugin.core.prompts import DEFAULT_PROMPT
from genie_plugin.core.schedule import validate_ratio
from genie_plugin.errors import ConfigError, check_optional_int
from genie_plugin.seeding import stable_seed
from genie_plugin.strategies.base import (
    Episode,
    GeneratedImage,
    GenerationSpec,
    GenerativeConfig,
    RenderContext,
    Strategy,
    _source,
)


@dataclass(frozen=True, kw_only=True)
class GenieAdaConfig(GenerativeConfig):
    ratios: tuple[float, ...] = ADA_RATIOS
    prompt: str = DEFAULT_PROMPT
    #: Text2Image samples averaged into the target prototype when the target class has no real
    #: images (CLI use without --target-images); episodes always use the real support images.
    fallback_prototype_samples: int = 4
    #: None: the paper's GeNIe-Ada. N: select r* on candidates sampled with N steps, then
    #: generate the output at r* with the full step count (same seed, same ε).
    probe_steps: int | None = None
    #: None: candidates run every step of the (probe) schedule. K: each candidate runs at most K
    #: solver steps, thinned from its own tail of that schedule (same start noise level, same ε).
    probe_item_steps: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.ratios) < 2:
            raise ConfigError("genie_ada needs at least two ratios")
        for r in self.ratios:
            validate_ratio(r, name="ratios")
        if list(self.ratios) != sorted(set(self.ratios)):
            raise ConfigError(f"genie_ada ratios must be strictly increasing, got {self.ratios}")
        if self.fallback_prototype_samples < 1:
            raise ConfigError("fallback_prototype_samples must be >= 1")
        check_optional_int(self.probe_steps, "genie_ada probe_steps", minimum=2)
        check_optional_int(self.probe_item_steps, "genie_ada probe_item_steps", minimum=1)


class GenieAdaStrategy(Strategy):
    """GeNIe's sources and budget; r chosen per pair from the backbone's embedding curve."""

    name = "genie_ada"
    config_cls = GenieAdaConfig
    needs_embedder = True

    def _probe(self, model) -> dict | None:
        """The probe's sampler changes, or None: a probe at least as fine as the output is the
        paper's method."""
        change = {}
        steps = self.config.probe_steps
        if steps is not None and steps < model.sampler.steps:
            change["steps"] = steps
        cap = self.config.probe_item_steps
        if cap is not None and cap < change.get("steps", model.sampler.steps):
            change["max_item_steps"] = cap
        return change or None

    def _manifest_probe(self, probe: dict) -> dict:
        out = {}
        if "steps" in probe:
            out["probe_steps"] = probe["steps"]
        if "max_item_steps" in probe:
            out["probe_item_steps"] = probe["max_item_steps"]
        return out

    def planned_image_steps(self, model, specs: Sequence[GenerationSpec]) -> int:
        """UNet image-steps ``render`` will run (progress bars); r* unknown: its grid mean."""
        from genie_plugin.diffusion.schedulers import schedule_plan

        if not specs:
            return 0
        full = schedule_plan(model)
        # Text2Image prototypes for targets without real images, as ``render`` makes them
        fallback = {(s.dataset, s.episode, s.target_class, s.prompt) for s in specs}
        fallback -= {
            (s.dataset, s.episode, s.target_class, s.prompt) for s in specs if s.prototype_ids
        }
        prototypes = [1.0] * (len(fallback) * self.config.fallback_prototype_samples)
        probe = self._probe(model)
        if probe is None:
            candidates = [r for s in specs for r in s.ratios]
            return full.image_steps([*candidates, *prototypes])
        candidates = [r for s in specs for r in s.ratios] + prototypes
        finals = [r for s in specs for r in s.ratios[1:]]
        n = max(1, len(specs[0].ratios) - 1)
        probe_plan = schedule_plan(model.with_sampler(**probe))
        return probe_plan.image_steps(candidates) + round(full.image_steps(finals) / n)

    def plan(self, episode: Episode, rng: torch.Generator) -> list[GenerationSpec]:
        specs = []
        for c in episode.target_classes():
            protos = tuple(it.item_id for it in episode.items_of(c))
            for src in episode.items_not_of(c):
                specs += [
                    self.spec(episode, c, src, copy, ratios=tuple(self.config.ratios),
                              prototype_ids=protos)
                    for copy in range(self.config.count)
                ]  # fmt: skip
        return specs

    def render(self, specs: Sequence[GenerationSpec], ctx: RenderContext) -> list[GeneratedImage]:
        from genie_plugin.diffusion.sampler import SampleItem

        if not specs:
            return []
        if ctx.embed is None:
            raise ConfigError(
                "genie_ada needs an embedding function (the few-shot backbone); "
                "pass --backbone on the command line or RenderContext(embed=...)"
            )
        items: list[SampleItem] = []
        for s in specs:
            src = _source(ctx, s.source_id)
            items += [SampleItem(s.prompt, r, s.seed, src) for r in s.ratios]
        # Prototype fallback: Text2Image samples of targets that have no real images.
        fallback: dict[tuple, list[int]] = {}
        for s in specs:
            key = (s.dataset, s.episode, s.target_class, s.prompt)
            if not s.prototype_ids and key not in fallback:
                fallback[key] = []
                for k in range(self.config.fallback_prototype_samples):
                    fallback[key].append(len(items))
                    seed = stable_seed("genie_ada-prototype", *key, k)
                    items.append(SampleItem(s.prompt, 1.0, seed))
        model = ctx.model
        probe = self._probe(model)
        candidate_model = model if probe is None else model.with_sampler(**probe)
        images = candidate_model.generate(items, max_batch=ctx.max_batch, progress=ctx.progress)

        n = len(specs[0].ratios)
        sources = [_source(ctx, s.source_id) for s in specs]
        proto_ids = sorted({p for s in specs for p in s.prototype_ids})
        feats = unit_rows(ctx.embed([*images, *sources, *(ctx.images[p] for p in proto_ids)]))
        f_img, rest = feats[: len(images)], feats[len(images) :]
        f_src, f_proto = rest[: len(sources)], rest[len(sources) :]
        proto_row = {p: f_proto[i] for i, p in enumerate(proto_ids)}

        selections = []
        for j, s in enumerate(specs):
            if s.prototype_ids:
                protos = np.stack([proto_row[p] for p in s.prototype_ids])
                proto_kind = "support"
            else:
                key = (s.dataset, s.episode, s.target_class, s.prompt)
                protos = f_img[fallback[key]]
                proto_kind = "text2image"
            cand = f_img[j * n : (j + 1) * n]
            selections.append((select_from_rows(s.ratios, cand, f_src[j], protos), proto_kind))
        if probe is None:
            chosen = [images[j * n + sel.index] for j, (sel, _) in enumerate(selections)]
        else:  # the output at r* with the full step count: same seed, so the same ε
            finals = [
                SampleItem(s.prompt, sel.ratio, s.seed, sources[j])
                for j, (s, (sel, _)) in enumerate(zip(specs, selections, strict=True))
            ]
            chosen = model.generate(finals, max_batch=ctx.max_batch, progress=ctx.progress)
        out = []
        for j, (s, (sel, proto_kind)) in enumerate(zip(specs, selections, strict=True)):
            ada = {**sel.to_dict(), "prototype": proto_kind}
            if probe is not None:
                ada.update(self._manifest_probe(probe))
            out.append(
                GeneratedImage(
                    image=chosen[j],
                    label=s.label,
                    record=self.record(s, ctx, ratio=sel.ratio, ada=ada),
                    candidates=tuple(images[j * n : (j + 1) * n]),
                )
            )
        return out


class GenieAdaFastStrategy(GenieAdaStrategy):
    """GeNIe-Ada with r* chosen on 10-step candidates; the output is sampled at full steps."""

    name = "genie_ada_fast"

    def __init__(self, config: GenieAdaConfig | None = None, **overrides) -> None:
        super().__init__(
            config if config is not None else GenieAdaConfig(probe_steps=10), **overrides
        )


class GenieAdaLiteStrategy(GenieAdaStrategy):
    """GeNIe-Ada with r* chosen on candidates of 5 solver steps each (from their exact start
    noise); the output is sampled at full steps (its cost against GeNIe's:
    ``benchmarks/perf/ada_cost_model.py``)."""

    name = "genie_ada_lite"

    def __init__(self, config: GenieAdaConfig | None = None, **overrides) -> None:
        super().__init__(
            config if config is not None else GenieAdaConfig(probe_item_steps=5), **overrides
        )
