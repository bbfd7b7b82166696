"""Shipped studies: a reviewer's question as a scenario plus what to compare, all paired on the
same episodes (``genie bench study NAME``).

A study file (``bench/studies/NAME.json``) holds the question, a scenario (``based_on`` a shipped
scenario, whose keys it overrides; strategies may carry values and grids), the pairs of rows whose
per-episode difference answers it, and whether to draw the accuracy-over-cost front. The run is
a plain ``bench run`` of that scenario (resumable through the cache, rows replaced per strategy);
:func:`summarise` turns its rows into the study's numbers.

Two optional keys make a study more than one run:

- ``variants``: scenario overrides, one run each (``[{"dataset": "shapes-ctx"}]``,
  ``[{"ways": 10}]``), summarised side by side; a variant the data cannot hold (more ways than
  the split has classes) is reported as skipped with the reason, not run.
- ``select``: a fixed setting chosen the fair way, on *validation* episodes: the labels
  ``among`` are run on ``split`` (its own classes, ``ways`` where it has fewer), the best mean
  wins (ties: the first listed) and its test row is compared under the name ``as`` — the
  baseline an adaptive method (GeNIe-Ada) must beat, since picking the best fixed r on the
  test episodes themselves would flatter the fixed one.
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
    variants: tuple[dict, ...] = ({},)
    select: dict | None = None
    # image-level analyses of the run (bench.study_analysis): {"kind", "strategy", "episodes"}
    analyses: tuple[dict, ...] = ()

    def make_scenario(
        self,
        *,
        episodes: int | None = None,
        smoke: bool = False,
        variant: dict | None = None,
        overrides: dict | None = None,
    ):
        """The study's scenario (for one of its ``variants``; ``overrides``: the user's, e.g. a
        real dataset); ``smoke``: one episode (CI checks that every study runs)."""
        from genie_plugin.bench.scenario import Scenario

        d = dict(self.scenario)
        base = d.pop("based_on", None)
        if base is not None:
            d = {**Scenario.load(base).to_dict(), "name": "", **d}
        d.update(overrides or {})
        variant = variant or {}
        d.update(variant)
        if variant:
            d["name"] = d.get("name") or self.name
            d["name"] += "-" + variant_label(variant, sep="-")
        if episodes is not None:
            d["episodes"] = episodes
        if smoke:
            d["episodes"] = 1
            d["name"] = (d.get("name") or self.name) + "-smoke"
        scn = Scenario.from_dict(d)
        known = set(scn.labels) | ({self.select["as"]} if self.select else set())
        for a, b in self.comparisons:
            for label in (a, b):
                if label not in known:  # a comparison naming no row: refused here
                    raise ConfigError(
                        f"study {self.name}: comparison names {label!r}, which its scenario "
                        f"does not run (it runs {', '.join(sorted(known))})"
                    )
        for label in (self.select or {}).get("among", ()):
            if label not in scn.labels:
                raise ConfigError(
                    f"study {self.name}: select.among names {label!r}, which its scenario does "
                    f"not run (it runs {', '.join(scn.labels)})"
                )
        return scn

    def selection_scenario(self, test):
        """The validation run that picks ``select.as`` for the test scenario ``test`` (None when
        the study selects nothing): the same settings on ``select.split`` with the candidates."""
        if not self.select:
            return None
        from genie_plugin.bench.scenario import Scenario

        sel = self.select
        d = test.to_dict()
        d.update(
            name=test.name + "-" + sel.get("split", "validation"),
            split=sel.get("split", "validation"),
            ways=int(sel.get("ways", test.ways)),
            strategies=[test.ref(label).to_entry() for label in sel["among"]],
        )
        if "episodes" in sel and test.episodes > 1:  # a smoke run stays at one episode
            d["episodes"] = int(sel["episodes"])
        return Scenario.from_dict(d)


def variant_label(variant: dict, sep: str = ",") -> str:
    """``ways=10`` / ``dataset=shapes-ctx``: what a variant is called in summaries (``sep``
    ``-`` and no ``=`` in scenario names, which name files)."""
    if not variant:
        return ""
    if sep == ",":
        return ",".join(f"{k}={v}" for k, v in variant.items())
    return sep.join(f"{k}{v}" if isinstance(v, int) else str(v) for k, v in variant.items())


def choose(study: Study, rows: list[dict]) -> dict | None:
    """The validation curve and the winner of ``select.among`` ({label: mean ± CI}, chosen)."""
    if not study.select:
        return None
    ok = {r["strategy"]: r for r in rows if r.get("status") == "ok"}
    curve = [{"strategy": lab, "mean": ok[lab]["mean"], "ci95": ok[lab]["ci95"]}
             for lab in study.select["among"] if lab in ok]  # fmt: skip
    if not curve:
        return {"curve": [], "chosen": None, "episodes": 0}
    best = max(curve, key=lambda c: c["mean"])  # max keeps the first of equal means
    return {"curve": curve, "chosen": best["strategy"],
            "episodes": max(ok[c["strategy"]]["episodes"] for c in curve),
            "split": study.select.get("split", "validation"),
            "ways": next(iter(ok.values())).get("ways")}  # fmt: skip


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
            variants=tuple(dict(v) for v in d.get("variants", [{}])) or ({},),
            select=None if d.get("select") is None else dict(d["select"]),
            analyses=tuple(dict(a) for a in d.get("analyses", [])),
        )
        from genie_plugin.bench.study_analysis import KINDS

        for a in study.analyses:
            if a.get("kind") not in KINDS or not isinstance(a.get("strategy"), str):
                raise KeyError(
                    f"analyses: {a!r} needs kind (one of {', '.join(KINDS)}) and strategy"
                )
        sel = study.select
        if sel is not None and (not isinstance(sel.get("as"), str) or not sel.get("among")):
            raise KeyError("select needs 'among' (labels) and 'as' (the chosen row's name)")
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{p}: not a study file ({type(exc).__name__}: {exc})") from None
    for v in study.variants:  # checks its scenarios, comparisons, selection and analyses
        scn = study.make_scenario(smoke=True, variant=v)
        study.selection_scenario(scn)
        for a in study.analyses:
            if a["strategy"] not in scn.labels:
                raise ConfigError(
                    f"study {study.name}: analysis {a['kind']} names {a['strategy']!r}, which its "
                    f"scenario does not run (it runs {', '.join(scn.labels)})"
                )
    return study


def summarise(study: Study, rows: list[dict], selection: dict | None = None) -> dict:
    """Per strategy: accuracy ± CI and UNet rows per episode; per comparison: the paired Δ ± CI
    (accuracy points, same episodes) and whether the interval excludes 0; the front of
    accuracy over cost where the study asks for it; ``selection`` (:func:`choose`): the
    validation curve, and the chosen row also compared under ``select.as``."""
    from genie_plugin.bench.leaderboard import paired_delta

    by = {r["strategy"]: r for r in rows}
    ok = {k: r for k, r in by.items() if r.get("status") == "ok"}
    if selection and selection.get("chosen") in ok:
        ok[study.select["as"]] = {**ok[selection["chosen"]], "strategy": study.select["as"]}
    table = [
        {"strategy": k, "mean": r["mean"], "ci95": r["ci95"],
         "unet_rows_per_episode": round((r.get("unet_rows") or 0) / max(1, r["episodes"]), 1),
         "images_per_episode": round(
             (r.get("images_generated", 0) + r.get("cache_hits", 0)) / max(1, r["episodes"]), 1),
         # a peer's per-episode fit, at its own cost whether made or reused (as UNet rows)
         "fit_seconds_per_episode": round((r.get("fit_seconds") or 0) / max(1, r["episodes"]), 2),
         "fit_gflops_per_episode": round((r.get("fit_flops") or 0) / 1e9 / max(1, r["episodes"]), 1),
         "fit_unet_rows_per_episode": round((r.get("fit_unet_rows") or 0) / max(1, r["episodes"]), 1)}
        for k, r in ok.items() if not (study.select and k == study.select["as"])
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
    if selection is not None:
        out["selection"] = selection
    if study.pareto:
        front, best = [], -1.0
        # cost including fitting: generation rows plus the fit's FLOPs in UNet rows
        total = lambda t: t["unet_rows_per_episode"] + t.get("fit_unet_rows_per_episode", 0)  # noqa: E731
        for t in sorted(table, key=lambda t: (total(t), -t["mean"])):
            if t["mean"] > best:
                front.append(t["strategy"])
                best = t["mean"]
        out["pareto_front"] = front
    return out


def combine(study: Study, parts: list[dict]) -> dict:
    """One summary of a study's variants: the single summary where it has none, else
    {study, question, variants: [{variant, ...summary} or {variant, skipped}]}."""
    if len(parts) == 1 and not parts[0].get("variant"):
        return {k: v for k, v in parts[0].items() if k != "variant"}
    return {"study": study.name, "question": study.question, "variants": parts}


def markdown(summary: dict) -> str:
    """The summary as the markdown ``docs/studies.md`` quotes."""
    if "variants" in summary:
        lines = [f"### {summary['study']}", "", summary["question"], ""]
        for part in summary["variants"]:
            lines += [f"#### {part['variant']}", ""]
            if "skipped" in part:
                lines += [f"Not run: {part['skipped']}", ""]
                continue
            lines += markdown({**part, "study": ""}).splitlines()[2 + 2 :] + [""]
        return "\n".join(lines).rstrip("\n") + "\n"
    fitted = any(t.get("fit_gflops_per_episode") for t in summary["strategies"])
    lines = [f"### {summary['study']}", "", summary["question"], "",
             f"{summary['episodes']} episodes, paired.", "",
             "| strategy | accuracy % | images / episode | UNet rows / episode |"
             + (" fit s / episode | fit as UNet rows / episode |" if fitted else ""),
             "|---|---|---|---|" + ("---|---|" if fitted else "")]  # fmt: skip
    for t in sorted(summary["strategies"], key=lambda t: -t["mean"]):
        fit = (f" {t.get('fit_seconds_per_episode', 0):.1f} | "
               f"{t.get('fit_unet_rows_per_episode', 0):.0f} |") if fitted else ""  # fmt: skip
        lines.append(f"| {t['strategy']} | {t['mean']:.2f} ± {t['ci95']:.2f} | "
                     f"{t['images_per_episode']:.0f} | {t['unet_rows_per_episode']:.0f} |" + fit)  # fmt: skip
    lines += ["", "| comparison | paired Δ (points) | interval excludes 0 |", "|---|---|---|"]
    for c in summary["comparisons"]:
        d = "–" if c["delta"] is None else f"{c['delta']:+.2f} ± {c['ci95']:.2f}"
        sep = "–" if c["separated"] is None else ("yes" if c["separated"] else "no")
        lines.append(f"| {c['a']} − {c['b']} | {d} | {sep} |")
    if "pareto_front" in summary:
        lines += ["", "Accuracy-over-cost front (cost: UNet rows, fits included): "
                  + " → ".join(summary["pareto_front"])]  # fmt: skip
    for a in summary.get("analyses", []):
        lines += ["", *_analysis_lines(a)]
    sel = summary.get("selection")
    if sel:
        curve = ", ".join(
            f"{c['strategy']} {c['mean']:.2f} ± {c['ci95']:.2f}" for c in sel["curve"]
        )
        lines += ["", f"Chosen on {sel['episodes']} {sel['split']} episodes "
                      f"({sel['ways']}-way): **{sel['chosen']}** ({curve})."]  # fmt: skip
    return "\n".join(lines) + "\n"


def _analysis_lines(a: dict) -> list[str]:
    pct = lambda v: "–" if v is None else f"{100 * v:.0f}%"  # noqa: E731
    if a["kind"] == "pairs":
        lines = [f"Which pairs ({a['strategy']}, {a['outputs']} outputs of "
                 f"{a['rendered_episodes']} episodes; {a['oracle']}):", "",
                 "| distance bin | pairs | mean distance | label consistency | labelled as source "
                 "| context kept |", "|---|---|---|---|---|---|"]  # fmt: skip
        for b in a["bins"]:
            d = "–" if b["distance"] is None else f"{b['distance']:.3f}"
            lines.append(f"| {b['bin'] + 1} | {b['n']} | {d} | {pct(b['label_consistency'])} | "
                         f"{pct(b['labelled_source'])} | {pct(b['context_kept'])} |")  # fmt: skip
        gain = a.get("episode_gain") or {}
        if gain:
            labels = list(gain)
            lines += ["", "| episodes by mean distance | episodes | mean distance | "
                      + " | ".join(f"{lab} − none" for lab in labels) + " |",
                      "|---" * (3 + len(labels)) + "|"]  # fmt: skip
            for b, g0 in enumerate(gain[labels[0]]):
                cells = []
                for lab in labels:
                    g = gain[lab][b]
                    d = "–" if g["delta"] is None else f"{g['delta']:+.2f}"
                    cells.append(d + ("" if g["ci95"] is None else f" ± {g['ci95']:.2f}"))
                dist = "–" if g0["distance"] is None else f"{g0['distance']:.3f}"
                lines.append(f"| {b + 1} | {g0['episodes']} | {dist} | " + " | ".join(cells) + " |")
        return lines
    inc = ("not judged" if a["inconsistent"] is None
           else f"{a['inconsistent']} ({a['as_source']} as the source class)")  # fmt: skip
    return [f"Where Algorithm 1 fails ({a['strategy']}, {a['pairs']} pairs of "
            f"{a['rendered_episodes']} episodes): flat curve {a['flat']}, r* output labelled as "
            f"another class {inc}, both {a['both']}; r* of all pairs {a['r_star_all']}, of the "
            f"failures {a['r_star_failed']}."]  # fmt: skip
