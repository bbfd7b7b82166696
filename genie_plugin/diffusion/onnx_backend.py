"""The UNet exported through optimum to ONNX and run on onnxruntime (the ``onnx`` backend).

Only the UNet call moves: the scheduler loop, guidance, VAE and text encoder stay in the
project's sampler. optimum's UNet config exports a *scalar* timestep; GeNIe-Ada batches mix
items that joined at different steps, so :class:`PerSampleUNetOnnxConfig` exports a
``(batch,)`` timestep. Exports are cached per (model fingerprint, precision) under the cache
root; sessions are cached per (file, providers).
"""

from __future__ import annotations

import json
import os
import time
from functools import cache
from pathlib import Path

import numpy as np
import torch

from genie_plugin.core.batching import bucket_for, graph_buckets
from genie_plugin.errors import ConfigError


def _configs():
    """optimum's UNet ONNX config with a per-sample timestep (imported lazily: optimum is heavy)."""
    from optimum.exporters.onnx.model_configs import UNetOnnxConfig
    from optimum.utils.input_generators import (
        DummySeq2SeqDecoderTextInputGenerator,
        DummyTimestepInputGenerator,
        DummyVisionInputGenerator,
    )

    class PerSampleTimestepGenerator(DummyTimestepInputGenerator):
        def generate(self, input_name, framework="pt", int_dtype="int64", float_dtype="fp32"):
            if input_name == "timestep":
                return self.random_float_tensor(
                    [self.batch_size], max_value=999, framework=framework, dtype=float_dtype
                )
            return super().generate(input_name, framework, int_dtype, float_dtype)

    class PerSampleUNetOnnxConfig(UNetOnnxConfig):
        DUMMY_INPUT_GENERATOR_CLASSES = (
            DummyVisionInputGenerator,
            PerSampleTimestepGenerator,
            DummySeq2SeqDecoderTextInputGenerator,
        )

        @property
        def inputs(self):
            d = super().inputs
            d["timestep"] = {0: "batch_size"}
            return d

    return PerSampleUNetOnnxConfig


