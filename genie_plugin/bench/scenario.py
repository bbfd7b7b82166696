"""Scenarios: a benchmark's full definition (dataset, split, ways, shots, model, backbone,
settings), the shipped ones, and the checks that run before any work."""

from __future__ import annotations

import functools
import json
import typing
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Annotated

from pydantic import Field, TypeAdapter, ValidationError

from genie_plugin import plugins
from genie_plugin.data.specs import all_datasets
from genie_plugin.errors import ConfigError, GenieError, UnknownNameError, check_known_keys
from genie_plugin.sinks import quoted

DEFAULT_STRATEGIES = (
    "none",
    "weak",
    "strong",
    "mixup",
    "cutmix",
    "text2image",
    "img2img",
    "img2img_high",
    "genie",
    "genie_ada",
    "genie_ada_lite",
)


SCENARIO_DIR = Path(__file__).with_name("scenarios")  # shipped scenarios (package data)
#: Short dataset names used in scenario names (``mini-5w1s``); shapes is the embedded benchmark.
SHORT_NAMES = {
    "shapes": "embedded",
    "mini-imagenet": "mini",
    "tiered-imagenet": "tiered",
    "mini-imagenet-full": "mini-full",
    "tiered-imagenet-full": "tiered-full",
    "cub": "cub",
    "cifarfs": "cifarfs",
    "fc100": "fc100",
}
#: What the embedded benchmark uses where a shapes scenario leaves a field unset. Only shapes
#: gets these: the shapes model and backbone are never used on another dataset unless named.
SHAPES_DEFAULTS = {"model": "embedded", "backbone": "embedded", "view_size": 32, "steps": 10}


Text = Annotated[str, Field(strict=True)]
Count = Annotated[int, Field(ge=1, strict=True)]  # strict: "many", 2.5 and true are refused


@functools.cache
def _adapters() -> dict:
    hints = typing.get_type_hints(Scenario, include_extras=True)
    return {f.name: TypeAdapter(hints[f.name]) for f in fields(Scenario)}


def _validate(scn) -> None:
    """Every field against its annotation (pydantic): one line naming the key, the value and
    what is expected."""
    for name, adapter in _adapters().items():
        value = getattr(scn, name)
        if name in ("strategies", "lora") and isinstance(value, list):
            value = tuple(value)
        try:
            adapter.validate_python(value)
        except ValidationError as exc:
            why = exc.errors()[0]["msg"]
            raise ConfigError(
                f"scenario key {name} = {quoted(value)}: {why[0].lower()}{why[1:]}"
            ) from None


