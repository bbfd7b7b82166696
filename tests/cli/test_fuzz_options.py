"""CLI option values, fuzzed (hypothesis): each value either passes every check that runs before
the model loads — and is then inside the range the option documents — or the command stops with
exit code 2 and a message naming the option; never a traceback, never a file written."""

import math

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from genie_cli.main import app
from genie_plugin.diffusion.model import BACKENDS
from genie_plugin.registry import REGISTRY


class Reached(Exception):
    """Raised by the stand-in model loader: every check before loading passed."""


def _num(v):
    return float(v)


def _int(v):
    x = float(v)  # the CLI's parser takes integral spellings like "1.0"
    if not x.is_integer():
        raise ValueError(v)
    return int(x)


# option → (parse the text the user typed, the documented range of a value that gets through)
DOCUMENTED = {
    "--steps": (_int, lambda x: x >= 1),
    "--guidance": (_num, lambda x: math.isfinite(x) and x >= 0),
    "--resolution": (_int, lambda x: x >= 8 and x % 8 == 0),
    "--timestep-shift": (_num, lambda x: math.isfinite(x) and x > 0),
    "--guidance-t-min": (_num, lambda x: 0 <= x < 1),
    "--ratio": (_num, lambda x: 0 < x <= 1),
    "--max-batch": (
        lambda v: v.strip().lower(),
        lambda x: x == "auto" or (x.isdigit() and int(x) >= 1),
    ),
    "--scheduler": (str, lambda x: x in {"dpm++", "ddim", "euler"}),
    "--backend": (str, lambda x: x in BACKENDS),
    "--strategy": (str, lambda x: x in set(REGISTRY.names())),
}

_values = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(
        [
            "nan",
            "inf",
            "-inf",
            "",
            " ",
            "auto",
            "AUTO",
            "1e3",
            "0x10",
            "0.5",
            "1",
            "0",
            "8",
            "64",
            "dpm++",
            "ddim",
            "euler",
            "torch",
            "onnx",
            "genie",
            "img2img",
            "text2image",
            "none",
        ]
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6),
)


def _invoke_and_check(argv, opts, documented, work, also_named=()):
    """Run the command with ``opts`` appended. It either reached the stand-in (every value in its
    documented range) or exited 2 without a traceback, its one ``error:`` line (the last) naming
    an option given or ``also_named``; never a file under ``work``."""
    argv = [*argv, *(f"{k}={v}" for k, v in opts.items())]
    res = CliRunner().invoke(app, argv)
    assert not list(work.iterdir()), argv  # nothing written, whichever way it ended
    if isinstance(res.exception, Reached):
        for k, v in opts.items():
            parse, ok = documented[k]
            assert ok(parse(v)), f"{k}={v!r} got past the checks"
        return
    assert res.exit_code == 2, (argv, res.output, res.exception)
    assert "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    if errors:  # our own checks (else typer's usage box, which names the option itself)
        assert len(errors) == 1 and res.output.strip().endswith(errors[0]), res.output
        # the flag, or the key it sets ("unknown backend 'x'; choose one of: ...")
        keys = [*opts, *also_named]
        named = [
            k for k in keys if any(n in errors[0] for n in (k, k[2:], k[2:].replace("-", "_")))
        ]
        assert named, res.output


def _stand_in(monkeypatch, module, name):
    def reached(*a, **kw):
        raise Reached

    monkeypatch.setattr(module, name, reached)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    from tests.conftest import make_image

    path = tmp_path_factory.mktemp("src") / "a.png"
    make_image(32).save(path)
    return path


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.dictionaries(st.sampled_from(sorted(DOCUMENTED)), _values, min_size=1, max_size=3))
@example(opts={"--guidance": "nan"})  # once wrote an image (NaN < 0 is False)
@example(opts={"--max-batch": "x"})  # once found only after the model loaded
def test_fuzzed_augment_options_load_or_say_which(source, tmp_path_factory, monkeypatch, opts):
    from genie_plugin.diffusion import loading

    _stand_in(monkeypatch, loading, "load_generator")
    work = tmp_path_factory.mktemp("fuzz")
    argv = ["augment", str(source), "--target", "cat", "--out", str(work / "out")]
    _invoke_and_check(argv, opts, DOCUMENTED, work, also_named=["--backbone"])


# bench run's own options (the sampler ones are checked above)
BENCH = {
    "--episodes": (_int, lambda x: x >= 1),
    "--ways": (_int, lambda x: x >= 2),
    "--shots": (_int, lambda x: x >= 1),
    "--steps": DOCUMENTED["--steps"],
    "--resolution": DOCUMENTED["--resolution"],
    "--guidance": DOCUMENTED["--guidance"],
    "--timestep-shift": DOCUMENTED["--timestep-shift"],
    "--guidance-t-min": DOCUMENTED["--guidance-t-min"],
    "--backend": DOCUMENTED["--backend"],
    "--strategy": DOCUMENTED["--strategy"],
    "--dataset": (str, lambda x: x in {"shapes", "mini-imagenet", "tiered-imagenet", "cub",
                                      "mini-imagenet-full", "tiered-imagenet-full"}),
}  # fmt: skip


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.dictionaries(st.sampled_from(sorted(BENCH)), _values, min_size=1, max_size=3))
@example(opts={"--episodes": "-3"})  # once ran and wrote failed rows
def test_fuzzed_bench_run_options_run_or_say_which(tmp_path_factory, monkeypatch, opts):
    from genie_plugin.bench import runner

    _stand_in(monkeypatch, runner, "run_scenario")
    _stand_in(monkeypatch, runner, "scenario_generator")  # --backend auto loads it first
    work = tmp_path_factory.mktemp("bench")
    argv = ["bench", "run", "--out", str(work / "r.jsonl"), "--cache", str(work / "c")]
    _invoke_and_check(argv, opts, BENCH, work, also_named=["--root", "--dataset"])
