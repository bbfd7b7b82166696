"""Run a scenario: every strategy scored on the *same* materialised episode list.

One row per (dataset, backbone, ways, shots, strategy + config, episodes, seed): mean accuracy,
95% CI, wall time, images generated / cache hits, git commit, versions, strategy distribution,
episode-list hash, status (failed rows keep the error).
"""

from __future__ import annotations

import json
import platform
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from genie_plugin.bench.env import environment, git_commit
from genie_plugin.core.stats import mean_ci95
from genie_plugin.errors import ConfigError, check_known_keys
from genie_plugin.seeding import stable_seed

DEFAULT_STRATEGIES = ("none", "weak", "text2image", "img2img", "img2img_high", "genie", "genie_ada")


@dataclass(frozen=True, kw_only=True)
class Scenario:
    name: str = "embedded-5w1s"
    dataset: str = "shapes"
    split: str = "novel"
    ways: int = 5
    shots: int = 1
    queries: int = 16
    episodes: int = 50
    seed: int = 0
    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    model: str = "embedded"
    backbone: str = "embedded"
    steps: int = 20
    guidance: float = 7.5
    real_views: int = 5
    gen_views: int = 1
    view_size: int = 32

    def to_dict(self) -> dict:
        d = asdict(self)
        d["strategies"] = list(self.strategies)
        return dict(sorted(d.items()))

    @classmethod
    def from_dict(cls, d: dict) -> Scenario:
        check_known_keys(cls, d, "scenario")
        kw = dict(d)
        if "strategies" in kw:
            kw["strategies"] = tuple(kw["strategies"])
        return cls(**kw)

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        p = Path(path)
        try:
            return cls.from_dict(json.loads(p.read_text()))
        except FileNotFoundError:
            raise ConfigError(f"{p}: scenario file not found") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{p}: not valid JSON ({exc})") from None


@dataclass
class EpisodeData:
    class_names: tuple[str, ...]
    support: list[tuple[str, object, int]] = field(default_factory=list)  # (id, image, label)
    query: list[tuple[object, int]] = field(default_factory=list)


def load_split(scn: Scenario):
    """(metadataset, image getter, class names) for the scenario's dataset split."""
    if scn.dataset != "shapes":
        raise ConfigError(f"dataset {scn.dataset!r} is not wired into the runner yet; use 'shapes'")
    from genie_plugin.embedded.dataset import ShapesDataset
    from genie_plugin.l2l.shapes import shapes_metadataset

    md = shapes_metadataset(scn.split)
    ds: ShapesDataset = md.dataset
    return md, ds, ds.class_names


def run_scenario(
    scn: Scenario, *, cache_dir: Path, progress=None, device=None, max_batch: int = 64
) -> list[dict]:
    from genie_plugin.cache import AugmentationCache, CachedGenerator
    from genie_plugin.diffusion import SamplerConfig, load_generator
    from genie_plugin.fewshot.backbones import load_backbone
    from genie_plugin.fewshot.protocol import episode_features, logistic_regression_accuracy
    from genie_plugin.l2l.episodes import episodes_hash, materialise_episodes
    from genie_plugin.registry import REGISTRY
    from genie_plugin.strategies.base import Episode, RenderContext, SupportItem

    md, ds, names = load_split(scn)
    episodes = materialise_episodes(
        md,
        ways=scn.ways,
        shots=scn.shots,
        queries=scn.queries,
        episodes=scn.episodes,
        seed=scn.seed,
    )
    ep_hash = episodes_hash(episodes)
    embed = load_backbone(scn.backbone, device=device)
    gen = None
    rows = []
    for sname in scn.strategies:
        t0 = time.time()
        row = {
            "scenario": scn.name,
            "dataset": scn.dataset,
            "split": scn.split,
            "backbone": scn.backbone,
            "ways": scn.ways,
            "shots": scn.shots,
            "queries": scn.queries,
            "episodes": scn.episodes,
            "seed": scn.seed,
            "strategy": sname,
            "episodes_hash": ep_hash,
            "git_commit": git_commit(),
            "versions": environment()["versions"],
            "device": str(device or ("cuda" if torch.cuda.is_available() else "cpu")),
            "platform": platform.machine(),
        }
        try:
            entry = REGISTRY.get(sname)
            strategy = entry.create()
            row["strategy_config"] = strategy.config.to_dict()
            row["strategy_distribution"] = f"{entry.distribution} {entry.version}".strip()
            cached = None
            if strategy.generative:
                if gen is None:
                    gen = load_generator(
                        scn.model,
                        device=device,
                        sampler=SamplerConfig(steps=scn.steps, guidance_scale=scn.guidance),
                    )
                cached = CachedGenerator(gen, AugmentationCache(cache_dir))
                row["model"] = gen.describe()
            accs = []
            for ep in episodes:
                support, query, images = [], [], {}
                for label, (s_idx, q_idx) in enumerate(zip(ep.support, ep.query, strict=True)):
                    for i in s_idx:
                        sid = ds.image_id(i)
                        im = ds[i][0]
                        images[sid] = im
                        support.append((sid, im, label))
                    query += [(ds[i][0], label) for i in q_idx]
                episode = Episode(
                    dataset=f"{scn.dataset}/{scn.split}",
                    index=ep.index,
                    class_names=tuple(names[lab] for lab in ep.labels),
                    support=tuple(SupportItem(sid, lab) for sid, _, lab in support),
                    shots=scn.shots,
                    seed=scn.seed,
                )
                pgen = torch.Generator().manual_seed(stable_seed(scn.seed, sname, "plan", ep.index))
                specs = strategy.plan(episode, pgen)
                generated = []
                if specs:
                    ctx = RenderContext(cached, images, embed, max_batch, None)
                    generated = [(g.image, g.label) for g in strategy.render(specs, ctx)]
                vgen = torch.Generator().manual_seed(stable_seed(scn.seed, "views", ep.index))
                xtr, ytr, xq, yq = episode_features(
                    embed,
                    [(im, lab) for _, im, lab in support],
                    generated,
                    query,
                    real_views=scn.real_views,
                    gen_views=scn.gen_views,
                    size=scn.view_size,
                    gen=vgen,
                    augment_real=getattr(strategy, "augment_real", True),
                )
                accs.append(logistic_regression_accuracy(xtr, ytr, xq, yq))
                if progress is not None:
                    progress(sname, ep.index + 1, len(episodes), cached)
            mean, ci = mean_ci95(accs)
            row.update(
                status="ok",
                mean=round(100 * mean, 2),
                ci95=round(100 * ci, 2),
                images_generated=cached.generated if cached else 0,
                cache_hits=cached.hits if cached else 0,
            )
        except Exception as exc:  # a failed scenario is a row, not a crash
            row.update(
                status="failed",
                error=f"{type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(limit=3),
            )
        row["wall_s"] = round(time.time() - t0, 1)
        rows.append(dict(sorted(row.items())))
    return rows
