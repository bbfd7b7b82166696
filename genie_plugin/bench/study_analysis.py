"""Image-level analyses of a study's run: *which pairs* and *where Algorithm 1 fails*.

Both read the run's images back from its cache (the report's gallery renderer: every image a
cache hit), judge them with the dataset's oracle (never the evaluation backbone) and measure
source–target distance with the backbone on the support set only, as GeNIe's own source
choice does (:mod:`genie_plugin.core.affinity`).

- ``pairs``: label consistency, context kept and the paired accuracy gain, binned by the
  prototype distance between an output's source class and its target; the farthest pairs'
  images.
- ``ada_failures``: GeNIe-Ada pairs whose r* output the oracle labels as another class, or
  whose jump curve is flat (:func:`genie_plugin.core.ada.is_flat`), with their candidate
  strips and curves.
"""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np

from genie_plugin.errors import ConfigError

KINDS = ("pairs", "ada_failures")
N_BINS = 3  # tertiles: enough pairs per bin for a rate at ~10 rendered episodes
N_SHOWN = 8  # pairs / failures shown with their images


def _episode_distances(scn, data, episodes, embed) -> dict[int, dict[tuple[str, str], float]]:
    """{episode: {(target, source class): 1 − prototype cosine}} from the support set."""
    from genie_plugin.bench.runner import episode_inputs
    from genie_plugin.core.affinity import class_affinity

    out = {}
    for e, ep in enumerate(episodes):
        episode, support, _, _ = episode_inputs(scn, data, ep)
        feats = embed([im for _, im, _ in support])
        aff = class_affinity(feats, [lab for _, _, lab in support], episode.ways)
        names = episode.class_names
        out[e] = {(names[t], names[s]): round(1.0 - aff[t][s], 6)
                  for t in range(len(names)) for s in range(len(names)) if s != t}  # fmt: skip
    return out


def _bins(values: list[float], n: int = N_BINS) -> list[float]:
    """Inner edges of ``n`` equal-count bins (rounded: a last bit never moves an item)."""
    qs = np.quantile(np.asarray(values, dtype=np.float64), [k / n for k in range(1, n)])
    return [round(float(q), 4) for q in qs]


def _bin_of(v: float, edges: list[float]) -> int:
    return sum(round(v, 4) > e for e in edges)


