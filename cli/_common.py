"""Shared CLI plumbing: error reporting, model options, progress. Heavy imports stay lazy."""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import re
import sys
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from genie_plugin.backends import help_text as backend_help
from genie_plugin.errors import ConfigError, GenieError

from . import INTERRUPTED, exit_code

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Built-in name (embedded, tiny-random), diffusers folder, .safetensors/.ckpt file or hub id.",
    ),
]
ConfigOpt = Annotated[
    str | None,
    typer.Option(
        help="Local diffusers folder giving the architecture of a single-file checkpoint."
    ),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        help="dpm++ (reference), ddim, euler, lcm, tcd or flow-euler (default: the model's "
        "recommendation, e.g. lcm for an LCM model, else dpm++)."
    ),
]
StepsOpt = Annotated[
    int | None,
    typer.Option(
        help="Scheduler steps for r = 1 (default: the model's recommendation, else the "
        "reference 50)."
    ),
]
TimestepSpacingOpt = Annotated[
    str | None,
    typer.Option(
        help="DDPM timestep spacing: linspace (reference), trailing (Turbo models), leading."
    ),
]
RatioMeaningOpt = Annotated[
    str | None,
    typer.Option(
        help="What r is: strength (diffusers' img2img start step, default) or level (the start "
        "noise level itself: t = T*r, sigma = r; see docs/models.md)."
    ),
]
LoraOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--lora",
        help="LoRA fused into the model, SOURCE[:SCALE] (a .safetensors file, a folder with one, "
        "or a hub id; LCM-LoRA, TCD...); repeat for several. In every key.",
    ),
]
GuidanceOpt = Annotated[
    float | None,
    typer.Option(
        help="Classifier-free guidance scale (default: the model's recommendation, else the "
        "reference 7.5; the embedded model recommends 5)."
    ),
]
ResolutionOpt = Annotated[
    int | None, typer.Option(help="Image size; default: the model's native size (512 for SD 1.5).")
]
DeviceOpt = Annotated[
    str | None, typer.Option(help="cuda, cpu, cuda:1 ... (default: cuda if available).")
]
BackendOpt = Annotated[
    str,
    typer.Option(
        help=backend_help()
        + " onnx is exported into the cache on first use unless --onnx-dir is given; auto's "
        "choice is cached, printed and recorded."
    ),
]
TimestepShiftOpt = Annotated[
    float | None,
    typer.Option(
        help="Warp of the timestep list (SD3-style shift, endpoints kept); < 1 for small-latent "
        "models, so a given r destroys less of the source. Default: the model's "
        "recommendation (embedded: 0.2), else 1 = diffusers' linspace."
    ),
]
GuidanceTMinOpt = Annotated[
    float | None,
    typer.Option(
        help="Guidance floor: classifier-free guidance only at timesteps >= this fraction of "
        "the training steps, the conditional prediction alone below (the lower end of "
        "Kynkäänniemi et al.'s 2024 guidance interval; the upper end is the start). "
        "Default: the model's recommendation, else 0 = guidance at every step."
    ),
]
ChannelsLastOpt = Annotated[
    bool, typer.Option(help="Run UNet and VAE channels-last (faster convolutions on GPUs).")
]
OnnxDirOpt = Annotated[
    Path | None, typer.Option(help="Folder written by `genie export-onnx` (with --backend onnx).")
]
SeedOpt = Annotated[int, typer.Option(help="Run seed; per-image seeds are hashed from it.")]
MaxBatchOpt = Annotated[
    str,
    typer.Option(
        help="Images per UNet batch, or auto: measured on the loaded model to fill 80% of the "
        "free GPU memory (16 on a CPU)."
    ),
]
BackboneOpt = Annotated[
    str | None,
    typer.Option(
        help="Backbone for GeNIe-Ada scoring: embedded, a timm NAME, NAME:PATH or NAME:random."
    ),
]


def fail(message: str) -> typer.Exit:
    from rich.console import Console

    from genie_plugin.sinks import markup

    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]error:[/] {markup(message)}"
    )
    return typer.Exit(code=2)


