"""Run a scenario: every strategy scored on the *same* materialised episode list.

One row per (dataset, backbone, ways, shots, strategy + config, episodes, seed): mean accuracy,
95% CI, wall time, images generated / cache hits, git commit, versions, strategy distribution,
episode-list hash, status (failed rows keep the error).
"""

from __future__ import annotations

import errno
import platform
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genie_plugin.bench.env import environment, git_commit
from genie_plugin.bench.scenario import Scenario
from genie_plugin.core.stats import mean_ci95
from genie_plugin.errors import ConfigError
from genie_plugin.seeding import stable_seed


@dataclass
class EpisodeData:
    class_names: tuple[str, ...]
    support: list[tuple[str, object, int]] = field(default_factory=list)  # (id, image, label)
    query: list[tuple[object, int]] = field(default_factory=list)


def load_split(scn: Scenario):
    from genie_plugin.data.datasets import load_split as _load

    return _load(scn.dataset, scn.split, root=scn.root)


def episode_inputs(scn: Scenario, data, ep):
    """(Episode, support [(id, image, label)], query [(image, label)], {id: image}) of one episode."""
    from genie_plugin.strategies.base import Episode, SupportItem

    support, query, images = [], [], {}
    for label, (s_idx, q_idx) in enumerate(zip(ep.support, ep.query, strict=True)):
        for i in s_idx:
            sid = data.image_id(i)
            im = data.image(i)
            images[sid] = im
            support.append((sid, im, label))
        query += [(data.image(i), label) for i in q_idx]
    episode = Episode(
        dataset=f"{scn.dataset}/{scn.split}",
        index=ep.index,
        class_names=tuple(data.class_names[lab] for lab in ep.labels),
        support=tuple(SupportItem(sid, lab) for sid, _, lab in support),
        shots=scn.shots,
        seed=scn.seed,
    )
    return episode, support, query, images


def unit_inputs(scn: Scenario, data, episodes, unit) -> dict:
    """{episode: :func:`episode_inputs`} of a work unit: its images read once, whatever scores
    them (the dataset's images are decoded anew on every read)."""
    return {e: episode_inputs(scn, data, episodes[e]) for e in unit}


def render_unit(
    strategy,
    scn: Scenario,
    data,
    episodes,
    indices,
    cached,
    embed,
    max_batch: int,
    chosen: Counter | None = None,
    inputs: dict | None = None,
):
    """Generated images of several episodes rendered as one batch: {episode: [(image, label)]}.
    ``inputs``: the episodes' :func:`episode_inputs`, where the caller has them.

    ``chosen`` counts the ratio GeNIe-Ada picked for each output (its records' ``r_star``).

    Each episode's plan is seeded from (run seed, strategy, episode), so what is generated does
    not depend on how episodes are grouped; only the batching does, which is fixed by the
    blocks (:func:`episode_unit`), the same in every kind of run.
    """
    from genie_plugin.strategies.base import RenderContext

    specs, images = [], {}
    fit = fit_context(strategy, cached, chosen)
    for e in indices:
        episode, _, _, ims = (inputs or {}).get(e) or episode_inputs(scn, data, episodes[e])
        pgen = torch.Generator().manual_seed(stable_seed(scn.seed, strategy.name, "plan", e))
        specs += strategy.plan_episode(episode, pgen, ims, embed, fit)
        images.update(ims)
    out: dict[int, list] = {e: [] for e in indices}
    if specs:
        ctx = RenderContext(cached, images, embed, max_batch, None)
        for g in strategy.render(specs, ctx):
            out[int(g.record["episode"])].append((g.image, g.label))
            ada = g.record.get("ada")
            if chosen is not None and ada:
                chosen[f"{ada['r_star']:g}"] += 1
            flt = g.record.get("filter")
            if chosen is not None and flt:  # a filter's statistics, once per scored group
                chosen["filter:kept_milli"] += round(1000 * flt["score"])
                if flt["rank"] == 0:
                    chosen["filter:scored"] += flt["scored"]
                    chosen["filter:kept"] += flt["kept"]
                    chosen["filter:all_milli"] += round(1000 * flt["group_mean"] * flt["scored"])
    return out