def _curve_png(ada: dict, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genie_plugin.io import atomic_write_bytes
    from genie_plugin.sinks import plot_text

    fig, ax = plt.subplots(figsize=(2.8, 1.9), dpi=90)
    ax.plot(ada["ratios"], ada["projections"], "o-", ms=3)
    ax.axvline(ada["r_star"], color="#d40", lw=1)
    ax.set_xlabel("r", fontsize=7)
    ax.set_ylabel("projection on v", fontsize=7)
    ax.set_title(plot_text(title), fontsize=7)
    ax.tick_params(labelsize=6)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def analyse(
    kind: str,
    scn,
    rows: list[dict],
    cache_dir: Path,
    out: Path,
    *,
    strategy: str,
    episodes: int = 10,
    device=None,
    progress=None,
) -> dict:
    """One analysis of ``strategy``'s outputs on the first rendered ``episodes`` of the run
    (chosen by the report's seed); images under ``out/analysis``, paths relative to ``out``."""
    from genie_plugin.bench.report import _oracle, _thumb, build_gallery
    from genie_plugin.bench.runner import scenario_episodes
    from genie_plugin.core.stats import mean_ci95
    from genie_plugin.fewshot.backbones import MemoEmbedder, load_backbone

    if kind not in KINDS:
        raise ConfigError(f"analysis kind {kind!r}: choose one of {', '.join(KINDS)}")
    ok = {r["strategy"]: r for r in rows if r.get("status") == "ok"}
    if strategy not in ok:
        raise ConfigError(f"analysis {kind}: no finished row for {strategy!r} in the study's run")
    _, _, samples = build_gallery(scn, rows, cache_dir, out, episodes=0,
                                  quality_episodes=episodes, device=device,
                                  progress=progress)  # fmt: skip
    mine = samples.get(strategy, [])
    judge, note = _oracle("auto", scn.dataset, device)
    top = ([judge.classes[k] for k in judge.probs([s["image"] for s in mine]).argmax(1)]
           if judge is not None and mine else [None] * len(mine))  # fmt: skip
    rel = lambda name: f"analysis/{kind}/{name}"  # noqa: E731
    result: dict = {"kind": kind, "strategy": strategy, "oracle": note,
                    "rendered_episodes": len({s["episode"] for s in mine}), "outputs": len(mine)}  # fmt: skip
    if kind == "pairs":
        from genie_plugin.bench.report import context_distances, text2image_refs

        data, eps = scenario_episodes(scn)
        embed = MemoEmbedder(load_backbone(scn.backbone, device=device),
                             store=cache_dir / "features")  # fmt: skip
        dist = _episode_distances(scn, data, eps, embed)
        t2i = text2image_refs(samples)
        items = []
        for s, t in zip(mine, top, strict=True):
            if s["source_class"] is None:
                continue
            ab = context_distances(s, t2i)
            kept = None if ab is None else ab[0] < ab[1]
            items.append({"s": s, "distance": dist[s["episode"]][(s["target"], s["source_class"])],
                          "consistent": None if t is None else t == s["target"],
                          "source_label": None if t is None else t == s["source_class"],
                          "kept": kept, "top": t})  # fmt: skip
        if not items:
            raise ConfigError(f"analysis pairs: {strategy!r} made no image from a source")
        edges = _bins([it["distance"] for it in items])
        rate = lambda xs: None if not xs else round(float(np.mean(xs)), 4)  # noqa: E731
        bins = []
        for b in range(N_BINS):
            inb = [it for it in items if _bin_of(it["distance"], edges) == b]
            bins.append({
                "bin": b, "n": len(inb),
                "distance": rate([it["distance"] for it in inb]),
                "label_consistency": rate([it["consistent"] for it in inb
                                           if it["consistent"] is not None]),
                "labelled_source": rate([it["source_label"] for it in inb
                                         if it["source_label"] is not None]),
                "context_kept": rate([it["kept"] for it in inb if it["kept"] is not None]),
            })  # fmt: skip
        # the paired gain per episode, binned by the episode's mean source–target distance,
        # for every strategy of the run: is a gain in near-class episodes GeNIe's own?
        gain = None
        if "none" in ok:
            base = ok["none"]["episode_accuracies"]
            means = [float(np.mean(list(dist[e].values()))) for e in range(len(base))]
            ep_edges = _bins(means)
            gain = {}
            for label, row in ok.items():
                if label == "none":
                    continue
                gain[label] = []
                for b in range(N_BINS):
                    d = [a - z for e, (a, z) in enumerate(zip(row["episode_accuracies"], base,
                                                               strict=True))
                         if _bin_of(means[e], ep_edges) == b]  # fmt: skip
                    m, ci = mean_ci95(d) if len(d) > 1 else (float(np.mean(d)) if d else None, None)
                    gain[label].append({"bin": b, "episodes": len(d), "delta": m, "ci95": ci,
                                        "distance": rate([x for x in means
                                                          if _bin_of(x, ep_edges) == b])})  # fmt: skip
        far = sorted(items, key=lambda it: (-it["distance"], it["s"]["episode"]))[:N_SHOWN]
        shown = []
        for k, it in enumerate(far):
            s = it["s"]
            shown.append({"target": s["target"], "source_class": s["source_class"],
                          "episode": s["episode"], "distance": it["distance"],
                          "top": it["top"], "consistent": it["consistent"],
                          "source": _thumb(s["source"], out, rel(f"far{k}_source.png")),
                          "image": _thumb(s["image"], out, rel(f"far{k}_output.png"))})  # fmt: skip
        result.update(edges=edges, bins=bins, episode_gain=gain, farthest=shown)
        return result
    # ada_failures
    pairs = []
    for k, (s, t) in enumerate(zip(mine, top, strict=True)):
        ada = (s.get("record") or {}).get("ada")
        if not ada:
            continue
        pairs.append({"k": k, "s": s, "ada": ada, "flat": is_flat_curve(ada),
                      "inconsistent": None if t is None else t != s["target"], "top": t})  # fmt: skip
    if not pairs:
        raise ConfigError(f"analysis ada_failures: {strategy!r} has no GeNIe-Ada records")
    failed = [p for p in pairs if p["flat"] or p["inconsistent"]]
    failed.sort(key=lambda p: (not p["inconsistent"], not p["flat"], p["s"]["episode"], p["k"]))
    shown = []
    for j, p in enumerate(failed[:N_SHOWN]):
        s, ada = p["s"], p["ada"]
        strip = [{"src": _thumb(c, out, rel(f"fail{j}_r{i}.png")), "ratio": ada["ratios"][i],
                  "projection": round(float(ada["projections"][i]), 4),
                  "chosen": abs(ada["ratios"][i] - ada["r_star"]) < 1e-9}
                 for i, c in enumerate(s.get("candidates") or ())]  # fmt: skip
        curve = _curve_png(ada, out / rel(f"fail{j}_curve.png"),
                           f"{s['source_class']} → {s['target']}")  # fmt: skip
        shown.append({"target": s["target"], "source_class": s["source_class"],
                      "episode": s["episode"], "r_star": ada["r_star"], "top": p["top"],
                      "flat": p["flat"], "inconsistent": p["inconsistent"],
                      "jumps": [round(float(x), 4) for x in ada["jumps"]],
                      "source": None if s["source"] is None
                      else _thumb(s["source"], out, rel(f"fail{j}_source.png")),
                      "strip": strip, "curve": str(curve.relative_to(out))})  # fmt: skip
    n = len(pairs)
    judged = [p for p in pairs if p["inconsistent"] is not None]
    result.update(
        pairs=n,
        flat=sum(p["flat"] for p in pairs),
        inconsistent=sum(bool(p["inconsistent"]) for p in pairs) if judged else None,
        # of those, how many the oracle still calls the source class (r* came too early)
        as_source=sum(p["top"] == p["s"]["source_class"] for p in pairs) if judged else None,
        both=sum(p["flat"] and bool(p["inconsistent"]) for p in pairs) if judged else None,
        r_star_all=dict(sorted(Counter(f"{p['ada']['r_star']:g}" for p in pairs).items())),
        r_star_failed=dict(sorted(Counter(f"{p['ada']['r_star']:g}" for p in failed).items())),
        failures=shown,
    )
    return result


def is_flat_curve(ada: dict) -> bool:
    from genie_plugin.core.ada import is_flat

    return is_flat(ada["jumps"])
