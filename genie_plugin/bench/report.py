"""A self-contained HTML report of a benchmark run: the leaderboard with paired differences, gain
against generation cost, a gallery of what each strategy generated, and provenance.

``index.html`` and its images sit in one folder that opens from disk: no server, no network, no
script or font from elsewhere (the table sorts with a few lines of inline script). The page is a
Jinja2 template (``templates/report.html.j2``); plots are matplotlib PNGs. The gallery re-plans a
few episodes (chosen by seed, the same for every strategy) and reads what the run generated back
from its cache: a run's images are found by their content key, so nothing is regenerated unless
the cache lost them (then it is, and the report says how many).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from genie_plugin.bench.leaderboard import genie_unet_rows, paired_delta, unet_cost
from genie_plugin.bench.scenario import Scenario
from genie_plugin.errors import ConfigError
from genie_plugin.io import atomic_write_bytes, atomic_write_text, png_bytes
from genie_plugin.seeding import stable_seed

BASELINES = ("none", "weak")  # weak: the generative rows' real views are weak views too
THUMB = 96  # px: gallery images are shown at this size (a 512 px SD output is resized)


@dataclass
class Section:
    """One scenario of the results file, ready for the template."""

    scenario: str
    header: dict
    rows: list[dict]
    plot: str | None = None
    pairs: dict = field(default_factory=dict)
    gallery: list[dict] = field(default_factory=list)
    gallery_note: str = ""
    quality: list[dict] = field(default_factory=list)
    quality_note: str = ""
    provenance: dict = field(default_factory=dict)


def table_rows(rows: list[dict], pairs: dict) -> list[dict]:
    """The leaderboard of one scenario: accuracy, paired Δ against each baseline (the baseline's
    column of :func:`pairwise`'s matrix ``pairs``), cost."""
    idx = {n: i for i, n in enumerate(pairs["names"])}

    def delta(strategy: str, baseline: str):
        i, j = idx.get(strategy), idx.get(baseline)
        return None if i is None or j is None else pairs["cells"][i][j]

    genie_rows = genie_unet_rows(rows)
    out = []
    for r in sorted(rows, key=lambda r: (-(r.get("mean") or -1.0), r["strategy"])):
        cost = unet_cost(r, genie_rows) if r.get("status") == "ok" else None
        out.append(
            {
                "strategy": r["strategy"],
                "status": r.get("status", "?"),
                "error": r.get("error", ""),
                "mean": r.get("mean"),
                "ci95": r.get("ci95"),
                **{f"delta_{b}": delta(r["strategy"], b) for b in BASELINES},
                "images": r.get("images_generated", 0) + r.get("cache_hits", 0),
                "rows_per_episode": None if cost is None else round(cost[0], 1),
                # a peer's per-episode fit in the same unit (its FLOPs over one UNet row's)
                "fit_rows_per_episode": None
                if r.get("fit_unet_rows") is None
                else round(r["fit_unet_rows"] / max(1, r["episodes"]), 1),
                "x_genie": None if cost is None or cost[1] is None else round(cost[1], 2),
                "wall_s": r.get("wall_s"),
            }
        )
    return out


def pairwise(rows: list[dict]) -> dict:
    """Paired differences *between* strategies: {"names": [...], "cells": [[(Δ, CI) | None]]},
    row − column, in accuracy points, on the same episodes (e.g. GeNIe − Text2Image)."""
    ok = [r for r in rows if r.get("status") == "ok" and r.get("episode_accuracies")]
    ok.sort(key=lambda r: -(r.get("mean") or 0.0))
    cells = [[None if a is b else paired_delta(a, b) for b in ok] for a in ok]
    return {"names": [r["strategy"] for r in ok], "cells": cells}


def _slug(name: str, used: set[str]) -> str:
    """A file-name part for scenario ``name``: letters and digits, at most 80 of them, and a
    hash of the name where two scenarios would share one (``exp 1`` and ``exp-1``) or it was
    cut."""
    import hashlib

    slug = "".join(c if c.isascii() and c.isalnum() else "-" for c in name)
    if slug in used or len(slug) > 80 or not slug:
        slug = f"{slug[:80]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    used.add(slug)
    return slug


def gain_cost_plot(rows: list[dict], path: Path) -> Path:
    """Accuracy gain over ``none`` (paired, with its interval) against UNet rows per episode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genie_plugin.sinks import plot_text

    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=100)
    for r in rows:
        if r["delta_none"] is None:
            continue
        x = (r["rows_per_episode"] or 0.0) + (r.get("fit_rows_per_episode") or 0.0)
        d, ci = r["delta_none"]
        ax.errorbar(x, d, yerr=ci, fmt="o", capsize=3)
        label = plot_text(r["strategy"])  # text, not mathtext
        ax.annotate(label, (x, d), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.axhline(0.0, color="grey", lw=0.8)
    fitted = any(r.get("fit_rows_per_episode") for r in rows)
    ax.set_xlabel("cost: UNet rows per episode" + (" (fits included)" if fitted else ""))
    ax.set_ylabel("Δ accuracy vs none (points, paired 95% CI)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def scenario_of(rows: list[dict], given: Scenario | None = None) -> Scenario:
    """The scenario the rows were run with: ``given``, else the one the rows record, else the
    shipped one of that name with the rows' own settings."""
    if given is not None:
        return given
    r0 = rows[0]
    if r0.get("scenario_config"):
        return Scenario.from_dict(r0["scenario_config"])
    try:
        scn = Scenario.load(r0["scenario"])
    except ConfigError:
        raise ConfigError(
            f"results of scenario {r0['scenario']!r} do not record its settings and no shipped "
            "scenario has that name: pass the scenario file with --scenario"
        ) from None
    model = r0.get("model") or next((r["model"] for r in rows if r.get("model")), {}) or {}
    keep = ("dataset", "split", "ways", "shots", "queries", "episodes", "seed", "backbone")
    over = {k: r0[k] for k in keep if k in r0}
    if model:
        over.update(
            model=model.get("model", scn.model),
            steps=model.get("steps", scn.steps),
            guidance=model.get("guidance_scale", scn.guidance),
            timestep_shift=model.get("timestep_shift", scn.timestep_shift),
            guidance_t_min=model.get("guidance_t_min", scn.guidance_t_min),
        )
    return replace(scn, **over)


def _thumb(image, out: Path, rel: str) -> str:
    """Write ``image`` (at most THUMB px) to ``out/rel``; the page links ``rel``."""
    im = image.convert("RGB")
    if max(im.size) > THUMB:
        im = im.resize((THUMB, THUMB))
    atomic_write_bytes(out / rel, png_bytes(im))
    return rel


def build_gallery(
    scn: Scenario,
    rows: list[dict],
    cache_dir: Path,
    out: Path,
    *,
    episodes: int = 2,
    quality_episodes: int = 0,
    device=None,
    max_batch: int = 16,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[dict], str, dict]:
    """Per chosen episode: its support images and, per generative strategy of the rows, what it
    generated from each (read back from the run's cache). The first ``episodes`` are shown;
    ``max(episodes, quality_episodes)`` are rendered and their images returned for
    :func:`quality` as {strategy: [sample]}. Returns (gallery, note, samples)."""
    import torch

    from genie_plugin.bench.runner import (
        episode_inputs,
        fit_context,
        row_strategy,
        scenario_episodes,
        scenario_generator,
    )
    from genie_plugin.data.episodes import episodes_hash
    from genie_plugin.diffusion.cache import AugmentationCache, CachedGenerator
    from genie_plugin.fewshot.backbones import MemoEmbedder, load_backbone
    from genie_plugin.strategies.base import RenderContext

    # the rows' strategies, in their order: a results file may merge runs of the same scenario
    # with different strategy lists (bench run --jobs, or strategies run one at a time)
    ok = [r["strategy"] for r in rows if r.get("status") == "ok"]
    names = [s for s in dict.fromkeys(ok) if row_strategy(scn, s).generative]
    data, eps = scenario_episodes(scn)
    want = rows[0].get("episodes_hash")
    if want and episodes_hash(eps) != want:
        raise ConfigError(
            f"the scenario gives episode list {episodes_hash(eps)}, the results were run on "
            f"{want}: pass the scenario file the run used with --scenario"
        )
    n_eps = min(max(episodes, quality_episodes), len(eps))  # no more than the run has
    # distinct episodes drawn by seed until there are n_eps: the first ones are the same for
    # every n (a page's shown episodes do not move when more are rendered for its tables)
    chosen: list[int] = []
    k = 0
    while len(chosen) < n_eps:
        e = stable_seed(scn.seed, "report", k) % len(eps)
        if e not in chosen:
            chosen.append(e)
        k += 1
    shown = set(chosen[:episodes])
    if not names or not chosen:
        return [], "no generative strategy in the results", {}
    cached = CachedGenerator(
        scenario_generator(scn, device, lazy=True), AugmentationCache(cache_dir)
    )
    embed = MemoEmbedder(load_backbone(scn.backbone, device=device), store=cache_dir / "features")
    gallery, samples = [], {n: [] for n in names}
    for e in chosen:
        episode, support, _, images = episode_inputs(scn, data, eps[e])
        thumb = _thumb if e in shown else (lambda im, out, rel: rel)
        # one row per support image: the image, then what each strategy made from it; images
        # made from the prompt alone (Text2Image) get a row of their own
        by_source: dict[str | None, dict] = {}
        for k, (sid, im, lab) in enumerate(support):
            by_source[sid] = {
                "src": thumb(im, out, f"images/e{e}/support_{k}.png"),
                "id": sid,
                "class": episode.class_names[lab],
                "strategies": {},
            }
        by_source[None] = {"src": None, "id": None, "class": "prompt only", "strategies": {}}
        for name in names:
            if progress:
                progress(f"gallery: episode {e}, {name}")
            strategy = row_strategy(scn, name)
            pgen = torch.Generator().manual_seed(stable_seed(scn.seed, strategy.name, "plan", e))
            fit = fit_context(strategy, cached)
            specs = strategy.plan_episode(episode, pgen, images, embed, fit)
            made = strategy.render(specs, RenderContext(cached, images, embed, max_batch, None))
            for j, g in enumerate(made):
                rec = g.record
                samples[name].append(
                    {
                        "image": g.image,
                        "source": images.get(rec.get("source_id")),
                        "source_class": rec.get("source_class"),
                        "target": rec.get("target_class"),
                        "episode": e,
                        "record": rec,
                        "candidates": g.candidates,
                    }
                )
                if e not in shown:
                    continue
                item = {
                    "src": thumb(g.image, out, f"images/e{e}/{name}_{j}.png"),
                    "target": rec.get("target_class"),
                    "ratio": rec.get("ratio"),
                    "seed": rec.get("seed"),
                    "candidates": [],
                }
                ada = rec.get("ada")
                for c, cand in enumerate(g.candidates if ada else ()):
                    r = ada["ratios"][c]
                    item["candidates"].append(
                        {
                            "src": thumb(cand, out, f"images/e{e}/{name}_{j}_r{c}.png"),
                            "ratio": r,
                            "projection": round(float(ada["projections"][c]), 4),
                            "chosen": abs(r - ada["r_star"]) < 1e-9,
                        }
                    )
                row = by_source.get(rec.get("source_id"), by_source[None])
                row["strategies"].setdefault(name, []).append(item)
        rows_out = [
            {**r, "strategies": [{"name": n, "images": ims} for n, ims in r["strategies"].items()]}
            for r in by_source.values()
            if r["strategies"] or r["id"] is not None
        ]
        if e in shown:
            gallery.append({"index": e, "classes": list(episode.class_names), "rows": rows_out})
    note = (
        f"{len(shown)} episode(s) shown of {len(chosen)} rendered, chosen by seed {scn.seed}: "
        f"{cached.hits} images read from the run's cache, {cached.generated} generated again "
        "(not in the cache)"
    )
    return gallery, note, samples


def _low(im) -> np.ndarray:
    """8×8 RGB in [0, 1]: layout and colour, not the object's identity."""
    from PIL import Image

    return np.asarray(im.convert("RGB").resize((8, 8), Image.Resampling.BILINEAR), np.float64) / 255


def text2image_refs(samples: dict[str, list[dict]]) -> dict[tuple, list[np.ndarray]]:
    """{(episode, target): the 8×8 RGB of its Text2Image outputs}: what *context kept* is
    measured against."""
    t2i: dict[tuple, list[np.ndarray]] = {}
    for s in samples.get("text2image", []):
        t2i.setdefault((s["episode"], s["target"]), []).append(_low(s["image"]))
    return t2i


def context_distances(sample: dict, t2i: dict) -> tuple[float, float] | None:
    """(distance to its source, mean distance to the Text2Image outputs of its target and
    episode), 8×8 RGB RMS; None without a source or those outputs. Context is kept when the
    first is the smaller."""
    refs = t2i.get((sample["episode"], sample["target"]))
    if sample["source"] is None or not refs:
        return None
    low = _low(sample["image"])
    a = float(np.sqrt(np.mean((low - _low(sample["source"])) ** 2)))
    return a, float(np.mean([np.sqrt(np.mean((low - r) ** 2)) for r in refs]))


def quality(samples: dict[str, list[dict]], oracle=None) -> list[dict]:
    """Per generative strategy, on its rendered images: **label consistency** (the oracle's top
    class is the target), how often it still says the source class, and **context kept** (the
    output is closer to its source image than to the Text2Image outputs of the same target in
    the same episode, in 8×8 RGB; with the mean distances)."""
    t2i = text2image_refs(samples)
    out = []
    for name, ss in samples.items():
        if not ss:
            continue
        row = {"strategy": name, "n": len(ss)}
        if oracle is not None:
            # by name: ImageNet has classes that share a word (two "crane"s), either counts
            top = [oracle.classes[k] for k in oracle.probs([s["image"] for s in ss]).argmax(1)]
            row["label_consistency"] = float(
                np.mean([t == s["target"] for t, s in zip(top, ss, strict=True)])
            )
            src = [(t, s) for t, s in zip(top, ss, strict=True) if s["source_class"]]
            row["labelled_source"] = (
                float(np.mean([t == s["source_class"] for t, s in src])) if src else None
            )
        d_src, d_t2i, kept = [], [], []
        for s in ss:
            ab = None if name == "text2image" else context_distances(s, t2i)
            if ab is None:
                continue
            a, b = ab
            d_src.append(a)
            d_t2i.append(b)
            kept.append(a < b)
        row["context_kept"] = float(np.mean(kept)) if kept else None
        row["dist_source"] = round(float(np.mean(d_src)), 4) if d_src else None
        row["dist_text2image"] = round(float(np.mean(d_t2i)), 4) if d_t2i else None
        out.append(row)
    return out


def _oracle(choice: str, dataset: str, device):
    """(oracle or None, what the page says about it). ``auto``: the dataset's entry point in
    ``genie_plugin.oracles`` (the shapes oracle: its own weights, never the backbone)."""
    from genie_plugin import plugins

    if choice == "none":
        return None, "label consistency not measured (--oracle none)"
    name = dataset if choice == "auto" else choice
    if not plugins.has(plugins.ORACLES, name):
        known = ", ".join(plugins.names(plugins.ORACLES)) or "none installed"
        if choice != "auto":
            raise ConfigError(f"--oracle {choice}: no such oracle (installed: {known})")
        return None, f"label consistency not measured: no oracle for {dataset} (installed: {known})"
    judge = plugins.load(plugins.ORACLES, name)(device=device)
    info = getattr(judge, "info", None) or {}
    keys = ("arch", "heldout_acc", "sha256")  # what identifies it; not its per-class table
    what = (
        ", ".join(f"{k} {info[k]}" for k in keys if k in info) if isinstance(info, dict) else info
    )
    return judge, f"judged by the {name} oracle ({what})"


def provenance(rows: list[dict]) -> dict:
    r0 = rows[0]
    model = next((r["model"] for r in rows if r.get("model")), None)
    return {
        "commit": r0.get("git_commit"),
        "versions": r0.get("versions", {}),
        "model": model,
        "episodes_hash": r0.get("episodes_hash"),
        "device": r0.get("device"),
        "platform": r0.get("platform"),
        "wall_s": round(sum(r.get("wall_s") or 0 for r in rows), 1),
    }


def build_report(
    results: Path,
    out: Path,
    *,
    cache_dir: Path | None = None,
    scenario: Scenario | None = None,
    gallery_episodes: int = 2,
    quality_episodes: int = 5,
    oracle: str = "auto",
    device=None,
    max_batch: int = 16,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write ``out/index.html`` (and its images) for the rows of ``results``."""
    import jinja2

    from genie_plugin.bench.leaderboard import unique_rows
    from genie_plugin.bench.rows import read_results

    rows = unique_rows(read_results(results))  # one per (scenario, strategy): the last
    if not rows:
        raise ConfigError(f"{results}: no result rows")
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    used_slugs: set[str] = set()
    for name in dict.fromkeys(r["scenario"] for r in rows):
        rs = [r for r in rows if r["scenario"] == name]
        r0 = rs[0]
        pairs = pairwise(rs)
        sec = Section(
            scenario=name,
            header={k: r0.get(k) for k in ("dataset", "split", "ways", "shots", "queries",
                                           "episodes", "backbone", "seed")},
            rows=table_rows(rs, pairs),
            pairs=pairs,
            provenance=provenance(rs),
        )  # fmt: skip
        slug = _slug(name, used_slugs)
        if any(t["delta_none"] for t in sec.rows):
            sec.plot = gain_cost_plot(sec.rows, out / f"gain_cost_{slug}.png").name
        if cache_dir is not None and gallery_episodes > 0:
            scn = scenario_of(rs, scenario if scenario and scenario.name == name else None)
            sec.gallery, sec.gallery_note, samples = build_gallery(
                scn, rs, cache_dir, out, episodes=gallery_episodes, device=device,
                quality_episodes=quality_episodes, max_batch=max_batch, progress=progress,
            )  # fmt: skip
            judge, sec.quality_note = _oracle(oracle, scn.dataset, device)
            n_eps = len({s["episode"] for ss in samples.values() for s in ss})
            sec.quality = quality(samples, judge)
            sec.quality_note += f"; on the images of {n_eps} episode(s)"
        elif cache_dir is None:
            sec.gallery_note = "no gallery: pass the run's cache with --cache"
        sections.append(sec)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("genie_plugin.bench", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    html = env.get_template("report.html.j2").render(
        title=f"genie-fewshot report: {results.name}",
        results=results.name,
        sections=sections,
        baselines=BASELINES,
        generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )
    return atomic_write_text(out / "index.html", html)
