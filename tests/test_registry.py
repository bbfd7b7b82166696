"""Strict registry and entry-point plugin discovery (a real installed fake distribution)."""

import re
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from genie_plugin.errors import ConfigError, UnknownNameError
from genie_plugin.registry import REGISTRY, Registry, register_strategy

ROOT = Path(__file__).resolve().parents[1]


def _pyproject_strategies() -> dict[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return data["project"]["entry-points"]["genie_plugin.strategies"]


def test_builtins_are_pyproject_entry_points(monkeypatch):
    """pyproject's entry points are the one list of built-ins: each registers from there."""
    monkeypatch.setenv("GENIE_DISABLE_PLUGIN_AUTOLOAD", "1")
    reg = Registry()
    assert reg.names() == sorted(_pyproject_strategies())
    for name, target in _pyproject_strategies().items():
        entry = reg.get(name)
        assert (entry.target, entry.distribution) == (target, "genie-fewshot")


def test_duplicates_raise_and_unknown_lists_known(monkeypatch):
    monkeypatch.setenv("GENIE_DISABLE_PLUGIN_AUTOLOAD", "1")
    reg = Registry()
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("genie", object)
    with pytest.raises(UnknownNameError) as exc:
        reg.get("geni")
    msg = str(exc.value)
    assert msg.startswith("unknown strategy 'geni'; known strategies: ")
    assert ", genie, genie_ada, " in msg and "text2image" in msg
    with pytest.raises(ConfigError, match="snake_case"):
        reg.register("My-Strategy", object)


def test_fnmatch_listing_and_decorator(monkeypatch):
    monkeypatch.setenv("GENIE_DISABLE_PLUGIN_AUTOLOAD", "1")
    reg = Registry()
    assert reg.names("genie*") == ["genie", "genie_ada", "genie_ada_fast", "genie_ada_lite"]
    assert reg.names("img2img*") == ["img2img", "img2img_high"]

    @register_strategy("my_thing", registry=reg)
    class MyThing:
        pass

    assert reg.get("my_thing").factory is MyThing
    with pytest.raises(ConfigError):
        register_strategy("my_thing", registry=reg)(MyThing)


@pytest.fixture
def fake_plugin_dist(tmp_path, monkeypatch):
    """Install a fake third-party distribution (dist-info + module) on sys.path."""
    pkg = tmp_path / "acme_aug.py"
    pkg.write_text(
        textwrap.dedent('''
        from dataclasses import dataclass
        from genie_plugin.strategies.base import Strategy, StrategyConfig

        @dataclass(frozen=True, kw_only=True)
        class FlipConfig(StrategyConfig):
            p: float = 0.5

        class FlipStrategy(Strategy):
            """Acme's flip strategy."""
            name = "acme_flip"
            config_cls = FlipConfig
            generative = False
    ''')
    )
    (tmp_path / "broken_aug.py").write_text("raise ImportError('missing acme-gpu-kernels')\n")
    di = tmp_path / "acme_aug-1.2.3.dist-info"
    di.mkdir()
    (di / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-aug\nVersion: 1.2.3\n")
    (di / "entry_points.txt").write_text(
        "[genie_plugin.strategies]\n"
        "acme_flip = acme_aug:FlipStrategy\n"
        "acme_broken = broken_aug:Thing\n"
        "genie = acme_aug:FlipStrategy\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("acme_aug", None)
    sys.modules.pop("broken_aug", None)


def test_third_party_plugin_is_discovered_lazily(fake_plugin_dist, monkeypatch):
    monkeypatch.delenv("GENIE_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    reg = Registry()
    assert "acme_aug" not in sys.modules  # nothing loaded before the first lookup
    entry = reg.get("acme_flip")
    assert entry.distribution == "acme-aug" and entry.version == "1.2.3"
    s = entry.create(p=0.9)
    assert s.config.p == 0.9
    # the broken plugin is reported by name and does not break the others
    broken = reg.broken()
    assert "acme_broken" in broken
    assert "failed to load: ImportError: missing acme-gpu-kernels" in broken["acme_broken"]
    with pytest.raises(UnknownNameError, match="acme_broken.*failed to load"):
        reg.get("acme_broken")
    # a plugin cannot hijack a built-in name
    assert "genie" in broken and "already registered" in broken["genie"]
    assert reg.get("genie").distribution == "genie-fewshot"
    assert "genie" in reg.names() and "acme_flip" in reg.names()


def test_disable_autoload_gives_builtins_only(fake_plugin_dist, monkeypatch):
    monkeypatch.setenv("GENIE_DISABLE_PLUGIN_AUTOLOAD", "1")
    reg = Registry()
    assert reg.names() == sorted(_pyproject_strategies())
    with pytest.raises(UnknownNameError):
        reg.get("acme_flip")


def test_runtime_entries_record_what_they_were_given(monkeypatch):
    """Factories get the config and overrides as passed; runtime entries say where they came
    from; a duplicate names the first registration; unregister/reload forget them."""
    monkeypatch.setenv("GENIE_DISABLE_PLUGIN_AUTOLOAD", "1")
    reg = Registry()

    def factory(config, **kw):
        return config, kw

    entry = reg.register("echo", factory)
    assert (entry.name, entry.distribution, entry.version) == ("echo", "<runtime>", "")
    assert entry.target == repr(factory)
    assert entry.create("CFG", a=1) == ("CFG", {"a": 1})
    assert reg.create("echo", "CFG", b=2) == ("CFG", {"b": 2})
    with pytest.raises(ConfigError, match=re.escape(f"by <runtime> {factory!r})")):
        reg.register("echo", factory)

    @register_strategy("echo_too", registry=reg)
    def echo_too(config, **kw):
        return config

    assert reg.get("echo_too").target == echo_too.__qualname__
    import functools

    part = functools.partial(factory)  # no __qualname__: the entry shows its repr
    register_strategy("echo_partial", registry=reg)(part)
    assert reg.get("echo_partial").target == repr(part)
    reg.unregister("echo")
    reg.unregister("never_registered")  # no error
    with pytest.raises(UnknownNameError):
        reg.get("echo")
    reg.reload()
    assert "echo_too" not in reg.names() and "genie" in reg.names()


def test_module_level_helpers_use_the_global_registry():
    from genie_plugin.registry import create_strategy, get_strategy, list_strategies

    assert get_strategy("genie").name == "genie"
    assert create_strategy("genie", None, ratio=0.55).config.ratio == 0.55
    from dataclasses import replace

    cfg = replace(create_strategy("genie").config, ratio=0.3)
    assert create_strategy("genie", cfg).config.ratio == 0.3
    assert list_strategies("img2img*") == ["img2img", "img2img_high"]
    assert list_strategies() == REGISTRY.names() and "genie" in list_strategies()


def test_builtins_carry_the_package_version_and_autoload_reads_zero_as_enabled(
    fake_plugin_dist, monkeypatch
):
    from genie_plugin import __version__

    monkeypatch.setenv("GENIE_DISABLE_PLUGIN_AUTOLOAD", "0")  # "0" means: do load plugins
    reg = Registry()
    assert reg.get("genie").version == __version__
    assert reg.get("acme_flip").distribution == "acme-aug"


def test_another_group_may_be_empty_but_ours_must_have_the_builtins(monkeypatch):
    from genie_plugin import registry as mod

    assert Registry(group="acme.nothing_here").names() == []
    monkeypatch.setattr(mod.metadata, "entry_points", lambda group: [])
    with pytest.raises(ConfigError) as exc:
        Registry().names()
    assert str(exc.value).startswith("no built-in strategies: genie-fewshot's entry points")
    assert str(exc.value).endswith("run `pip install -e .` in the checkout")


def test_entry_points_without_a_distribution_are_named_unknown():
    from types import SimpleNamespace

    from genie_plugin.registry import _dist_name, _dist_version

    for ep in (SimpleNamespace(), SimpleNamespace(dist=None)):
        assert (_dist_name(ep), _dist_version(ep)) == ("<unknown>", "")