_FILE_SYSTEM_ERRORS = {
    errno.ENOSPC: "free some space and rerun",
    errno.EDQUOT: "free some of your quota and rerun",
    errno.EROFS: "a read-only file system: choose another folder",
    errno.EACCES: "no permission: choose another folder or fix its permissions",
    errno.EPERM: "not permitted: choose another folder or fix its permissions",
    errno.ENOTDIR: "a part of the path is a file, not a folder: fix the path",
    errno.EISDIR: "a folder where a file was expected: name a file",
    errno.ENAMETOOLONG: "a name too long for the file system: shorten it",
    errno.ENOTEMPTY: "a folder that should be empty is not (half-deleted?): remove it and rerun",
    errno.ENOENT: "no such file or folder: check the path",
    errno.EEXIST: "already exists: remove it or choose another path",
    errno.ELOOP: "a symlink loop: fix the link",
    errno.EMFILE: "too many open files: raise `ulimit -n` and rerun",
    errno.EIO: "an I/O error from the disk or network file system: check it and rerun",
    errno.ESTALE: "a stale network file handle: remount or rerun",
}


def handle_errors(fn: Callable) -> Callable:
    """Turn GenieError, a full disk or an unwritable folder into a one-line message and exit
    code 2, an interrupt into exit code 130 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except GenieError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP (cli.Stopped)
            print(INTERRUPTED, file=sys.stderr)
            raise typer.Exit(code=exit_code(exc)) from None
        except BrokenPipeError:  # `genie ... | head`: the reader has all it wanted
            import os

            with contextlib.suppress(OSError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(code=141) from None  # 128 + SIGPIPE, as a shell reports it
        except OSError as exc:  # every one a line naming the file: none is a bug of ours alone
            where = exc.filename or "a file"
            if exc.filename2:
                where = f"{where} -> {exc.filename2}"
            hint = _FILE_SYSTEM_ERRORS.get(exc.errno, "check the path and rerun")
            raise fail(
                f"{where}: {exc.strerror or exc} ({hint}); "
                "nothing half-written was left, finished results and cached images are kept"
            ) from None

    return wrapper


@dataclass(frozen=True, kw_only=True)
class ModelOptions:
    """The model options ``augment`` and ``sweep`` share (None: the model's recommendation)."""

    model: str = "embedded"
    config: str | None = None
    scheduler: str | None = None
    steps: int | None = None
    guidance: float | None = None
    resolution: int | None = None
    timestep_shift: float | None = None
    guidance_t_min: float | None = None
    device: str | None = None
    backend: str = "torch"
    onnx_dir: Path | None = None
    channels_last: bool = False
    timestep_spacing: str | None = None
    ratio_meaning: str | None = None
    lora: tuple[str, ...] = ()

    def settings(self) -> dict:
        """The sampler settings given on the command line (SamplerConfig field names)."""
        return {
            "scheduler": self.scheduler,
            "steps": self.steps,
            "guidance_scale": self.guidance,
            "resolution": self.resolution,
            "timestep_shift": self.timestep_shift,
            "guidance_t_min": self.guidance_t_min,
            "timestep_spacing": self.timestep_spacing,
            "ratio_meaning": self.ratio_meaning,
        }


#: The options every model-loading command takes: (name, annotated type, default).
MODEL_PARAMS = (
    ("model", ModelOpt, "embedded"),
    ("config", ConfigOpt, None),
    ("scheduler", SchedulerOpt, None),
    ("steps", StepsOpt, None),
    ("guidance", GuidanceOpt, None),
    ("resolution", ResolutionOpt, None),
    ("timestep_shift", TimestepShiftOpt, None),
    ("guidance_t_min", GuidanceTMinOpt, None),
    ("device", DeviceOpt, None),
    ("backend", BackendOpt, "torch"),
    ("onnx_dir", OnnxDirOpt, None),
    ("channels_last", ChannelsLastOpt, False),
    ("timestep_spacing", TimestepSpacingOpt, None),
    ("ratio_meaning", RatioMeaningOpt, None),
    ("lora", LoraOpt, None),
)


def model_options(fn: Callable) -> Callable:
    """Give a command the model options (:data:`MODEL_PARAMS`) as one ``opts: ModelOptions``
    argument: declared once here, the same flags and help on every command."""
    sig = inspect.signature(fn, eval_str=True)
    own = [p for p in sig.parameters.values() if p.name != "opts"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=ann)
        for name, ann, default in MODEL_PARAMS
    ]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        given = {name: kwargs.pop(name) for name, _, _ in MODEL_PARAMS}
        given["lora"] = tuple(given["lora"] or ())
        opts = ModelOptions(**given)
        return fn(*args, opts=opts, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=[*own, *added])
    wrapper.__annotations__ = {
        **{p.name: p.annotation for p in own},
        **{name: ann for name, ann, _ in MODEL_PARAMS},
        "return": sig.return_annotation,
    }
    return wrapper