def fit_context(strategy, cached, tally=None):
    """A strategy's fitting context (None when it fits nothing): the model, the store of fits
    beside the run's image cache (``CACHE/fits``), the row's tally."""
    if not getattr(strategy, "fits", False):  # every other strategy, every work unit
        return None
    from genie_plugin.diffusion.fit_store import FitStore
    from genie_plugin.strategies.base import FitContext

    cache = getattr(cached, "cache", None)
    store = FitStore(cache.root / "fits") if cache is not None else None
    return FitContext.of(strategy, cached, store, tally)


def strategy_features(strategy, scn: Scenario, embed, index: int, support, generated, query):
    """Training and query features of episode ``index`` as ``strategy`` is scored on them: the
    real support views (weak, strong or none, per the strategy), the generated images' views
    and any mixed views, from the episode's own view seed (the same for every strategy)."""
    from genie_plugin.fewshot.protocol import episode_features

    view_rng = torch.Generator().manual_seed(stable_seed(scn.seed, "views", index))
    return episode_features(
        embed,
        [(im, lab) for _, im, lab in support],
        generated,
        query,
        real_views=scn.real_views,
        gen_views=scn.gen_views,
        size=scn.view_size,
        rng=view_rng,
        augment_real=getattr(strategy, "augment_real", True),
        view=getattr(strategy, "view", "weak"),
        mix=getattr(strategy, "mix", None),
        mix_alpha=getattr(strategy.config, "alpha", 0.8),
        n_classes=scn.ways,
    )


#: File-system errors that no other strategy would escape: the run stops with one line.
_STOP_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)

UNIT_EPISODES = 4  # episodes rendered per batch (fixed: results must not depend on sharding)
MAX_BATCH = 64  # items per sampler call in a benchmark run


def row_header(
    scn: Scenario, sname: str, ep_hash: str, device, *, threads: int | None = None
) -> dict:
    """The fields of a row that say what was run, before any result. ``threads``: the CPU
    threads it was scored with, where not this process's (``--jobs`` workers run one)."""
    from genie_plugin.bench.env import compute_record
    from genie_plugin.fewshot.protocol import CLASSIFIER

    return {
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
        "classifier": CLASSIFIER,
        # the whole definition, so a report can re-plan the episodes (genie bench report)
        "scenario_config": scn.to_dict(),
        "git_commit": git_commit(),
        "versions": environment()["versions"],
        "device": str(device or ("cuda" if torch.cuda.is_available() else "cpu")),
        "platform": platform.machine(),
        # what decides a CPU run's last bits: a row that differs from the committed board's
        # says why (genie bench compare --explain)
        "compute": compute_record(threads),
    }


def describe_strategy(scn: Scenario, label: str) -> tuple[object, dict]:
    """(strategy, its row fields: config and distribution; for an instance with values, its
    registered name and the values); raises for an unknown label."""
    from genie_plugin.registry import REGISTRY

    ref = scn.ref(label)
    entry = REGISTRY.get(ref.name)
    strategy = ref.create()
    fields = {
        "strategy_config": strategy.config.to_dict(),
        "strategy_distribution": f"{entry.distribution} {entry.version}".strip(),
    }
    if label != ref.name:
        fields.update(strategy_name=ref.name, strategy_params=ref.options)
    return strategy, fields


def row_strategy(scn: Scenario, label: str):
    """The strategy a row labelled ``label`` ran: the scenario's instance, else (a results file
    that merges runs of other strategy lists) the label read as ``name[:key=value,...]``."""
    from genie_plugin.registry import parse_strategy

    if label in scn.labels:
        return scn.ref(label).create()
    return parse_strategy(label, option="results row strategy").create()


def query_hits(strategy, scn: Scenario, embed, index: int, support, generated, query):
    """Which queries of one episode are classified right (a bool per query, episode order): the
    reference logistic regression on the strategy's training features (MixUp/CutMix: the
    soft-label linear head). Their mean is the episode's accuracy."""
    from genie_plugin.fewshot.protocol import logistic_regression_predict, soft_label_predict

    xtr, ytr, xq, yq = strategy_features(strategy, scn, embed, index, support, generated, query)
    if ytr.ndim == 2:  # soft labels (MixUp/CutMix)
        return soft_label_predict(xtr, ytr, xq) == yq
    return logistic_regression_predict(xtr, ytr, xq) == yq


