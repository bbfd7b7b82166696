"""Shared fixtures: the seeded tiny model (built from configs, cached per session), images."""

from __future__ import annotations

import os

# Never touch the network from tests: set before anything imports huggingface_hub, which reads
# it once (diffusers and transformers then never try a download).
os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    # Never touch the user's cache or the network from tests.
    os.environ.setdefault("GENIE_CACHE_DIR", str(tmp_path_factory.mktemp("genie-cache")))
    os.environ["HF_HUB_OFFLINE"] = "1"
    yield


@pytest.fixture(scope="session")
def tiny_gen():
    from genie_plugin.diffusion import SamplerConfig, load_generator

    return load_generator("tiny-random", device="cpu", sampler=SamplerConfig(steps=10))


def make_image(seed: int, size: int = 40, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size, size + 6, 3), dtype=np.uint8)
    return Image.fromarray(arr).convert(mode)


def assert_same_pixels(a, b) -> None:
    """Equal up to float reduction order: batch composition changes conv/GEMM blocking, which
    can move a pixel across a uint8 rounding boundary (PyTorch is not batch-invariant)."""
    a = np.asarray(a, dtype=np.int16)
    b = np.asarray(b, dtype=np.int16)
    assert a.shape == b.shape
    d = np.abs(a - b)
    assert d.max() <= 1, f"max pixel difference {d.max()}"
    assert (d > 0).mean() < 0.01, f"{(d > 0).mean():.2%} of pixels differ"


@pytest.fixture
def images():
    return [make_image(i) for i in range(4)]


@pytest.fixture(autouse=True)
def _no_global_rng_draws():
    """Fail any test whose code draws from torch's or numpy's global RNG.

    (Python's ``random`` is left out: Click/rich draw from it for temp names and spinners.)
    """
    import torch

    t_state = torch.get_rng_state()
    n_state = np.random.get_state()[1].copy()
    yield
    assert torch.equal(torch.get_rng_state(), t_state), "torch global RNG was drawn from"
    assert np.array_equal(np.random.get_state()[1], n_state), "numpy global RNG was drawn from"


# --- honest CI: a test outside the slow/gpu markers that skips is a failure under
# GENIE_FAIL_ON_SKIP=1 (the README's test command), so a broken install (learn2learn,
# accelerate, optimum/onnxruntime missing) cannot pass as skips.
_ALLOWED_SKIP_MARKERS = {"slow", "gpu"}
_bad_skips: list[str] = []


def _fail_on_skip() -> bool:
    return os.environ.get("GENIE_FAIL_ON_SKIP", "").strip() not in ("", "0")


_config: list = []  # the session's config (the controller's under pytest-xdist)


def pytest_configure(config):
    _config[:] = [config]
    # pytest-randomly shuffles the order (seed in the header) and by default also reseeds the
    # global RNGs around each test: that reseeding is off, as --randomly-dont-reset-seed would
    # (not in addopts: mutmut runs pytest with -p no:randomly, which then rejects the option),
    # so _no_global_rng_draws still sees any draw
    if hasattr(config.option, "randomly_reset_seed"):
        config.option.randomly_reset_seed = False


def pytest_runtest_logreport(report):
    """Every test's report, in the process that prints them (the controller under xdist)."""
    if not report.skipped:
        return
    markers = {k for k in report.keywords if k in _ALLOWED_SKIP_MARKERS}
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if not markers:
        _bad_skips.append(f"{report.nodeid}: {reason}")
    elif _config and any(_selects(_config[0], m) for m in markers):
        _selected_skips.append(f"{report.nodeid}: {reason}")


def pytest_collectreport(report):
    if report.skipped:  # a module-level importorskip
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _bad_skips.append(f"{report.nodeid}: {reason}")


# --- and no green on nothing: `-m gpu` (or `-m slow`) on a machine that cannot run those tests
# fails instead of passing on skips (scripts/gpu_benchmarks.sh relies on it).
_selected_skips: list[str] = []


def _selects(config, marker: str) -> bool:
    import re

    expr = config.option.markexpr or ""
    return re.search(rf"(?<!not )\b{marker}\b", expr) is not None


def pytest_sessionfinish(session, exitstatus):
    if _fail_on_skip() and _bad_skips and exitstatus == 0:
        session.exitstatus = 1
    if _selected_skips and session.exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _selected_skips:
        terminalreporter.write_line(
            f"FAILED: {len(_selected_skips)} explicitly selected slow/gpu test(s) skipped: "
            f"nothing was checked ({_selected_skips[0].split(': ', 1)[-1]})",
            red=True,
        )
    if _fail_on_skip() and _bad_skips:
        terminalreporter.section("skipped outside the slow/gpu markers (GENIE_FAIL_ON_SKIP=1)")
        for line in _bad_skips:
            terminalreporter.write_line(line)
