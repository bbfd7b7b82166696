"""``genie bench report``: a page that opens from disk and shows what the run measured and made."""

import json
import re
from dataclasses import replace
from html.parser import HTMLParser

import pytest
from PIL import Image
from typer.testing import CliRunner

from genie_cli.main import app
from genie_plugin.errors import ConfigError

STRATEGIES = ("none", "weak", "genie", "genie_ada")


class _Page(HTMLParser):
    """Image sources, link targets, script sources and the boards' cells."""

    def __init__(self):
        super().__init__()
        self.imgs, self.links, self.scripts, self.cells = [], [], [], {}
        self._row, self._cell = None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a["src"])
        if tag in ("a", "link") and "href" in a:
            self.links.append(a["href"])
        if tag == "script" and "src" in a:
            self.scripts.append(a["src"])
        if tag == "tr" and "data-strategy" in a:
            self._row = a["data-strategy"]
            self.cells[self._row] = []
        if tag == "td" and self._row is not None:
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag == "td" and self._row is not None:
            self.cells[self._row].append(self._cell.strip())
            self._cell = None
        if tag == "tr":
            self._row = None


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 2-episode shapes run on the tiny model: results and the cache it filled."""
    from genie_plugin.bench.runner import run_scenario
    from genie_plugin.bench.scenario import Scenario
    from genie_plugin.io import write_jsonl

    work = tmp_path_factory.mktemp("run")
    scn = replace(
        Scenario.load("embedded-5w1s"), episodes=2, strategies=STRATEGIES, model="tiny-random",
        steps=4, queries=4, real_views=1,
    )  # fmt: skip
    rows = run_scenario(scn, cache_dir=work / "cache", device="cpu")
    write_jsonl(work / "r.jsonl", rows)
    return scn, work


def test_report_shows_the_runs_numbers_and_images_from_its_cache(run, tmp_path):
    from genie_plugin.bench.report import build_report

    scn, work = run
    rows = [json.loads(x) for x in (work / "r.jsonl").read_text().splitlines()]
    page = build_report(work / "r.jsonl", tmp_path, cache_dir=work / "cache", scenario=scn)
    html = page.read_text()
    p = _Page()
    p.feed(html)
    # self-contained: no script, stylesheet or image from anywhere but the folder
    assert not p.scripts and not [u for u in p.imgs + p.links if re.match(r"[a-z]+:", u)]
    for src in p.imgs:
        with Image.open(tmp_path / src) as im:
            im.load()
            assert im.size[0] > 0
    # the board's numbers are the results file's
    assert set(p.cells) == set(STRATEGIES)
    for r in rows:
        cells = p.cells[r["strategy"]]
        assert cells[0] == r["strategy"] and cells[1] == f"{r['mean']:.2f}"
        assert cells[2] == f"{r['ci95']:.2f}"
    # paired differences: vs none for all, vs weak for the others, none has neither
    assert p.cells["none"][3] == "–" and p.cells["weak"][4] == "–"
    assert re.fullmatch(r"[+-]\d+\.\d\d ± \d+\.\d\d", p.cells["genie"][4])
    # the gallery: every generative strategy, read back without generating anything
    assert "0 generated again" in html
    for name in ("genie", "genie_ada"):
        assert f"<strong>{name}</strong>" in html
    # each support image opens a row; genie's images sit in the row of the image they came from
    shown = html.count("<summary>Episode ")
    assert shown == 2 and html.count('alt="support image, ') == 5 * shown  # 5-way 1-shot
    n_cand = len([s for s in p.imgs if re.search(r"genie_ada_\d+_r\d+\.png$", s)])
    assert n_cand and n_cand % 5 == 0  # the candidate strip at each of Ada's 5 ratios
    assert html.count('class="chosen"') == n_cand // 5  # one r* per generated image
    assert "gain_cost_" in html and any(s.startswith("gain_cost_") for s in p.imgs)
    # quality, judged by the shapes oracle on the rendered episodes' images
    assert "judged by the shapes oracle (arch " in html
    assert re.search(r"on the images of [2-5] episode\(s\)", html)


def test_report_without_a_cache_has_the_board_and_says_why_no_gallery(run, tmp_path):
    _, work = run
    res = CliRunner().invoke(
        app, ["bench", "report", str(work / "r.jsonl"), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 0, res.output
    html = (tmp_path / "o" / "index.html").read_text()
    assert "no gallery: pass the run&#39;s cache with --cache" in html
    assert 'data-strategy="genie_ada"' in html


def test_report_refuses_a_scenario_that_is_not_the_runs(run, tmp_path):
    from genie_plugin.bench.report import build_report

    scn, work = run
    with pytest.raises(ConfigError, match="episode list .* pass the scenario file"):
        build_report(
            work / "r.jsonl", tmp_path, cache_dir=work / "cache", scenario=replace(scn, seed=1)
        )


def test_report_command_errors_name_the_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # short paths: typer's error box wraps long lines
    res = CliRunner().invoke(app, ["bench", "report", "x.jsonl", "--out", "o"])
    assert res.exit_code == 2 and "x.jsonl: file not found" in res.output
    (tmp_path / "r.jsonl").write_text("")
    res = CliRunner().invoke(app, ["bench", "report", "r.jsonl", "--out", "o", "--cache", "c"])
    assert res.exit_code == 2 and "c: no such cache folder" in res.output
    res = CliRunner().invoke(app, ["bench", "report", "r.jsonl", "--out", "o"])
    assert res.exit_code == 2 and res.output.startswith("error: r.jsonl: no result rows")
    assert not (tmp_path / "o" / "index.html").exists()


MAX_PAGE_BYTES = 5_000_000  # docs/report.md: a 2-episode report of the embedded benchmark


def test_report_in_a_real_browser(run, tmp_path):
    """Headless Chromium (Debian's chromium + chromium-driver, selenium): the page opens from
    disk with no console error, every image decodes, the board shows the results file's
    numbers and sorts by a clicked column, and the folder stays under the documented size."""

    from genie_plugin.bench.report import build_report

    scn, work = run
    page = build_report(work / "r.jsonl", tmp_path, cache_dir=work / "cache", scenario=scn)
    from tests.browser import decoded_images, headless_chrome

    with headless_chrome() as driver:
        driver.get(page.resolve().as_uri())
        n_img, decoded = decoded_images(driver)
        assert n_img > 20 and decoded == n_img
        rows = [json.loads(x) for x in (work / "r.jsonl").read_text().splitlines()]
        shown = driver.execute_script(
            "return Array.from(document.querySelectorAll('table.board tbody tr'))"
            ".map(r => [r.dataset.strategy, r.cells[1].textContent.trim()]);"
        )
        assert dict(shown) == {r["strategy"]: f"{r['mean']:.2f}" for r in rows}
        # sort by accuracy: one click ascending, a second descending
        header = driver.find_elements("css selector", "table.board th")[1]
        for order in (sorted, lambda v: sorted(v, reverse=True)):
            header.click()
            col = driver.execute_script(
                "return Array.from(document.querySelectorAll('table.board tbody tr'))"
                ".map(r => parseFloat(r.cells[1].dataset.v));"
            )
            assert col == order(col)
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    weight = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert weight < MAX_PAGE_BYTES, weight


def test_bench_run_writes_the_report_beside_the_results(tmp_path):
    """`genie bench run --report DIR`: rows record their scenario, so the report needs no
    --scenario; the gallery reads the images the run just cached."""
    out, cache, rep = tmp_path / "r.jsonl", tmp_path / "cache", tmp_path / "report"
    res = CliRunner().invoke(
        app,
        ["bench", "run", "--episodes", "1", "-s", "none", "-s", "genie", "--model",
         "tiny-random", "--steps", "4", "--out", str(out), "--cache", str(cache),
         "--report", str(rep)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert f"report: {rep / 'index.html'}" in res.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows[0]["scenario_config"]["episodes"] == 1
    html = (rep / "index.html").read_text()
    assert "0 generated again" in html and "<strong>genie</strong>" in html


def test_rows_without_their_scenario_use_the_shipped_one_with_their_settings():
    """Rows written before they recorded their scenario (the committed embedded board's were,
    until it was regenerated; such rows are made here by dropping the field): the shipped
    scenario of that name with the rows' own episodes, model and sampler settings."""
    from pathlib import Path

    from genie_plugin.bench.report import scenario_of
    from genie_plugin.bench.runner import scenario_episodes
    from genie_plugin.data.episodes import episodes_hash

    committed = Path(__file__).resolve().parents[2] / "benchmarks/results/embedded-5w1s.jsonl"
    rows = [json.loads(x) for x in committed.read_text().splitlines()]
    recorded = scenario_of(rows)
    for r in rows:
        r.pop("scenario_config", None)
    scn = scenario_of(rows)
    assert scn.to_dict() == recorded.to_dict()
    model = next(r["model"] for r in rows if r.get("model"))
    assert (scn.episodes, scn.model, scn.steps) == (
        rows[0]["episodes"],
        model["model"],
        model["steps"],
    )
    assert scn.guidance == model["guidance_scale"] and scn.timestep_shift == model["timestep_shift"]
    assert episodes_hash(scenario_episodes(scn)[1]) == rows[0]["episodes_hash"]
    with pytest.raises(ConfigError, match="no shipped scenario has that name: pass the scenario"):
        scenario_of([{**rows[0], "scenario": "my-own"}])


def test_quality_measures_label_and_context_on_known_images():
    """Label consistency and context kept on images whose answers are known: an oracle that
    always says 'star'; outputs that are their source (context kept) or a Text2Image image."""
    import numpy as np

    from genie_plugin.bench.report import quality

    class Judge:
        classes = ("star", "moon", "cross")

        def probs(self, images):
            return np.tile([0.8, 0.1, 0.1], (len(images), 1))

    red, blue = Image.new("RGB", (32, 32), (250, 0, 0)), Image.new("RGB", (32, 32), (0, 0, 250))
    t2i = [{"image": blue, "source": None, "source_class": None, "target": "star", "episode": 0}]
    kept = {"image": red, "source": red, "source_class": "moon", "target": "star", "episode": 0}
    lost = {"image": blue, "source": red, "source_class": "moon", "target": "star", "episode": 0}
    other = {**kept, "target": "cross"}  # labelled cross, judged star; no Text2Image of cross
    rows = {
        r["strategy"]: r
        for r in quality({"text2image": t2i, "genie": [kept, lost, other]}, Judge())
    }
    g = rows["genie"]
    assert g["n"] == 3 and g["label_consistency"] == 2 / 3 and g["labelled_source"] == 0.0
    assert g["context_kept"] == 0.5  # kept: 0 from its source; lost: 0 from Text2Image's
    assert g["dist_source"] == round((0 + np.sqrt(((250**2) * 2 / 3)) / 255) / 2, 4)
    assert (
        rows["text2image"]["context_kept"] is None and rows["text2image"]["labelled_source"] is None
    )
    assert "label_consistency" not in quality({"genie": [kept]})[0]  # no oracle, no label figures


def test_imagenet_oracle_names_its_outputs_as_the_datasets_name_their_classes():
    """A timm ImageNet-1k classifier (random weights here: nothing downloads) judges by the
    words mini/tieredImageNet give their classes; two classes sharing a word both count."""
    import numpy as np

    from genie_plugin import plugins
    from genie_plugin.bench.oracles import ImageNetOracle
    from genie_plugin.data.names import class_word

    judge = ImageNetOracle(device="cpu", model="resnet18", pretrained=False)
    assert len(judge.classes) == 1000 and judge.classes[0] == class_word("n01440764")
    assert judge.classes.count("crane") == 2  # the bird and the machine
    p = judge.probs([Image.new("RGB", (84, 84), (10, 200, 30)), Image.new("RGB", (512, 512))])
    assert p.shape == (2, 1000) and np.allclose(p.sum(1), 1.0, atol=1e-5)
    for ds in ("mini-imagenet", "tiered-imagenet", "mini-imagenet-full", "tiered-imagenet-full"):
        assert plugins.load(plugins.ORACLES, ds) is ImageNetOracle
    assert not plugins.has(plugins.ORACLES, "cub")  # no oracle: the page says so


def test_oracle_choice_errors_and_skips():
    from genie_plugin.bench.report import _oracle

    assert _oracle("none", "shapes", "cpu") == (
        None,
        "label consistency not measured (--oracle none)",
    )
    judge, note = _oracle("auto", "cub", "cpu")
    assert judge is None and note.startswith("label consistency not measured: no oracle for cub")
    with pytest.raises(ConfigError, match="--oracle judge: no such oracle"):
        _oracle("judge", "shapes", "cpu")


def test_between_strategy_differences_are_paired_and_antisymmetric():
    from pathlib import Path

    from genie_plugin.bench.report import pairwise
    from genie_plugin.core.stats import paired_diff_ci95

    committed = Path(__file__).resolve().parents[2] / "benchmarks/results/embedded-5w1s.jsonl"
    rows = [json.loads(x) for x in committed.read_text().splitlines()]
    p = pairwise(rows)
    names = p["names"]
    assert set(names) == {r["strategy"] for r in rows} and len(names) == len(rows)
    acc = {r["strategy"]: r["episode_accuracies"] for r in rows}
    i, j = names.index("genie"), names.index("text2image")
    d, ci = paired_diff_ci95(acc["genie"], acc["text2image"])
    assert p["cells"][i][j] == (round(d, 2), round(ci, 2))
    assert p["cells"][j][i] == (round(-d, 2), round(ci, 2)) and p["cells"][i][i] is None
    # a row run on another episode list is paired with nothing
    other = [*rows[:-1], {**rows[-1], "episodes_hash": "sha256:other"}]
    last = pairwise(other)
    k = last["names"].index(rows[-1]["strategy"])
    assert all(c is None for c in last["cells"][k])


def test_rows_merged_from_runs_of_other_strategy_lists_all_get_their_gallery(run, tmp_path):
    """A results file where each strategy ran in its own process (bench run --jobs, or the
    boards' script): the rows record scenarios whose strategy lists differ; every generative
    strategy of the rows is still in the gallery, whichever row comes first."""
    from genie_plugin.bench.report import build_report

    _, work = run
    rows = [json.loads(x) for x in (work / "r.jsonl").read_text().splitlines()]
    for r in rows:  # as if each strategy had run alone
        r["scenario_config"] = {**r["scenario_config"], "strategies": [r["strategy"]]}
    merged = tmp_path / "merged.jsonl"
    merged.write_text("".join(json.dumps(r) + "\n" for r in rows))
    page = build_report(merged, tmp_path / "o", cache_dir=work / "cache", quality_episodes=0)
    html = page.read_text()
    for name in ("genie", "genie_ada"):
        assert f"<strong>{name}</strong>" in html
    assert "0 generated again" in html


def test_a_peers_fit_cost_has_its_own_column_in_the_generations_unit(run, tmp_path):
    """A row with a per-episode fit (a peer) shows it beside its UNet rows, per episode, and
    the gain-cost plot places it at generation plus fit; boards without fits keep their
    columns."""
    import re

    _, work = run
    rows = [json.loads(x) for x in (work / "r.jsonl").read_text().splitlines()]
    peer = next(r for r in rows if r["strategy"] == "genie")
    peer = {**peer, "strategy": "datadream", "fit_unet_rows": 7820, "fits_made": peer["episodes"]}
    (tmp_path / "r.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [*rows, peer]))
    res = CliRunner().invoke(app, ["bench", "report", str(tmp_path / "r.jsonl"), "--out",
                                   str(tmp_path / "o")])  # fmt: skip
    assert res.exit_code == 0, res.output
    html = (tmp_path / "o" / "index.html").read_text()
    assert "<th>fit (UNet rows / episode)</th>" in html
    row = re.search(r'<tr class="ok" data-strategy="datadream">(.*?)</tr>', html, re.S).group(1)
    assert f'data-v="{round(7820 / peer["episodes"], 1)}"' in row
    plain = work / "o2"
    CliRunner().invoke(app, ["bench", "report", str(work / "r.jsonl"), "--out", str(plain)])
    assert "fit (UNet rows" not in (plain / "index.html").read_text()