def score_unit(
    strategy,
    scn: Scenario,
    data,
    episodes,
    unit,
    cached,
    embed,
    max_batch: int,
    chosen,
    on_episode=None,
    inputs: dict | None = None,
    hits: dict | None = None,
) -> dict[int, float]:
    """Accuracies of the episodes of one work unit: its generated images rendered as one batch
    (generative strategies), then each episode scored; ``on_episode(index)`` after each. The
    one loop a run and a ``--jobs`` worker go through. ``inputs``: :func:`unit_inputs` of the
    unit, which a caller scoring several strategies on it makes once; ``hits``: filled with each
    episode's :func:`query_hits` (a caller that splits the accuracy by query)."""
    inputs = inputs or unit_inputs(scn, data, episodes, unit)
    rendered = {}
    if strategy.generative:
        rendered = render_unit(
            strategy, scn, data, episodes, unit, cached, embed, max_batch, chosen, inputs
        )
    accs = {}
    for e in unit:
        _, support, query, _ = inputs[e]
        right = query_hits(strategy, scn, embed, e, support, rendered.get(e, []), query)
        if hits is not None:
            hits[e] = right
        accs[e] = float(right.mean())
        if on_episode is not None:
            on_episode(e)
    return accs


def row_result(accs, counts: dict | None, chosen: Counter | None = None) -> dict:
    """The result fields of a finished row: accuracies (fractions, episode order), generation
    counts (``generated``, ``hits``, ``repaired``, ``unet_rows``; None: not generative) and
    GeNIe-Ada's r* counts."""
    mean, ci = mean_ci95(accs)
    counts = counts or {}
    out = {
        "status": "ok",
        "mean": round(100 * mean, 2),
        "ci95": round(100 * ci, 2),
        # per episode, same order for every strategy: paired comparisons in leaderboards
        "episode_accuracies": [round(100 * a, 4) for a in accs],
        "images_generated": int(counts.get("generated", 0)),
        "cache_hits": int(counts.get("hits", 0)),
        # bad cache entries (truncated, corrupt, mismatching) found and regenerated
        "cache_repaired": int(counts.get("repaired", 0)),
        # generation cost from scratch (cache hits included): comparable across rows
        "unet_rows": int(counts.get("unet_rows", 0)),
    }
    chosen = chosen or {}
    r_star = {k: v for k, v in chosen.items() if ":" not in k}
    if r_star:  # GeNIe-Ada: how often each r was picked (r* distribution)
        out["ada_r_star"] = dict(sorted(r_star.items(), key=lambda kv: float(kv[0])))
    fits = {k.split(":", 1)[1]: int(v) for k, v in chosen.items() if k.startswith("fit:")}
    if fits:  # a peer's per-episode fits: how many made / reused, and what they cost
        out["fits_made"] = fits.get("made", 0)
        out["fits_reused"] = fits.get("reused", 0)
        out["fit_steps"] = fits.get("steps", 0)
        out["fit_seconds"] = round(fits.get("ms", 0) / 1000, 1)
        out["fit_flops"] = fits.get("flops", 0)
        out["fit_unet_rows"] = fits.get("unet_rows", 0)  # the fits' FLOPs in UNet rows
    flt = {k.split(":", 1)[1]: int(v) for k, v in chosen.items() if k.startswith("filter:")}
    if flt.get("scored"):  # a filter: how many scored and kept, mean P(target) of each
        out["filter_scored"] = flt["scored"]
        out["filter_kept"] = flt.get("kept", 0)
        out["filter_mean_score_all"] = round(flt.get("all_milli", 0) / 1000 / flt["scored"], 4)
        out["filter_mean_score_kept"] = round(
            flt.get("kept_milli", 0) / 1000 / max(1, flt.get("kept", 0)), 4
        )
    return out


def failed_fields(exc: BaseException) -> dict:
    """A failed strategy's row fields; a full or read-only disk is raised instead (no other
    strategy would escape it)."""
    if isinstance(exc, OSError) and exc.errno in _STOP_ERRNOS:
        raise exc
    return {
        "status": "failed",
        "error": f"{type(exc).__name__}: {exc}",
        "traceback": traceback.format_exc(limit=3),
    }