def scenario_name(dataset: str, ways: int, shots: int) -> str:
    """``mini-5w1s``: dataset, ways and shots, as the shipped scenario files are named."""
    return f"{SHORT_NAMES.get(dataset, dataset)}-{ways}w{shots}s"


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """A benchmark's full definition. Model, backbone, steps and view size have no default
    outside the embedded shapes benchmark: a real dataset takes them from its shipped scenario
    (:func:`shipped_scenario`) or from the user, never from the toy."""

    # "": derived from dataset, ways and shots (scenario_name); it names files: kept short
    name: Annotated[str, Field(strict=True, max_length=120)] = ""
    dataset: Text = "shapes"
    split: Text = "novel"
    root: Text | None = None  # dataset folder (learn2learn's file layout); not for shapes
    ways: Annotated[int, Field(ge=2, strict=True)] = 5
    shots: Count = 1
    queries: Count = 16
    episodes: Count = 50
    seed: Annotated[int, Field(ge=0, strict=True)] = 0
    # names ("genie", "genie:ratio=0.6"), objects ({"name": "genie", "ratio": 0.6, "as":
    # "genie@0.6"}) and grids ({"name": "genie", "grid": {"ratio": [0.5, 0.6]}}): one row per
    # instance (registry.expand_strategies); held as names and expanded objects
    strategies: Annotated[tuple[Text | dict, ...], Field(min_length=1)] = DEFAULT_STRATEGIES
    model: Text | None = None
    # a local diffusers folder giving a single-file checkpoint's architecture (``--config``)
    model_config: Text | None = None
    backbone: Text | None = None
    steps: Count | None = None  # reference: 50 DPM-Solver++ steps; the embedded benchmark: 10
    # generation size; None: the model's native (SD 1.5: 512)
    resolution: Annotated[int, Field(ge=8, multiple_of=8, strict=True)] | None = None
    # None: the model's recommendation (genie_sampler.json; embedded: 5 and 0.2), else the
    # reference (CFG 7.5, no shift)
    guidance: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    # sampler time shift (core.schedule.shift_timesteps)
    timestep_shift: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    # guidance floor (SamplerConfig.guidance_t_min)
    guidance_t_min: Annotated[float, Field(ge=0, lt=1)] | None = None
    # LoRAs fused into the model, "SOURCE[:SCALE]" (diffusion.adapters), and the sampler
    # settings that few-step and flow models need; None: the model's recommendation
    lora: tuple[Text, ...] = ()
    scheduler: Text | None = None
    timestep_spacing: Text | None = None
    ratio_meaning: Text | None = None
    backend: Text = "torch"  # UNet backend (diffusion.model.BACKENDS)
    # UNet and VAE channels-last (GPU convolutions): a generation-key input, so it lives here,
    # where `bench generate` and `bench run` both read it
    channels_last: Annotated[bool, Field(strict=True)] = False
    real_views: Annotated[int, Field(ge=0, strict=True)] = 5
    gen_views: Annotated[int, Field(ge=0, strict=True)] = 1
    view_size: Count | None = None  # reference: 224; the embedded benchmark: 32

    def __post_init__(self) -> None:
        from genie_plugin.diffusion.model import check_backend

        _validate(self)
        check_backend(self.backend)
        _check_sampler_keys(self)
        from genie_plugin.registry import expand_strategies

        refs = expand_strategies(self.strategies, known_only=False)
        object.__setattr__(self, "strategies", tuple(r.to_entry() for r in refs))
        object.__setattr__(self, "_refs", {r.label: r for r in refs})
        if self.dataset not in all_datasets():
            raise UnknownNameError(
                f"scenario key dataset = {self.dataset!r}: unknown; choose one of {all_datasets()}"
            )
        if self.dataset == "shapes":
            for k, v in SHAPES_DEFAULTS.items():
                if getattr(self, k) is None:
                    object.__setattr__(self, k, v)
        if not self.name:
            object.__setattr__(self, "name", scenario_name(self.dataset, self.ways, self.shots))

    def __hash__(self) -> int:  # entries may be objects: hash the normal form
        return hash(json.dumps(self.to_dict(), sort_keys=True, default=str))

    @property
    def labels(self) -> tuple[str, ...]:
        """The strategy instances' labels, in order: what rows, reports and jobs name them by."""
        return tuple(self._refs)

    def ref(self, label: str):
        """The :class:`~genie_plugin.registry.StrategyRef` labelled ``label``."""
        try:
            return self._refs[label]
        except KeyError:
            raise UnknownNameError(
                f"scenario {self.name!r} has no strategy {label!r}; it runs {', '.join(self._refs)}"
            ) from None

    def missing_options(self) -> list[str]:
        """Options this scenario needs before it can run (``--model``, ``--backbone``, ...)."""
        need = {
            "model": "--model",
            "backbone": "--backbone",
            "steps": "--steps",
            "view_size": "view_size (scenario key)",
        }
        return [opt for k, opt in need.items() if getattr(self, k) is None]

    def require_runnable(self) -> None:
        """Raise naming the options a real dataset needs when nothing sensible can default."""
        missing = self.missing_options()
        if missing:
            raise ConfigError(
                f"scenario {self.name!r} ({self.dataset}) does not say which "
                f"{' / '.join(missing)} to use, and the shapes model and backbone are only for "
                f"the shapes dataset: pass {', '.join(m.split()[0] for m in missing)} or start "
                f"from a shipped scenario (`genie bench run --dataset {self.dataset}`)"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["strategies"] = list(self.strategies)
        d["lora"] = list(self.lora)
        for k, default in _LATER_DEFAULTS.items():  # keys added later: absent at their default,
            if d[k] == default:  # so every scenario written before them reads the same
                del d[k]
        return dict(sorted(d.items()))

    @classmethod
    def from_dict(cls, d: dict) -> Scenario:
        check_known_keys(cls, d, "scenario")
        kw = dict(d)
        for k in ("strategies", "lora"):  # JSON has lists; anything else is refused
            if isinstance(kw.get(k), list):
                kw[k] = tuple(kw[k])
        return cls(**kw)

    @classmethod
    def load(cls, path: str | Path) -> Scenario:
        """A scenario file, or a shipped scenario by name (``mini-5w1s``)."""
        p = Path(path)
        if not p.exists() and (SCENARIO_DIR / f"{p.name}.json").is_file():
            p = SCENARIO_DIR / f"{p.name}.json"
        try:
            d = json.loads(p.read_text())
            if not isinstance(d, dict):
                raise ConfigError(f"a scenario is a JSON object of keys, got {type(d).__name__}")
            return cls.from_dict(d)
        except GenieError as exc:
            raise type(exc)(f"{p}: {exc}") from None
        except FileNotFoundError:
            names = ", ".join(sorted(f.stem for f in SCENARIO_DIR.glob("*.json")))
            raise ConfigError(
                f"{p}: scenario file not found (shipped scenarios by name: {names})"
            ) from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{p}: not valid JSON ({exc})") from None


def _check_sampler_keys(scn) -> None:
    """lora, scheduler, timestep_spacing and ratio_meaning by the rules of the code that reads
    them, before any work, in one line naming the scenario key."""
    from genie_plugin.diffusion.adapters import AdapterSpec
    from genie_plugin.diffusion.settings import SamplerConfig

    for item in scn.lora:
        AdapterSpec.parse(item, option="scenario key lora:")
    given = {k: getattr(scn, k) for k in ("scheduler", "timestep_spacing", "ratio_meaning")}
    try:
        SamplerConfig(**{k: v for k, v in given.items() if v is not None})
    except GenieError as exc:
        raise type(exc)(f"scenario key {exc}") from None


#: Scenario keys added after boards were committed, and their defaults.
_LATER_DEFAULTS = {"lora": [], "scheduler": None, "timestep_spacing": None, "ratio_meaning": None}


def shipped_scenario(dataset: str, *, shots: int = 1, ways: int = 5) -> Scenario:
    """The shipped scenario of ``dataset`` (reference settings), 5-way 1- or 5-shot.

    Other ways/shots start from the 1-shot file with the numbers changed. Raises naming the
    options to pass when the dataset has no shipped scenario.
    """
    files = sorted(SCENARIO_DIR.glob(f"{SHORT_NAMES.get(dataset, dataset)}-*.json"))
    by_name = {f.stem: f for f in files}
    exact = by_name.get(scenario_name(dataset, ways, shots))
    base = exact or by_name.get(scenario_name(dataset, 5, 1))
    if base is None:
        raise ConfigError(
            f"no shipped scenario for dataset {dataset!r}: pass a scenario file, or --model "
            "and --backbone with the dataset"
        )
    scn = Scenario.load(base)
    if exact is None:
        scn = Scenario.from_dict({**scn.to_dict(), "ways": ways, "shots": shots, "name": ""})
    return scn


def preflight(scn: Scenario) -> None:
    """Everything that can be checked before any work: options set, dataset files present,
    model and backbone weights reachable. Raises a one-line GenieError naming the culprit."""
    from genie_plugin.diffusion.loading import check_model_available
    from genie_plugin.fewshot.backbones import check_backbone_spec

    scn.require_runnable()
    if not plugins.has(plugins.DATASETS, scn.dataset):  # a named dataset has no files to check
        from genie_plugin.data.specs import canonical_split, require_split

        require_split(scn.dataset, scn.root or "~/data", canonical_split(scn.split))
    # an unknown or broken one stops here, before any work
    strategies = [scn.ref(s).create() for s in scn.labels]
    if any(st.generative for st in strategies):
        check_model_available(scn.model, option="--model")
    check_backbone_spec(scn.backbone, option="--backbone")