#: SamplerConfig field → the CLI flag that sets it.
_SETTING_FLAGS = {
    "scheduler": "--scheduler",
    "steps": "--steps",
    "guidance_scale": "--guidance",
    "resolution": "--resolution",
    "timestep_shift": "--timestep-shift",
    "guidance_t_min": "--guidance-t-min",
    "timestep_spacing": "--timestep-spacing",
    "ratio_meaning": "--ratio-meaning",
}


def load_model(opts: ModelOptions):
    """Load the model the options name, with a status line while it loads."""
    from genie_plugin.diffusion.loading import load_configured
    from genie_plugin.diffusion.settings import SamplerConfig

    # every given setting checked by SamplerConfig's own rules before the model loads, the
    # message naming the flag the user typed
    try:
        SamplerConfig(**{k: v for k, v in opts.settings().items() if v is not None})
    except ConfigError as exc:
        msg = str(exc)
        for field, flag in _SETTING_FLAGS.items():
            msg = re.sub(rf"\b{field}\b", flag, msg)
        raise ConfigError(msg) from None
    where = "" if opts.backend == "torch" else f" ({opts.backend} UNet)"
    with status(f"loading model {opts.model}{where}"):
        gen = load_configured(
            opts.model,
            device=opts.device,
            config=opts.config,
            settings=opts.settings(),
            backend=opts.backend,
            backend_options={"onnx_dir": opts.onnx_dir}
            if opts.backend.startswith("onnx") or opts.backend == "auto"
            else {},
            channels_last=opts.channels_last,
            lora=opts.lora,
        )
    if "backend_choice" in gen.stats:
        typer.echo(f"backend {gen.stats['backend_choice']}", err=True)
    return gen


def check_max_batch(value: str) -> None:
    """--max-batch is an integer or auto: checked before any work."""
    from genie_plugin.diffusion.memory import parse_max_batch

    parse_max_batch(value)


def max_batch_for(gen, value) -> int:
    """Resolve --max-batch (an integer or auto) for the loaded model, saying what auto chose."""
    from genie_plugin.diffusion.memory import parse_max_batch, resolve_max_batch

    n = resolve_max_batch(gen, value)
    if parse_max_batch(value) == "auto":
        typer.echo(f"--max-batch auto: {n} images per UNet batch", err=True)
    return n


@contextmanager
def status(message: str):
    """A spinner with ``message`` (paths and names in it are text, never markup)."""
    from rich.console import Console

    from genie_plugin.sinks import markup

    with Console(stderr=True).status(markup(message)):
        yield


@contextmanager
def image_step_progress(total: int, description: str):
    """A rich progress bar counting UNet image-steps; yields the ``advance`` callback."""
    from genie_plugin.progress import make_progress

    with make_progress("image-steps", transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def echo_note(message: str) -> None:
    """A remark on stderr that is not an error (e.g. "animated; using the first frame")."""
    from genie_plugin.sinks import terminal

    typer.echo(terminal(message), err=True)


def check_out_dir(out: Path, option: str = "--out") -> Path:
    """Before any work: ``out`` is (or can become) a folder this process can write into."""
    if out.exists() and not out.is_dir():
        raise GenieError(f"{option} {out}: exists and is not a folder")
    check_writable(out, option)
    return out


def check_writable(folder: Path, option: str) -> None:
    """``folder`` exists and is writable, or its nearest existing parent is (it can be made);
    else one line naming it. Writes nothing."""
    import os

    probe = Path(folder).expanduser().absolute()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise GenieError(f"{option} {folder}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        why = (
            "is read-only"
            if probe == Path(folder).expanduser().absolute()
            else f"cannot be made in {probe}"
        )
        raise GenieError(f"{option} {folder}: {why} (no write permission); choose another folder")