def cache_counts(cached) -> dict | None:
    if cached is None:
        return None
    return {
        "generated": cached.generated,
        "hits": cached.hits,
        "repaired": cached.repaired,
        "unet_rows": cached.unet_rows,
    }


def run_scenario(
    scn: Scenario,
    *,
    cache_dir: Path,
    progress=None,
    device=None,
    max_batch: int = MAX_BATCH,
    on_row: Callable[[dict], None] | None = None,
    generator=None,
) -> list[dict]:
    """Score every strategy of ``scn``; ``on_row`` gets each row as soon as it is scored (the
    CLI merges it into the results file then, so a crash later keeps the finished rows).
    ``generator``: the scenario's model already loaded (else loaded at the first generative
    strategy)."""
    from genie_plugin.data.episodes import episodes_hash
    from genie_plugin.diffusion.cache import AugmentationCache, CachedGenerator
    from genie_plugin.fewshot.backbones import MemoEmbedder, load_backbone

    data, episodes = scenario_episodes(scn)
    ep_hash = episodes_hash(episodes)
    embed = MemoEmbedder(load_backbone(scn.backbone, device=device), store=cache_dir / "features")
    gen = generator
    rows = []
    for sname in scn.labels:
        t0 = time.time()
        row = row_header(scn, sname, ep_hash, device)
        try:
            strategy, fields = describe_strategy(scn, sname)
            row.update(fields)
            cached = None
            if strategy.generative:
                if gen is None:
                    gen = scenario_generator(scn, device, lazy=True)
                cached = CachedGenerator(gen, AugmentationCache(cache_dir))
                row["model"] = gen.describe()
            reruns_before = gen.stats.get("vae_fp32_reruns", 0) if gen is not None else 0
            accs: dict[int, float] = {}
            chosen: Counter = Counter()

            def advance(e, sname=sname, cached=cached):
                if progress is not None:
                    progress(sname, e + 1, len(episodes), cached)

            for first in range(0, len(episodes), UNIT_EPISODES):
                unit = episode_unit(first, len(episodes))
                accs |= score_unit(
                    strategy, scn, data, episodes, unit, cached, embed, max_batch, chosen, advance
                )
            row.update(
                row_result([accs[e] for e in range(len(episodes))], cache_counts(cached), chosen)
            )
            if gen is not None and strategy.generative:
                row["vae_fp32_reruns"] = gen.stats.get("vae_fp32_reruns", 0) - reruns_before
        except Exception as exc:  # a failed scenario is a row, not a crash
            row.update(failed_fields(exc))
        row["wall_s"] = round(time.time() - t0, 1)
        rows.append(dict(sorted(row.items())))
        if on_row is not None:
            on_row(rows[-1])
    return rows


def episode_unit(e: int, n_episodes: int) -> tuple[int, ...]:
    """The work unit holding episode ``e``: ``UNIT_EPISODES`` consecutive episodes."""
    first = e - e % UNIT_EPISODES
    return tuple(range(first, min(first + UNIT_EPISODES, n_episodes)))


def scenario_episodes(scn: Scenario):
    """The scenario's split and its materialised episode list (every run starts here)."""
    from genie_plugin.data.episodes import materialise_episodes

    scn.require_runnable()
    data = load_split(scn)
    episodes = materialise_episodes(
        data.metadataset,
        ways=scn.ways,
        shots=scn.shots,
        queries=scn.queries,
        episodes=scn.episodes,
        seed=scn.seed,
    )
    return data, episodes


def scenario_generator(scn: Scenario, device=None, *, lazy: bool = False):
    """The scenario's diffusion model with its sampler settings and UNet backend; ``lazy``: its
    weights loaded only when an image is not in the cache (``load_configured``)."""
    from genie_plugin.diffusion.loading import load_configured

    settings = {
        "steps": scn.steps,
        "resolution": scn.resolution,
        "guidance_scale": scn.guidance,
        "timestep_shift": scn.timestep_shift,
        "guidance_t_min": scn.guidance_t_min,
        "scheduler": scn.scheduler,
        "timestep_spacing": scn.timestep_spacing,
        "ratio_meaning": scn.ratio_meaning,
    }
    return load_configured(
        scn.model,
        device=device,
        config=scn.model_config,
        settings=settings,
        backend=scn.backend,
        channels_last=scn.channels_last,
        lazy=lazy,
        lora=scn.lora,
    )


