"""A study's page (``index.html`` beside its ``summary.json``): per variant its table, the
paired Δs with their intervals, the validation curve of a chosen setting, the accuracy-over-cost
front and the image analyses' tables and galleries."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path


def _save(fig, path: Path) -> str:
    import matplotlib.pyplot as plt

    from genie_plugin.io import atomic_write_bytes

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path.name


def _plots(part: dict, folder: Path, slug: str) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genie_plugin.sinks import plot_text

    out = {}
    comps = [c for c in part["comparisons"] if c["delta"] is not None]
    if comps:
        fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(comps) + 1.0), dpi=100)
        for i, c in enumerate(comps):
            ax.errorbar(c["delta"], i, xerr=c["ci95"] or 0.0, fmt="o", capsize=3,
                        color="#1a6" if c["separated"] else "#888")  # fmt: skip
        ax.set_yticks(range(len(comps)), [plot_text(f"{c['a']} − {c['b']}") for c in comps],
                      fontsize=7)  # fmt: skip
        ax.axvline(0.0, color="grey", lw=0.8)
        ax.invert_yaxis()
        ax.set_xlabel("paired Δ accuracy (points, 95% CI)")
        out["deltas"] = _save(fig, folder / f"{slug}_deltas.png")
    sel = part.get("selection")
    if sel and sel["curve"]:
        test = {t["strategy"]: t for t in part["strategies"]}
        fig, ax = plt.subplots(figsize=(5.2, 3.2), dpi=100)
        xs = list(range(len(sel["curve"])))
        ax.errorbar(xs, [c["mean"] for c in sel["curve"]], yerr=[c["ci95"] for c in sel["curve"]],
                    fmt="o-", capsize=3, label=f"{sel['split']} ({sel['ways']}-way)")  # fmt: skip
        tc = [test.get(c["strategy"]) for c in sel["curve"]]
        if all(tc):
            ax.errorbar(xs, [t["mean"] for t in tc], yerr=[t["ci95"] for t in tc], fmt="s--",
                        capsize=3, label="test")  # fmt: skip
        ax.set_xticks(xs, [plot_text(c["strategy"].split(":")[-1]) for c in sel["curve"]],
                      fontsize=7)  # fmt: skip
        ax.set_ylabel("accuracy % (95% CI)")
        ax.legend(fontsize=7)
        out["selection"] = _save(fig, folder / f"{slug}_selection.png")
    if part.get("pareto_front"):
        fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=100)
        front = part["pareto_front"]
        cost = lambda t: t["unet_rows_per_episode"] + t.get("fit_unet_rows_per_episode", 0)  # noqa: E731
        for t in part["strategies"]:
            ax.errorbar(cost(t), t["mean"], yerr=t["ci95"], fmt="o",
                        capsize=3, color="#d40" if t["strategy"] in front else "#468")  # fmt: skip
            ax.annotate(plot_text(t["strategy"]), (cost(t), t["mean"]),
                        textcoords="offset points", xytext=(4, 3), fontsize=7)  # fmt: skip
        pts = {t["strategy"]: t for t in part["strategies"]}
        ax.plot([cost(pts[f]) for f in front], [pts[f]["mean"] for f in front],
                color="#d40", lw=0.8)  # fmt: skip
        ax.set_xlabel("UNet rows per episode (a fit's FLOPs counted as UNet rows)")
        ax.set_ylabel("accuracy % (95% CI)")
        ax.grid(alpha=0.3)
        out["pareto"] = _save(fig, folder / f"{slug}_pareto.png")
    return out


def write_page(summary: dict, folder: Path) -> Path:
    """Write ``folder/index.html`` (and its plots) from a study's summary."""
    import jinja2

    from genie_plugin.io import atomic_write_text

    parts = summary.get("variants") or [{**summary, "variant": ""}]
    shown = []
    for k, part in enumerate(parts):
        slug = re.sub(r"[^A-Za-z0-9_-]+", "-", part["variant"] or "main") + f"-{k}"
        plots = {} if "skipped" in part else _plots(part, folder, slug)
        shown.append({"part": part, "plots": plots, "slug": slug})
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("genie_plugin.bench", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    html = env.get_template("study.html.j2").render(
        summary=summary, parts=shown, generated=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    )
    return atomic_write_text(folder / "index.html", html)
