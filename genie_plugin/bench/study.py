"""Shipped studies: a reviewer's question as a scenario plus what to compare, all paired on the
same episodes (``genie bench study NAME``).

A study file (``bench/studies/NAME.json``) holds the question, a scenario (``based_on`` a shipped
scenario, whose keys it overrides; strategies may carry values and grids), the pairs of rows whose
per-episode difference answers it, and whether to draw the accuracy-over-cost front. The run is
a plain ``bench run`` of that scenario (resumable through the cache, rows replaced per strategy);
:func:`summarise` turns its rows into the study's numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from genie_plugin.errors import ConfigError

STUDY_DIR = Path(__file__).parent / "studies"


@dataclass(frozen=True)
class Study:
    name: str
    question: str
    scenario: dict
    comparisons: tuple[tuple[str, str], ...]
    pareto: bool = False

    def make_scenario(self, *, episodes: int | None = None, smoke: bool = False):
        """The study's scenario; ``smoke``: one episode (CI checks that every study runs)."""
        from genie_plugin.bench.scenario import Scenario

        d = dict(self.scenario)
        base = d.pop("based_on", None)
        if base is not None:
            d = {**Scenario.load(base).to_dict(), "name": "", **d}
        if episodes is not None:
            d["episodes"] = episodes
        if smoke:
            d["episodes"] = 1
            d["name"] = d.get("name", self.name) + "-smoke"
        scn = Scenario.from_dict(d)
        for a, b in self.comparisons:
            for label in (a, b):
                if label not in scn.labels:  # a comparison naming no row: refused here
                    raise ConfigError(
                        f"study {self.name}: comparison names {label!r}, which its scenario "
                        f"does not run (it runs {', '.join(scn.labels)})"
                    )
        return scn


def study_names() -> list[str]:
    return sorted(p.stem for p in STUDY_DIR.glob("*.json"))


def load_study(name: str) -> Study:
    """A shipped study by name, or a study file by path."""
    p = Path(name)
    if not p.is_file():
        p = STUDY_DIR / f"{name}.json"
    if not p.is_file():
        raise ConfigError(f"unknown study {name!r}; shipped studies: {', '.join(study_names())}")
    try:
        d = json.loads(p.read_text())
        study = Study(
            name=p.stem,
            question=str(d["question"]),
            scenario=dict(d["scenario"]),
            comparisons=tuple((str(a), str(b)) for a, b in d.get("comparisons", [])),
            pareto=bool(d.get("pareto", False)),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{p}: not a study file ({type(exc).__name__}: {exc})") from None
    study.make_scenario(smoke=True)  # checks its scenario and comparisons
    return study


def summarise(study: Study, rows: list[dict]) -> dict:
    """Per strategy: accuracy ± CI and UNet rows per episode; per comparison: the paired Δ ± CI
    (accuracy points, same episodes) and whether the interval excludes 0; the front of
    accuracy over cost where the study asks for it."""
    from genie_plugin.bench.leaderboard import paired_delta

    by = {r["strategy"]: r for r in rows}
    ok = {k: r for k, r in by.items() if r.get("status") == "ok"}
    table = [
        {"strategy": k, "mean": r["mean"], "ci95": r["ci95"],
         "unet_rows_per_episode": round((r.get("unet_rows") or 0) / max(1, r["episodes"]), 1),
         "images_per_episode": round(
             (r.get("images_generated", 0) + r.get("cache_hits", 0)) / max(1, r["episodes"]), 1)}
        for k, r in ok.items()
    ]  # fmt: skip
    comps = []
    for a, b in study.comparisons:
        pair = paired_delta(ok[a], ok[b]) if a in ok and b in ok else None
        comps.append({
            "a": a, "b": b,
            "delta": None if pair is None else pair[0],
            "ci95": None if pair is None else pair[1],
            # one episode has no interval: nothing is separated (a smoke run)
            "separated": None if pair is None or len(ok[a]["episode_accuracies"]) < 2
            else abs(pair[0]) > pair[1],
        })  # fmt: skip
    out = {"study": study.name, "question": study.question, "strategies": table,
           "comparisons": comps,
           "episodes": max((r["episodes"] for r in ok.values()), default=0),
           "failed": sorted(k for k in by if k not in ok)}  # fmt: skip
    if study.pareto:
        front, best = [], -1.0
        for t in sorted(table, key=lambda t: (t["unet_rows_per_episode"], -t["mean"])):
            if t["mean"] > best:
                front.append(t["strategy"])
                best = t["mean"]
        out["pareto_front"] = front
    return out


def markdown(summary: dict) -> str:
    """The summary as the markdown ``docs/studies.md`` quotes."""
    lines = [f"### {summary['study']}", "", summary["question"], "",
             f"{summary['episodes']} episodes, paired.", "",
             "| strategy | accuracy % | images / episode | UNet rows / episode |",
             "|---|---|---|---|"]  # fmt: skip
    for t in sorted(summary["strategies"], key=lambda t: -t["mean"]):
        lines.append(f"| {t['strategy']} | {t['mean']:.2f} ± {t['ci95']:.2f} | "
                     f"{t['images_per_episode']:.0f} | {t['unet_rows_per_episode']:.0f} |")  # fmt: skip
    lines += ["", "| comparison | paired Δ (points) | interval excludes 0 |", "|---|---|---|"]
    for c in summary["comparisons"]:
        d = "–" if c["delta"] is None else f"{c['delta']:+.2f} ± {c['ci95']:.2f}"
        sep = "–" if c["separated"] is None else ("yes" if c["separated"] else "no")
        lines.append(f"| {c['a']} − {c['b']} | {d} | {sep} |")
    if "pareto_front" in summary:
        lines += ["", "Accuracy-over-cost front: " + " → ".join(summary["pareto_front"])]
    return "\n".join(lines) + "\n"