def claims_folder(scn: Scenario, cache_dir: Path, what: str) -> Path:
    """Where the ranks of one job over ``scn`` claim its blocks: under the cache, named by
    everything the job's outputs depend on (the whole scenario), so ranks of one job meet
    there and another job never takes a block as done."""
    import hashlib
    import json

    doc = json.dumps({"what": what, "scenario": scn.to_dict()}, sort_keys=True)
    return Path(cache_dir) / "claims" / hashlib.sha256(doc.encode()).hexdigest()[:24]


def generate_scenario(
    scn: Scenario,
    *,
    cache_dir: Path,
    process_index: int = 0,
    num_processes: int = 1,
    device=None,
    max_batch: int | str = 64,
    progress=None,
    generator=None,
    lease_s: float | None = None,
) -> dict:
    """Fill the augmentation cache for every generative strategy × episode, without scoring.

    Work is claimed by episode block (:mod:`genie_plugin.bench.claims`): each process takes
    the next free block, from its own starting point (``process_index`` of
    ``num_processes``), and renders every generative strategy of it in scenario order — the
    batches of a one-process run, and GeNIe-Ada finding GeNIe's images — until every block is
    done; no process group, so a lost rank delays its blocks by one lease and hangs nobody.
    Every process writes into the same content-addressed cache (first writer wins). Returns
    this process's counts. ``generator``: the scenario's model already loaded (``--backend
    auto`` timed it).
    """
    from genie_plugin.bench.claims import DEFAULT_LEASE_S, BlockClaims, rank_start
    from genie_plugin.diffusion.cache import AugmentationCache, CachedGenerator

    if not 0 <= process_index < num_processes:
        raise ConfigError(f"process index {process_index} outside 0..{num_processes - 1}")
    data, episodes = scenario_episodes(scn)
    strategies = {s: scn.ref(s).create() for s in scn.labels}
    generative = [s for s, st in strategies.items() if st.generative]
    blocks = [episode_unit(e, len(episodes)) for e in range(0, len(episodes), UNIT_EPISODES)]
    stats = {"blocks": 0, "of_blocks": len(blocks), "images": 0, "generated": 0, "hits": 0}
    stats["taken_over"] = 0
    if not generative or not blocks:
        return stats
    claims = BlockClaims(
        claims_folder(scn, cache_dir, "generate"),
        rank=process_index,
        lease_s=DEFAULT_LEASE_S if lease_s is None else lease_s,
    )
    if all(claims.is_done(b) for b in range(len(blocks))):
        return stats  # another process of this job finished it: no model to load
    from genie_plugin.diffusion.memory import resolve_max_batch

    gen = generator if generator is not None else scenario_generator(scn, device)
    max_batch = stats["max_batch"] = resolve_max_batch(gen, max_batch)
    cached = CachedGenerator(gen, AugmentationCache(cache_dir))
    embed = None
    if any(strategies[s].needs_embedder or strategies[s].needs_affinity for s in generative):
        from genie_plugin.fewshot.backbones import load_backbone

        embed = load_backbone(scn.backbone, device=device)
    start = rank_start(process_index, num_processes, len(blocks))
    with claims:
        for b in claims.blocks(len(blocks), start=start):
            inputs = unit_inputs(scn, data, episodes, blocks[b])
            for sname in generative:
                outs = render_unit(
                    strategies[sname], scn, data, episodes, blocks[b], cached, embed, max_batch,
                    inputs=inputs,
                )  # fmt: skip
                stats["images"] += sum(len(v) for v in outs.values())
            claims.finish(b)
            stats["blocks"] += 1
            if progress is not None:
                progress(sum(claims.is_done(i) for i in range(len(blocks))), len(blocks), cached)
    stats.update(
        generated=cached.generated,
        hits=cached.hits,
        repaired=cached.repaired,
        unet_rows=cached.unet_rows,
        taken_over=claims.taken_over,
    )
    return stats
