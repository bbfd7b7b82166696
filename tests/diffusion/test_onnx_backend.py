"""ONNX backend (CPU, tiny model): optimum export with a per-sample timestep, checker, parity
with torch, a mixed-r GeNIe batch through onnxruntime, and the CLI."""

import json

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.onnx
pytest.importorskip("optimum.exporters.onnx")
pytest.importorskip("onnxruntime")

from genie_plugin.diffusion.onnx_backend import OnnxDenoiser, export_unet  # noqa: E402
from genie_plugin.diffusion.sampler import SampleItem  # noqa: E402
from tests.conftest import make_image  # noqa: E402


@pytest.fixture(scope="module")
def exported(tiny_gen, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    return out, export_unet(tiny_gen, out)


def test_export_checks_and_matches_torch_per_sample(tiny_gen, exported):
    out, rep = exported
    assert rep["checker"] == "ok" and rep["parity"]["max_abs"] < 1e-3
    import onnx

    m = onnx.load(str(out / "unet" / "model.onnx"))
    t_in = next(i for i in m.graph.input if i.name == "timestep")
    assert len(t_in.type.tensor_type.shape.dim) == 1  # (batch,), not optimum's scalar
    # every sample its own timestep, batch size not seen at export
    g = torch.Generator().manual_seed(1)
    c = tiny_gen.unet.config
    x = torch.randn(5, c.in_channels, c.sample_size, c.sample_size, generator=g)
    t = torch.tensor([981.0, 741.0, 501.0, 261.0, 21.0])
    ehs = torch.randn(5, 77, c.cross_attention_dim, generator=g)
    with torch.no_grad():
        ref = tiny_gen.unet(x, t, encoder_hidden_states=ehs).sample
    got = OnnxDenoiser(out / "unet" / "model.onnx", "cpu")(x, t, ehs)
    assert (got - ref).abs().max() < 1e-3
    # and the per-sample timestep matters: one shared t gives other outputs
    same = OnnxDenoiser(out / "unet" / "model.onnx", "cpu")(x, torch.full((5,), 500.0), ehs)
    assert (same - got).abs().max() > 1e-3


def _psnr(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mse = ((a - b) ** 2).mean()
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def test_mixed_ratio_genie_batch_onnx_matches_torch(tiny_gen, exported):
    out, _ = exported
    onnx_gen = tiny_gen.with_backend("onnx", onnx_dir=out)
    assert onnx_gen.describe()["backend"] == "onnx"
    src = make_image(3, 32)
    items = [
        SampleItem("a photo of a star.", r, 10 + k, src)
        for k, r in enumerate((0.5, 0.6, 0.7, 0.8, 0.9))
    ] + [SampleItem("a photo of a dog.", 1.0, 99, None)]
    a = tiny_gen.generate(items, max_batch=8)
    b = onnx_gen.generate(items, max_batch=8)
    for x, y in zip(a, b, strict=True):
        assert _psnr(x, y) >= 35


def test_onnx_dir_of_another_model_is_refused(tiny_gen, exported, tmp_path):
    import shutil

    from genie_plugin.errors import ConfigError

    out, _ = exported
    other = tmp_path / "other"
    shutil.copytree(out, other)
    meta = json.loads((other / "genie_onnx.json").read_text())
    (other / "genie_onnx.json").write_text(json.dumps({**meta, "fingerprint": "sha256:beef"}))
    with pytest.raises(ConfigError, match="another model"):
        tiny_gen.with_backend("onnx", onnx_dir=other)


def test_cli_export_and_augment_with_onnx_backend(tmp_path):
    from typer.testing import CliRunner

    from genie_cli.main import app

    r = CliRunner().invoke(
        app, ["export-onnx", "--model", "tiny-random", "--out", str(tmp_path / "x")]
    )
    assert r.exit_code == 0, r.output
    assert "checker ok" in r.output
    rep = json.loads((tmp_path / "x" / "export_report.json").read_text())
    assert rep["parity"]["max_abs"] < 1e-3
    make_image(5, 32).save(tmp_path / "src.png")
    r = CliRunner().invoke(
        app,
        [
            "augment",
            str(tmp_path / "src.png"),
            "--target",
            "star",
            "--strategy",
            "genie",
            "--model",
            "tiny-random",
            "--steps",
            "4",
            "--backend",
            "onnx",
            "--onnx-dir",
            str(tmp_path / "x"),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "out" / "manifest.jsonl").read_text().splitlines()[0])
    assert rec["model"]["backend"] == "onnx"


def test_fp16_export_is_fused_then_converted_without_a_gpu(tiny_gen, tmp_path):
    # onnxruntime's own order (fuse the fp32 graph, then convert): fusing an fp16 *export*
    # fails in GroupNorm fusion on SD graphs, so no CUDA device is needed to export fp16
    import onnx

    rep = export_unet(tiny_gen, tmp_path, fp16=True, optimize=True, device="cpu")
    assert rep["precision"] == "fp16" and rep["checker"] == "ok"
    assert rep["optimized"]["status"] == "ok", rep["optimized"]
    assert rep["parity"]["status"].startswith("not run")  # fp16 graphs run on CUDA
    for name in ("model.onnx", "model_optimized.onnx"):
        m = onnx.load(str(tmp_path / "unet" / name))
        types = {i.name: i.type.tensor_type.elem_type for i in m.graph.input}
        assert types["sample"] == onnx.TensorProto.FLOAT16, name
    fused = rep["optimized"]["fused"]
    assert sum(fused.values()) > 0  # something was fused (GroupNorm / attention / ...)
    assert not (tmp_path / "unet-fp32").exists()  # the fp32 trace is not left behind


def test_cpu_export_fuses_only_what_the_cpu_provider_runs(tiny_gen, tmp_path):
    """--optimize for the CPU: onnxruntime's CUDA-only UNet fusions are left out, so the fused
    graph opens and runs on the CPU provider and matches torch; the CUDA fusion set, as the
    export used to apply everywhere, makes a graph the CPU cannot open (NhwcConv / GroupNorm)."""
    import onnx
    import onnxruntime as ort

    from genie_plugin.diffusion.onnx_backend import CUDA_ONLY_FUSIONS, _optimize, _session_options

    rep = export_unet(tiny_gen, tmp_path, optimize=True, device="cpu")
    opt = rep["optimized"]
    assert opt["status"] == "ok", opt
    assert opt["provider"] == "CPUExecutionProvider"
    assert set(opt["fusions_left_out"]) <= set(CUDA_ONLY_FUSIONS) and opt["fusions_left_out"]
    ops = {n.op_type for n in onnx.load(opt["file"]).graph.node}
    assert not ops & {"NhwcConv", "GroupNorm", "SkipGroupNorm", "BiasSplitGelu", "BiasAdd"}
    assert opt["fused"] and all(v > 0 for v in opt["fused"].values())
    assert opt["parity"]["max_abs"] < 1e-4  # the fused graph, on the CPU, against torch

    cuda = _optimize(
        tmp_path / "unet" / "model.onnx", tmp_path / "cuda.onnx", use_gpu=True, fp16=False
    )
    assert cuda["status"] == "ok" and cuda["provider"] == "CUDAExecutionProvider"
    cuda_ops = {n.op_type for n in onnx.load(str(tmp_path / "cuda.onnx")).graph.node}
    assert cuda_ops & {"NhwcConv", "GroupNorm", "BiasSplitGelu"}
    with pytest.raises(Exception, match="NOT_IMPLEMENTED|implementation"):
        ort.InferenceSession(
            str(tmp_path / "cuda.onnx"), _session_options(), providers=["CPUExecutionProvider"]
        )


def test_an_export_appears_whole_or_not_at_all(tiny_gen, tmp_path, monkeypatch):
    """Exports are built in a private folder and renamed into place: while one runs (here:
    its parity check), the target does not exist; an export that fails leaves nothing."""
    from genie_plugin.diffusion import onnx_backend as ob

    out = tmp_path / "cache" / "onnx" / "fp-fp32"
    seen = []
    real = ob.parity

    def watching(gen, path, **kw):
        seen.append((out.exists(), out not in path.parents))
        return real(gen, path, **kw)

    monkeypatch.setattr(ob, "parity", watching)
    rep = export_unet(tiny_gen, out)
    assert seen == [(False, True)] and rep["files"]["unet"] == str(out / "unet" / "model.onnx")
    assert (out / "genie_onnx.json").is_file() and (out / "export_report.json").is_file()
    assert [p.name for p in out.parent.iterdir()] == ["fp-fp32"]  # no temp folder left

    def failing(gen, path, **kw):
        raise RuntimeError("killed mid-export")

    monkeypatch.setattr(ob, "parity", failing)
    other = tmp_path / "cache" / "onnx" / "fp-fp16"
    with pytest.raises(RuntimeError, match="killed"):
        export_unet(tiny_gen, other)
    assert sorted(p.name for p in out.parent.iterdir()) == ["fp-fp32"]


def test_the_first_complete_export_wins_in_the_cache(tiny_gen, tmp_path, monkeypatch):
    """Two nodes exporting one model into the shared cache (their locks node-local): the
    second finds a complete export in place and drops its own; a torn folder left by an
    export from before exports were atomic is replaced, and the lock file sits beside it."""
    from genie_plugin.diffusion import onnx_backend as ob

    d = tmp_path / "onnx" / "fp-fp32"
    export_unet(tiny_gen, d, replace=False)
    first = (d / "unet" / "model.onnx").stat().st_ino
    export_unet(tiny_gen, d, replace=False)
    assert (d / "unet" / "model.onnx").stat().st_ino == first
    assert sorted(p.name for p in d.parent.iterdir()) == ["fp-fp32"]
    export_unet(tiny_gen, d)  # genie export-onnx: an earlier export is replaced
    assert (d / "unet" / "model.onnx").stat().st_ino != first

    torn = tmp_path / "cache2" / "onnx" / "fp-fp32"
    (torn / "unet").mkdir(parents=True)
    (torn / "unet" / "model.onnx").write_bytes(b"half a graph")
    import os
    import time

    killed = torn.parent / ".fp-fp32.tmp-dead"  # a SIGKILLed export's private folder
    (killed / "unet").mkdir(parents=True)
    old = time.time() - ob.STALE_EXPORT_S - 60
    os.utime(killed, (old, old))
    running = torn.parent / ".fp-fp32.tmp-live"  # another node's export, still going
    running.mkdir()
    monkeypatch.setattr(ob, "export_dir_for", lambda gen, fp16: torn)
    den = ob.onnx_denoiser(tiny_gen)
    assert (torn / "genie_onnx.json").is_file() and den is not None
    assert (torn / "unet" / "model.onnx").stat().st_size > 1000
    assert (torn.parent / ".fp-fp32.lock").exists()
    assert not killed.exists() and running.exists()


def test_export_refuses_to_replace_what_is_not_an_export(tiny_gen, tmp_path):
    from genie_plugin.errors import ConfigError

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.tex").write_text("years of work")
    with pytest.raises(ConfigError, match="not an export"):
        export_unet(tiny_gen, notes)
    assert (notes / "thesis.tex").read_text() == "years of work"
    f = tmp_path / "file.onnx"
    f.write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        export_unet(tiny_gen, f)
    assert f.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == [
        "file.onnx", "notes"
    ]  # fmt: skip