def export_unet(
    gen,
    out_dir: str | Path,
    *,
    fp16: bool = False,
    optimize: bool = False,
    opset: int = 17,
    device: str | None = None,
    replace: bool = True,
) -> dict:
    """Export ``gen.unet`` into ``out_dir`` (see :func:`_export_into`), atomically.

    The export is built in a private folder beside ``out_dir`` and renamed into place when
    complete and checked: a reader (another rank on the shared cache, a killed export rerun)
    sees no folder or a whole one, never a half-written graph. ``replace``: an earlier export
    in ``out_dir`` is replaced (``genie export-onnx``); otherwise the first complete export
    wins and this one is dropped (the cache: two nodes exporting at once). A folder that holds
    anything but an export is refused, not replaced.
    """
    import shutil
    import tempfile

    if gen.adapter.network != "unet":
        raise ConfigError(
            f"ONNX export: {gen.adapter.title} runs a transformer, which this plugin does not "
            "export (optimum exports UNets); use --backend torch, torch-compile or cuda-graphs"
        )
    out = Path(out_dir)
    _check_export_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        report = _export_into(gen, tmp, fp16=fp16, optimize=optimize, opset=opset, device=device)
        text = json.dumps(report).replace(json.dumps(str(tmp))[1:-1], json.dumps(str(out))[1:-1])
        report = json.loads(text)  # the paths where the files will be
        (tmp / "export_report.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        _install(tmp, out, replace=replace)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def _export_config(gen):
    """The UNet's config plus what optimum's exporter reads off the pipeline (SDXL's added
    inputs: the pooled projection's width, the refiner's aesthetic time ids), as optimum's own
    diffusers export sets them, on a copy: the loaded model's config is left as it is."""
    from types import SimpleNamespace

    te = gen.parts.get("text_encoder_2") or gen.parts.get("text_encoder")
    extra = {
        "requires_aesthetics_score": bool(gen.options.get("requires_aesthetics_score", False)),
        "text_encoder_projection_dim": getattr(getattr(te, "config", None), "projection_dim", None),
    }
    return SimpleNamespace(**{**dict(gen.unet.config), **extra})


def _check_export_target(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ConfigError(
            f"--out {out}: exists and is not a folder; name a new or empty folder for the export"
        )
    if out.is_dir() and any(out.iterdir()) and not (out / "genie_onnx.json").is_file():
        raise ConfigError(
            f"--out {out}: a folder with other files in it (no genie_onnx.json: not an "
            "export); name a new or empty folder, nothing there is replaced"
        )


def _install(tmp: Path, out: Path, *, replace: bool) -> None:
    """Rename the finished export ``tmp`` to ``out``; an existing export there is replaced
    (``replace``) or kept (first writer wins), an empty folder is replaced."""
    import secrets
    import shutil

    try:
        os.rename(tmp, out)  # atomic; fails when out is a non-empty folder
        return
    except OSError:
        if not out.is_dir():
            raise
    _check_export_target(out)  # still an export (or empty) now
    if not replace and (out / "genie_onnx.json").is_file():
        return  # another process's complete export: it wins, ours is dropped
    aside = out.with_name(f".{out.name}.old-{secrets.token_hex(4)}")
    os.rename(out, aside)
    try:
        os.rename(tmp, out)
    except OSError:  # someone installed meanwhile: theirs stands
        if not (out / "genie_onnx.json").is_file():
            raise
    shutil.rmtree(aside, ignore_errors=True)


def _export_into(
    gen,
    out_dir: Path,
    *,
    fp16: bool = False,
    optimize: bool = False,
    opset: int = 17,
    device: str | None = None,
) -> dict:
    """Export ``gen.unet`` to ``out_dir/unet/model.onnx`` via optimum; check it; report JSON.

    The export is always traced in fp32. ``fp16`` converts the checked graph to half precision
    afterwards, and ``optimize`` runs onnxruntime's UNet fusions on the fp32 graph *before* the
    conversion (``model_optimized.onnx``): that is the order onnxruntime's own Stable Diffusion
    optimiser uses, and fusing an fp16 *export* fails in GroupNorm fusion ("Raw data size does
    not match"). So an fp16 export needs no GPU. The report (``export_report.json``) lists node
    counts, fused operators, and the parity check against the torch UNet (fp16 graphs: on CUDA).
    """
    import copy
    import shutil

    import onnx
    from optimum.exporters.onnx.convert import export

    out = Path(out_dir)
    (out / "unet").mkdir(parents=True, exist_ok=True)
    dev = device or "cpu"
    p0 = next(gen.unet.parameters())
    if p0.dtype == torch.float32 and p0.device == torch.device(dev):
        unet = gen.unet  # tracing does not change the module; a copy would double peak RAM
    else:
        unet = copy.deepcopy(gen.unet).to(dev, torch.float32).eval()
    cfg = _configs()(_export_config(gen), task="semantic-segmentation", float_dtype="fp32")
    path = out / "unet" / "model.onnx"
    traced = out / "unet-fp32" / "model.onnx" if fp16 else path
    traced.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    import warnings

    # optimum draws its dummy inputs from the global RNG: fork it, seeded, so the caller's
    # stream is untouched; the tracer warns about every shape check in diffusers.
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        torch.manual_seed(0)
        warnings.simplefilter("ignore")
        export(model=unet, config=cfg, output=traced, opset=opset, device=dev)
    del unet
    import gc

    gc.collect()  # the ONNX passes below hold the whole graph in memory (3.4 GB for SD 1.5)
    report: dict = {
        "model": gen.name,
        "fingerprint": gen.fingerprint,
        "precision": "fp16" if fp16 else "fp32",
        "opset": opset,
        "export_s": round(time.time() - t0, 1),
        "files": {"unet": str(path)},
    }
    onnx.checker.check_model(str(traced))  # path form: works above 2 GB (external data)
    report["checker"] = "ok"
    use_gpu = fp16 or str(dev).startswith("cuda")
    if optimize:
        report["optimized"] = _optimize(
            traced, path.with_name("model_optimized.onnx"), use_gpu=use_gpu, fp16=fp16
        )
    if fp16:
        report["fp16_conversion"] = _convert_fp16(traced, path)
        shutil.rmtree(traced.parent, ignore_errors=True)
        onnx.checker.check_model(str(path))
    report["nodes"] = _op_counts(path)
    if fp16 and not str(dev).startswith("cuda"):
        report["parity"] = {"status": "not run: fp16 graphs run on onnxruntime's CUDA provider"}
    else:
        report["parity"] = parity(gen, path, device=dev, fp16=fp16)
        opt = report.get("optimized") or {}
        if opt.get("status") == "ok" and opt["provider"].startswith(
            "CUDA" if str(dev).startswith("cuda") else "CPU"
        ):  # the fused graph against torch too, on the provider it was made for
            opt["parity"] = parity(gen, Path(opt["file"]), device=dev, fp16=fp16)
    meta = {"fingerprint": gen.fingerprint, "precision": report["precision"]}
    (out / "genie_onnx.json").write_text(json.dumps(meta, indent=2) + "\n")
    return report


def _external(path: Path) -> bool:
    # protobuf caps a file at 2 GB: keep weights external when the graph's folder is that large
    return sum(f.stat().st_size for f in path.parent.iterdir() if f.is_file()) > 2**31 - 2**26


def _convert_fp16(src: Path, dst: Path) -> dict:
    """Plain fp32 graph -> fp16 (inputs and outputs too), onnxruntime's converter."""
    import onnx
    from onnxruntime.transformers.onnx_model import OnnxModel

    m = OnnxModel(onnx.load(str(src)))
    m.convert_float_to_float16(keep_io_types=False)
    m.save_model_to_file(str(dst), use_external_data_format=_external(src))
    return {"status": "ok", "file": str(dst)}


def _op_counts(path: Path) -> dict:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    counts: dict[str, int] = {}
    for n in m.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return {"total": sum(counts.values()), "by_op": dict(sorted(counts.items()))}


#: onnxruntime's UNet fusions whose operators only its CUDA provider implements (NhwcConv,
#: GroupNorm, SkipGroupNorm, BiasSplitGelu, BiasAdd, packed QKV/KV attention): a graph fused
#: with them fails on the CPU provider with NOT_IMPLEMENTED, so a CPU export leaves them out.
CUDA_ONLY_FUSIONS = (
    "enable_nhwc_conv",
    "enable_group_norm",
    "enable_skip_group_norm",
    "enable_bias_splitgelu",
    "enable_bias_add",
    "enable_packed_qkv",
    "enable_packed_kv",
)


def fusion_options(use_gpu: bool):
    """onnxruntime's UNet fusion options for the provider the graph will run on, and the names
    of the fusions left out for it."""
    from onnxruntime.transformers.fusion_options import FusionOptions

    opts = FusionOptions("unet")
    off = [] if use_gpu else [f for f in CUDA_ONLY_FUSIONS if getattr(opts, f, False)]
    for f in off:
        setattr(opts, f, False)
    return opts, off


def _optimize(path: Path, out: Path, *, use_gpu: bool, fp16: bool) -> dict:
    """onnxruntime's transformer fusions for UNets, for the provider the graph is meant for
    (CUDA when ``use_gpu``, else the CPU); a failure is reported, not raised. A CPU graph is
    opened on the CPU provider before it counts as made."""
    provider = "CUDAExecutionProvider" if use_gpu else "CPUExecutionProvider"
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        opts, off = fusion_options(use_gpu)
        m = optimize_model(
            str(path),
            model_type="unet",
            opt_level=0,
            optimization_options=opts,
            use_gpu=use_gpu,
            only_onnxruntime=False,
        )
        if fp16:
            m.convert_float_to_float16(keep_io_types=False)
        m.save_model_to_file(str(out), use_external_data_format=_external(path))
        fused = {k: v for k, v in m.get_fused_operator_statistics().items() if v}
        if not use_gpu:  # refuse a graph the CPU cannot run, naming the operator
            import onnxruntime as ort

            ort.InferenceSession(str(out), _session_options(), providers=[provider])
        return {
            "status": "ok",
            "file": str(out),
            "provider": provider,
            "fused": fused,
            "fusions_left_out": off,
            "nodes": _op_counts(out),
        }
    except Exception as exc:  # noqa: BLE001 - recorded in the report
        out.unlink(missing_ok=True)  # never leave a graph behind that its provider cannot run
        return {
            "status": "failed",
            "provider": provider,
            "error": f"{type(exc).__name__}: {exc}"[:500],
        }


def _session_options(threads: int | None = None):
    """``threads``: CPU threads (default: as many as torch uses — onnxruntime's default, every
    core, in each of ``bench run --jobs N``'s one-thread workers would oversubscribe N times)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = torch.get_num_threads() if threads is None else threads
    so.inter_op_num_threads = 1
    return so


@cache
def _session(path: str, providers: tuple[str, ...], threads: int):
    """One session per graph, providers and thread count."""
    import onnxruntime as ort

    return ort.InferenceSession(path, _session_options(threads), providers=list(providers))


def providers_for(device) -> tuple[str, ...]:
    import onnxruntime as ort

    avail = ort.get_available_providers()
    if torch.device(device).type == "cuda":
        if "CUDAExecutionProvider" not in avail:
            raise ConfigError(
                "--backend onnx on CUDA needs onnxruntime-gpu (pip install '.[gpu]'); "
                f"available providers: {avail}"
            )
        return ("CUDAExecutionProvider", "CPUExecutionProvider")
    return ("CPUExecutionProvider",)


def graph_variant(path: Path) -> str:
    """Which graph runs, by content: the file name plus the sha256 of the graph and of its
    external data files, so plain, fused, fp16 and a user's own export never share a cache key."""
    import hashlib

    from genie_plugin.diffusion.fingerprint import content_hash

    h = hashlib.sha256()
    files = [path] + sorted(p for p in path.parent.iterdir() if p.is_file() and p.suffix != ".onnx")
    for p in files:
        h.update(f"{p.name}\0{content_hash(p)}\n".encode())
    return f"{path.name}:sha256:{h.hexdigest()[:16]}"


#: conditioning record names -> the UNet graph's input names (optimum's UNet export)
ONNX_INPUTS = {"text": "encoder_hidden_states", "pooled": "text_embeds", "time_ids": "time_ids",
               "timestep_cond": "timestep_cond"}  # fmt: skip


class OnnxDenoiser:
    """``denoiser(sample, t, ehs)`` on an onnxruntime session (IO binding on CUDA tensors)."""

    def __init__(self, path: str | Path, device, *, cuda_graphs: bool = False) -> None:
        self.path = str(path)
        self.device = torch.device(device)
        if cuda_graphs and self.device.type != "cuda":  # before anything loads
            raise ConfigError("ONNX CUDA graphs need --device cuda (onnxruntime-gpu)")
        self.variant = graph_variant(Path(path))
        self.providers = providers_for(self.device)
        self.session = _session(self.path, self.providers, torch.get_num_threads())
        self.input_types = {i.name: i.type for i in self.session.get_inputs()}
        self.cuda_graphs = cuda_graphs
        self.buckets = graph_buckets(512)
        self._graphs: dict[tuple, tuple] = {}  # (bucket, shapes) -> (session, binding, buffers)

    def _dtype(self, name: str):
        return torch.float16 if "float16" in self.input_types[name] else torch.float32

    def __call__(self, sample: torch.Tensor, t: torch.Tensor, cond) -> torch.Tensor:
        feeds = {
            "sample": sample.to(self._dtype("sample")).contiguous(),
            "timestep": t.reshape(-1).expand(len(sample)).to(self._dtype("timestep")).contiguous(),
        }
        if isinstance(cond, torch.Tensor):  # the SD graph's one conditioning input
            cond = {"text": cond}
        for name, x in cond.items():
            onnx_name = ONNX_INPUTS.get(name, name)
            if onnx_name not in self.input_types:
                raise ConfigError(
                    f"{self.path}: the ONNX graph has no input for the model's {name!r} "
                    f"conditioning (inputs: {', '.join(self.input_types)}); export this model "
                    "again with `genie export-onnx`"
                )
            feeds[onnx_name] = x.to(self._dtype(onnx_name)).contiguous()
        if self.device.type == "cuda" and self.cuda_graphs:
            return self._run_graph(feeds).to(sample.dtype)  # pragma: no cover - CUDA only
        if self.device.type == "cuda":
            return self._run_cuda(feeds).to(sample.dtype)  # pragma: no cover - CUDA only
        res = self.session.run(None, {k: v.cpu().numpy() for k, v in feeds.items()})[0]
        return torch.from_numpy(np.asarray(res)).to(sample.device, sample.dtype)

    def _run_cuda(self, feeds: dict) -> torch.Tensor:  # pragma: no cover - CUDA only
        binding = self.session.io_binding()
        idx = self.device.index or 0
        for name, x in feeds.items():
            binding.bind_input(name, "cuda", idx, _np_dtype(x.dtype), list(x.shape), x.data_ptr())
        out = torch.empty_like(feeds["sample"])
        binding.bind_output(
            "out_sample", "cuda", idx, _np_dtype(out.dtype), list(out.shape), out.data_ptr()
        )
        self.session.run_with_iobinding(binding)
        return out

    def _run_graph(self, feeds: dict) -> torch.Tensor:  # pragma: no cover - CUDA only
        """Replay onnxruntime's CUDA graph for this bucket (one session per padded shape).

        onnxruntime captures on the first run of a session with ``enable_cuda_graph`` and needs
        the same device addresses on every later run, so each bucket owns static buffers.
        """
        n = len(feeds["sample"])
        b = bucket_for(n, self.buckets)
        key = (b, *(tuple(v.shape[1:]) for v in feeds.values()))
        if key not in self._graphs:
            import onnxruntime as ort

            sess = ort.InferenceSession(
                self.path,
                _session_options(),
                providers=[
                    (
                        "CUDAExecutionProvider",
                        {"device_id": self.device.index or 0, "enable_cuda_graph": "1"},
                    )
                ],
            )
            bufs = {
                k: torch.empty((b, *v.shape[1:]), dtype=v.dtype, device=self.device)
                for k, v in feeds.items()
            }
            out = torch.empty_like(bufs["sample"])
            binding = sess.io_binding()
            idx = self.device.index or 0
            for name, x in bufs.items():
                binding.bind_input(
                    name, "cuda", idx, _np_dtype(x.dtype), list(x.shape), x.data_ptr()
                )
            binding.bind_output(
                "out_sample", "cuda", idx, _np_dtype(out.dtype), list(out.shape), out.data_ptr()
            )
            self._graphs[key] = (sess, binding, bufs, out)
        sess, binding, bufs, out = self._graphs[key]
        for k, v in feeds.items():
            bufs[k][:n].copy_(v)
            if b > n:
                bufs[k][n:].copy_(v[-1:].expand(b - n, *v.shape[1:]))
        sess.run_with_iobinding(binding)
        return out[:n].clone()


def _np_dtype(dt):
    return np.float16 if dt == torch.float16 else np.float32


def parity(gen, path: Path, *, device="cpu", fp16: bool = False, batch: int = 3) -> dict:
    """Max abs difference ONNX vs torch network on a seeded batch with per-sample timesteps and
    the family's own conditioning record (SDXL's pooled embeddings and time ids too)."""
    dt = torch.float16 if fp16 else torch.float32
    g = torch.Generator().manual_seed(0)
    if gen.vae is not None:
        x, t, cond = gen.adapter.example_inputs(gen, batch, g)
    else:  # a bare UNet (the throughput benchmarks): its own sample size, random text rows
        from genie_plugin.diffusion.conditioning import Conditioning

        c = gen.unet.config
        x = torch.randn(batch, c.in_channels, c.sample_size, c.sample_size, generator=g)
        t = torch.linspace(999, 21, batch)
        cond = Conditioning({"text": torch.randn(batch, 8, c.cross_attention_dim, generator=g)})
    x, t = x.to(device, dt), t.to(device)
    cond = cond.map(lambda v: v.to(device, dt if v.is_floating_point() else v.dtype))
    unet = gen.unet
    p0 = next(unet.parameters())
    if p0.dtype != dt or p0.device != torch.device(device):
        import copy

        unet = copy.deepcopy(unet).to(device, dt)  # never change the caller's modules
    with torch.no_grad():
        ref = gen.adapter.forward(unet, x, t, cond).float().cpu()
    got = OnnxDenoiser(path, device)(x, t, cond)
    diff = (got.float().cpu() - ref).abs()
    return {
        "max_abs": float(diff.max()),
        "mean_abs": float(diff.mean()),
        "batch": batch,
        "timesteps": t.tolist(),
    }


def export_dir_for(gen, fp16: bool) -> Path:
    return export_dir(gen.fingerprint, fp16)


def export_dir(fingerprint: str, fp16: bool) -> Path:
    """Where a model's export is cached: by its content fingerprint and precision."""
    from genie_plugin.paths import cache_root

    fp = fingerprint.replace("sha256:", "")
    return cache_root() / "onnx" / f"{fp}-{'fp16' if fp16 else 'fp32'}"


def graph_file(d: Path, device, optimized: bool = True) -> Path:
    """The graph of export folder ``d`` that runs on ``device``: onnxruntime's fused UNet ops
    (GroupNorm, NhwcConv, ...) are CUDA kernels, so a CPU runs the plain graph."""
    use_opt = optimized and torch.device(device).type == "cuda"
    f = d / "unet" / ("model_optimized.onnx" if use_opt else "model.onnx")
    return f if f.exists() else d / "unet" / "model.onnx"


def cached_graph_variant(fingerprint: str, fp16: bool, device) -> str | None:
    """The variant the cached export of a model would run on ``device``, or None when there is
    no export of that model yet (known without loading the model: :mod:`.lazy`)."""
    d = export_dir(fingerprint, fp16)
    try:
        meta = json.loads((d / "genie_onnx.json").read_text())
    except (OSError, ValueError):
        return None
    f = graph_file(d, device)
    if meta.get("fingerprint") != fingerprint or not f.exists():
        return None
    return graph_variant(f)


#: A private export folder untouched this long was left by a killed export (SD 1.5 takes
#: minutes): the next export of that model removes it.
STALE_EXPORT_S = 6 * 3600.0


def _export_to_cache(gen, d: Path, fp16: bool) -> None:
    """Export into the shared cache's ``onnx/`` folder: one process per node exports (a lock
    beside the folder; the others wait and then read it), and the export is renamed into
    place whole, so across nodes (where the lock may be node-local) the first complete export
    wins and nobody reads a partial one."""
    from filelock import FileLock

    d.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(d.parent / f".{d.name}.lock")):
        if (d / "genie_onnx.json").exists():
            return  # exported by another process while we waited
        import shutil

        if d.is_dir() and not (d / "genie_onnx.json").exists():
            shutil.rmtree(d)  # a torn export from before exports were atomic
        for old in d.parent.glob(f".{d.name}.tmp-*"):  # left by a killed export (SIGKILL)
            if time.time() - old.stat().st_mtime > STALE_EXPORT_S:
                shutil.rmtree(old, ignore_errors=True)
        on_gpu = torch.device(gen.device).type == "cuda"  # fused kernels are CUDA-only
        export_unet(gen, d, fp16=fp16, optimize=on_gpu, device=str(gen.device), replace=False)


def onnx_denoiser(
    gen, *, onnx_dir: str | Path | None = None, optimized: bool = True, cuda_graphs: bool = False
):
    """A denoiser for ``gen`` from an export folder (exported into the cache when not given)."""
    fp16 = gen.dtype == torch.float16
    d = Path(onnx_dir) if onnx_dir else export_dir_for(gen, fp16)
    meta = d / "genie_onnx.json"
    if onnx_dir is None and not meta.exists():
        _export_to_cache(gen, d, fp16)
    if not (d / "unet" / "model.onnx").exists():
        raise ConfigError(
            f"{d}: no unet/model.onnx; create it with `genie export-onnx --model ... --out {d}`"
        )
    if not meta.exists() and getattr(gen, "adapters", ()):
        raise ConfigError(
            f"{d}: an ONNX graph with no genie_onnx.json (not made by `genie export-onnx`), so "
            "nothing says it holds this model's LoRA-fused weights; export the adapted model "
            "with `genie export-onnx --model ... --lora ...` or leave out --onnx-dir"
        )
    if meta.exists():
        m = json.loads(meta.read_text())
        if m.get("fingerprint") != gen.fingerprint:
            raise ConfigError(
                f"{d} was exported from another model ({m.get('fingerprint')}, loaded "
                f"{gen.fingerprint}); export this model with `genie export-onnx`"
            )
    return OnnxDenoiser(graph_file(d, gen.device, optimized), gen.device, cuda_graphs=cuda_graphs)


def backend_denoiser(gen, options: dict):
    """``--backend onnx`` (:mod:`genie_plugin.backends`)."""
    return onnx_denoiser(gen, cuda_graphs=False, **options)


def backend_denoiser_graphs(gen, options: dict):
    """``--backend onnx-cuda-graphs``."""
    return onnx_denoiser(gen, cuda_graphs=True, **options)
