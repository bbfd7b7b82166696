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

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from genie_plugin.bench.leaderboard import genie_unet_rows, unet_cost
from genie_plugin.bench.scenario import Scenario
from genie_plugin.errors import ConfigError
from genie_plugin.io import atomic_write_bytes, atomic_write_text, png_bytes, read_jsonl
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
    gallery: list[dict] = field(default_factory=list)
    gallery_note: str = ""
    provenance: dict = field(default_factory=dict)


def paired_deltas(rows: list[dict], baseline: str) -> dict[str, tuple[float, float]]:
    """strategy → (mean, 95% CI) of the per-episode difference to ``baseline`` on the same
    episode list, in accuracy points; strategies without a pairable row are left out."""
    from genie_plugin.core.stats import paired_diff_ci95

    base = next((r for r in rows if r["strategy"] == baseline and r.get("status") == "ok"), None)
    if base is None or not base.get("episode_accuracies"):
        return {}
    out = {}
    for r in rows:
        a = r.get("episode_accuracies")
        if r["strategy"] == baseline or r.get("status") != "ok" or not a:
            continue
        if r.get("episodes_hash") != base.get("episodes_hash") or len(a) != len(
            base["episode_accuracies"]
        ):
            continue
        d, ci = paired_diff_ci95(a, base["episode_accuracies"])
        out[r["strategy"]] = (round(d, 2), round(ci, 2))
    return out


def table_rows(rows: list[dict]) -> list[dict]:
    """The leaderboard of one scenario: accuracy, paired Δ against each baseline, cost."""
    deltas = {b: paired_deltas(rows, b) for b in BASELINES}
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
                **{f"delta_{b}": deltas[b].get(r["strategy"]) for b in BASELINES},
                "images": r.get("images_generated", 0) + r.get("cache_hits", 0),
                "rows_per_episode": None if cost is None else round(cost[0], 1),
                "x_genie": None if cost is None or cost[1] is None else round(cost[1], 2),
                "wall_s": r.get("wall_s"),
            }
        )
    return out


def gain_cost_plot(rows: list[dict], path: Path) -> Path:
    """Accuracy gain over ``none`` (paired, with its interval) against UNet rows per episode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=100)
    for r in rows:
        if r["delta_none"] is None:
            continue
        x = r["rows_per_episode"] or 0.0
        d, ci = r["delta_none"]
        ax.errorbar(x, d, yerr=ci, fmt="o", capsize=3)
        ax.annotate(r["strategy"], (x, d), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("generation cost: UNet rows per episode")
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
    device=None,
    max_batch: int = 16,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[dict], str]:
    """Per chosen episode: its support images and, per generative strategy of the rows, what it
    generated from each (read back from the run's cache). Returns (episodes, note)."""
    import torch

    from genie_plugin.bench.runner import episode_inputs, scenario_episodes, scenario_generator
    from genie_plugin.data.episodes import episodes_hash
    from genie_plugin.diffusion.cache import AugmentationCache, CachedGenerator
    from genie_plugin.fewshot.backbones import MemoEmbedder, load_backbone
    from genie_plugin.registry import REGISTRY
    from genie_plugin.strategies.base import RenderContext

    ok = {r["strategy"] for r in rows if r.get("status") == "ok"}
    names = [s for s in scn.strategies if s in ok and REGISTRY.get(s).create().generative]
    data, eps = scenario_episodes(scn)
    want = rows[0].get("episodes_hash")
    if want and episodes_hash(eps) != want:
        raise ConfigError(
            f"the scenario gives episode list {episodes_hash(eps)}, the results were run on "
            f"{want}: pass the scenario file the run used with --scenario"
        )
    chosen = sorted({stable_seed(scn.seed, "report", k) % len(eps) for k in range(episodes)})
    if not names or not chosen:
        return [], "no generative strategy in the results"
    cached = CachedGenerator(scenario_generator(scn, device), AugmentationCache(cache_dir))
    embed = MemoEmbedder(load_backbone(scn.backbone, device=device), store=cache_dir / "features")
    gallery = []
    for e in chosen:
        episode, support, _, images = episode_inputs(scn, data, eps[e])
        # one row per support image: the image, then what each strategy made from it; images
        # made from the prompt alone (Text2Image) get a row of their own
        by_source: dict[str | None, dict] = {}
        for k, (sid, im, lab) in enumerate(support):
            by_source[sid] = {
                "src": _thumb(im, out, f"images/e{e}/support_{k}.png"),
                "id": sid,
                "class": episode.class_names[lab],
                "strategies": {},
            }
        by_source[None] = {"src": None, "id": None, "class": "prompt only", "strategies": {}}
        for name in names:
            if progress:
                progress(f"gallery: episode {e}, {name}")
            strategy = REGISTRY.get(name).create()
            pgen = torch.Generator().manual_seed(stable_seed(scn.seed, strategy.name, "plan", e))
            specs = strategy.plan(episode, pgen)
            made = strategy.render(specs, RenderContext(cached, images, embed, max_batch, None))
            for j, g in enumerate(made):
                rec = g.record
                item = {
                    "src": _thumb(g.image, out, f"images/e{e}/{name}_{j}.png"),
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
                            "src": _thumb(cand, out, f"images/e{e}/{name}_{j}_r{c}.png"),
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
        gallery.append({"index": e, "classes": list(episode.class_names), "rows": rows_out})
    note = (
        f"{len(chosen)} episode(s) chosen by seed {scn.seed}: {cached.hits} images read from the "
        f"run's cache, {cached.generated} generated again (not in the cache)"
    )
    return gallery, note


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
    device=None,
    max_batch: int = 16,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write ``out/index.html`` (and its images) for the rows of ``results``."""
    import jinja2

    rows = read_jsonl(results)
    if not rows:
        raise ConfigError(f"{results}: no result rows")
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for name in dict.fromkeys(r["scenario"] for r in rows):
        rs = [r for r in rows if r["scenario"] == name]
        r0 = rs[0]
        sec = Section(
            scenario=name,
            header={k: r0.get(k) for k in ("dataset", "split", "ways", "shots", "queries",
                                           "episodes", "backbone", "seed")},
            rows=table_rows(rs),
            provenance=provenance(rs),
        )  # fmt: skip
        slug = "".join(c if c.isalnum() else "-" for c in name)
        if any(t["delta_none"] for t in sec.rows):
            sec.plot = gain_cost_plot(sec.rows, out / f"gain_cost_{slug}.png").name
        if cache_dir is not None and gallery_episodes > 0:
            scn = scenario_of(rs, scenario if scenario and scenario.name == name else None)
            sec.gallery, sec.gallery_note = build_gallery(
                scn, rs, cache_dir, out, episodes=gallery_episodes, device=device,
                max_batch=max_batch, progress=progress,
            )  # fmt: skip
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
        results_json=json.dumps([t for s in sections for t in s.rows]),
    )
    return atomic_write_text(out / "index.html", html)
