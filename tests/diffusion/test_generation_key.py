"""The generation key: every input that changes an image changes it, equivalent requests share
it, and a cache written by an older sampler is never read as a new one."""

import dataclasses
import shutil

import pytest
import torch

from genie_plugin.diffusion.cache import AugmentationCache
from genie_plugin.diffusion.fingerprint import (
    folder_fingerprint,
    loader_files,
    single_file_fingerprint,
)
from genie_plugin.diffusion.key import GENERATION_VERSION, generation_key
from genie_plugin.diffusion.model import ModelHelpers
from genie_plugin.diffusion.sampler import SampleItem
from genie_plugin.diffusion.tiny import tiny_model_dir
from tests.conftest import make_image

SRC = make_image(0)


def _item(**kw):
    return SampleItem(
        **{"prompt": "a photo of a cat.", "ratio": 0.8, "seed": 7, "source": SRC, **kw}
    )


def _view(gen, **attrs):
    """``gen`` with other attributes (dtype, device, backend...) without touching modules."""
    helpers = ModelHelpers(stats=attrs.pop("stats")) if "stats" in attrs else gen.helpers
    return dataclasses.replace(gen, helpers=helpers, **attrs)


class _Variant:
    def __init__(self, variant):
        self.variant = variant


def _key(gen, item=None):
    return generation_key(gen, item or _item()).digest()


def test_every_input_that_changes_the_image_changes_the_key(tiny_gen, monkeypatch):
    from genie_plugin.diffusion import key as key_mod

    monkeypatch.setattr(key_mod, "_cuda_accelerator", lambda i: "NVIDIA H100 sm_90")
    g = tiny_gen.with_sampler(guidance_scale=5.0)
    base = _key(g)
    with monkeypatch.context() as m:  # the same CPU run with other kernels (AVX2 vs AVX-512)
        other = "cpu AVX2" if key_mod._cpu_accelerator() != "cpu AVX2" else "cpu AVX512"
        m.setattr(key_mod, "_cpu_accelerator", lambda: other)
        isa = _key(g)
    varied = {
        "model weights": _key(_view(g, fingerprint="sha256:other")),
        "scheduler": _key(g.with_sampler(scheduler="euler")),
        "steps": _key(g.with_sampler(steps=g.sampler.steps + 1)),
        "guidance": _key(g.with_sampler(guidance_scale=6.0)),
        "guidance floor": _key(g.with_sampler(guidance_t_min=0.2)),
        "timestep shift": _key(g.with_sampler(timestep_shift=0.5)),
        "step cap": _key(g.with_sampler(max_item_steps=2)),
        "timestep spacing": _key(g.with_sampler(timestep_spacing="trailing")),
        "ratio meaning": _key(g.with_sampler(ratio_meaning="level")),
        "resolution": _key(g.with_sampler(resolution=g.native_resolution * 2)),
        "backend": _key(_view(g, backend="onnx")),
        "onnx variant": _key(_view(g, backend="onnx", denoiser=_Variant("model_optimized.onnx:1"))),
        "dtype": _key(_view(g, dtype=torch.float16)),
        "device type": _key(_view(g, device=torch.device("cuda"))),
        "cpu isa": isa,
        "memory format": _key(_view(g, stats={"channels_last": True})),
        "prompt": _key(g, _item(prompt="a photo of a dog.")),
        "ratio": _key(g, _item(ratio=0.7)),
        "seed": _key(g, _item(seed=8)),
        "source": _key(g, _item(source=make_image(1))),
    }
    table = {name: key != base for name, key in varied.items()}
    assert all(table.values()), [n for n, changed in table.items() if not changed]
    assert len(set(varied.values())) == len(varied)  # and no two variations collide
    onnx_plain = _key(_view(g, backend="onnx", denoiser=_Variant("model.onnx:2")))
    assert onnx_plain != varied["onnx variant"]


def test_equivalent_requests_share_the_key(tiny_gen):
    g = tiny_gen
    pairs = {
        "native resolution given or not": (g, g.with_sampler(resolution=g.native_resolution)),
        "guidance <= 1 (no CFG)": (
            g.with_sampler(guidance_scale=1.0),
            g.with_sampler(guidance_scale=0.5, guidance_t_min=0.3),
        ),
        "step cap >= steps": (g, g.with_sampler(max_item_steps=g.sampler.steps + 5)),
        "device index": (g, _view(g, device=torch.device("cpu:0"))),
    }
    for name, (a, b) in pairs.items():
        assert _key(a) == _key(b), name
    noise = _item(ratio=1.0, source=None)
    assert _key(g, noise) == _key(g, _item(ratio=1.0, source=make_image(3)))  # r = 1: no source


def test_a_step_cap_counts_only_where_it_drops_steps(tiny_gen):
    """genie_ada_lite's probe (5 solver steps per candidate) runs an r = 0.5 candidate of a
    10-step sampler on its whole tail: GeNIe-Ada's own candidate, so one key (one image); where
    the cap drops a step the key differs."""
    from genie_plugin.diffusion.schedulers import schedule_plan

    g = tiny_gen.with_sampler(steps=10, guidance_scale=5.0)
    plan = schedule_plan(g)
    n = {r: len(plan.item_timesteps(r)) for r in (0.5, 0.8)}
    assert n == {0.5: 5, 0.8: 8}
    half, late = _item(ratio=0.5), _item(ratio=0.8)
    assert _key(g.with_sampler(max_item_steps=5), half) == _key(g, half)
    assert _key(g.with_sampler(max_item_steps=8), late) == _key(g, late)
    assert _key(g.with_sampler(max_item_steps=4), half) != _key(g, half)
    assert _key(g.with_sampler(max_item_steps=5), late) != _key(g, late)
    # and the images agree: the cap leaves the r = 0.5 item's steps alone
    a = g.generate([half], max_batch=1)[0]
    b = g.with_sampler(max_item_steps=5).generate([half], max_batch=1)[0]
    c = g.with_sampler(max_item_steps=4).generate([half], max_batch=1)[0]
    assert a.tobytes() == b.tobytes() != c.tobytes()


def test_old_cache_entries_are_not_read_as_new(tiny_gen, tmp_path):
    cache = AugmentationCache(tmp_path)
    key = generation_key(tiny_gen, _item())
    old = dataclasses.replace(key, version=GENERATION_VERSION - 1)
    cache.put(old.digest(), make_image(5), old.to_dict())
    assert old.digest() != key.digest()
    assert cache.get(key.digest()) is None and cache.get(old.digest()) is not None
    digest, record = cache.key(tiny_gen, _item())
    assert digest == key.digest() and record["version"] == GENERATION_VERSION
    assert record["dtype"] == "float32" and record["device_type"] == "cpu"


def _flip_middle_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_sharded_weights_are_covered_shard_by_shard(tmp_path):
    """A sharded component (index + shards, as SDXL's and Flux's are published) is hashed by
    its index and every shard it names; a shard name leaving the folder is refused."""
    import json

    from genie_plugin.errors import ModelFormatError

    copy = tmp_path / "sd"
    shutil.copytree(tiny_model_dir(), copy)
    te = copy / "text_encoder"
    (te / "model.safetensors").rename(te / "model-00001-of-00002.safetensors")
    (te / "model-00002-of-00002.safetensors").write_bytes(b"second shard")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors",
                            "b": "model-00002-of-00002.safetensors"}}  # fmt: skip
    (te / "model.safetensors.index.json").write_text(json.dumps(index))
    names = {f.name for f in loader_files(copy) if f.parent == te}
    assert names == {"config.json", "model.safetensors.index.json",
                     "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}  # fmt: skip
    before = folder_fingerprint(copy)
    (te / "model-00002-of-00002.safetensors").write_bytes(b"second shard, fine-tuned")
    assert folder_fingerprint(copy) != before
    index["weight_map"]["b"] = "../../elsewhere.safetensors"
    (te / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelFormatError, match="leaves the folder"):
        folder_fingerprint(copy)


def test_a_hub_blob_is_fingerprinted_by_its_name(tmp_path):
    """A hub snapshot's files are symlinks to blobs named by their sha256: read, not hashed."""
    import hashlib

    copy = tmp_path / "sd"
    shutil.copytree(tiny_model_dir(), copy)
    before = folder_fingerprint(copy)
    w = next((copy / "unet").glob("*.safetensors"))
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    digest = hashlib.sha256(w.read_bytes()).hexdigest()
    w.rename(blobs / digest)
    w.symlink_to(blobs / digest)
    assert folder_fingerprint(copy) == before  # same content, same fingerprint
    (blobs / digest).write_bytes(b"not opened: the name is the hash")
    assert folder_fingerprint(copy) == before


def test_fingerprint_covers_every_byte_and_a_single_files_config(tmp_path):
    copy = tmp_path / "sd"
    shutil.copytree(tiny_model_dir(), copy)
    before = folder_fingerprint(copy)
    assert folder_fingerprint(copy) == before  # stable (and memoised)
    _flip_middle_byte(next((copy / "unet").glob("*.safetensors")))
    assert folder_fingerprint(copy) != before
    (copy / "README.md").write_text("not read by the loader")
    after = folder_fingerprint(copy)
    (copy / "README.md").write_text("still not read")
    assert folder_fingerprint(copy) == after
    # weight variants from_pretrained never picks (no variant=, safetensors first), a fast
    # tokenizer's file, the safety checker: not read, not hashed
    unet_w = next((copy / "unet").glob("*.safetensors"))
    for junk in ("diffusion_pytorch_model.fp16.safetensors", "diffusion_pytorch_model.bin",
                 "diffusion_pytorch_model.non_ema.safetensors"):  # fmt: skip
        (copy / "unet" / junk).write_bytes(b"not read")
    (copy / "tokenizer" / "tokenizer.json").write_text("{}")
    (copy / "safety_checker").mkdir()
    (copy / "safety_checker" / "model.safetensors").write_bytes(b"x")
    assert folder_fingerprint(copy) == after
    assert unet_w in loader_files(copy) and not any(
        f.name.endswith((".fp16.safetensors", ".bin", ".non_ema.safetensors", "tokenizer.json"))
        for f in loader_files(copy)
    )
    # a single file is hashed whole, together with the architecture folder it is read with
    f = tmp_path / "model.safetensors"
    shutil.copy(next((copy / "unet").glob("*.safetensors")), f)
    a = single_file_fingerprint(f, str(copy))
    assert a == single_file_fingerprint(f, str(copy))
    assert a != single_file_fingerprint(f, None)
    other = tmp_path / "other"
    shutil.copytree(copy, other)
    (other / "unet" / "config.json").write_text(
        (other / "unet" / "config.json")
        .read_text()
        .replace('"norm_eps": 1e-05', '"norm_eps": 1e-06')
    )
    assert folder_fingerprint(other) != folder_fingerprint(copy)
    assert single_file_fingerprint(f, str(other)) != a
    _flip_middle_byte(f)
    assert single_file_fingerprint(f, str(copy)) != a


@pytest.mark.parametrize(
    "field", ["dtype", "device_type", "accelerator", "memory_format", "backend_variant"]
)
def test_manifest_records_the_key_fields(tiny_gen, field):
    assert field in generation_key(tiny_gen, _item()).to_dict()


def test_digests_are_the_cache_format_and_stay_put():
    """Cache file names are these digests: a change orphans every user's cache, so it must be
    deliberate (a new key field, or a GENERATION_VERSION bump; then update these literals).
    Last change: the ``accelerator`` field (GPU model and compute capability, CPU ISA)."""
    from PIL import Image

    from genie_plugin.diffusion.key import GenerationKey, image_digest

    assert image_digest(Image.new("RGB", (4, 4), (1, 2, 3))) == "de0fe245ad46ec799539"
    fields = dict(
        model="m", scheduler="dpm++", steps=10, guidance_scale=5.0, guidance_t_min=0.2,
        timestep_shift=1.0, max_item_steps=None, resolution=64, backend="torch",
        backend_variant="", dtype="float32", device_type="cpu", accelerator="cpu AVX2",
        memory_format="contiguous", prompt="a photo of a cat.", ratio=0.8, seed=7, source="abc",
    )  # fmt: skip
    assert GENERATION_VERSION == 2
    assert GenerationKey(**fields).digest() == "83e044b589c9e87a07bb1d37ac35acc6"


def _stub_model(**kw):
    """What generation_key reads, and nothing else."""
    from types import SimpleNamespace

    from genie_plugin.diffusion.settings import SamplerConfig

    base = dict(
        sampler=SamplerConfig(steps=10, guidance_scale=5.0), fingerprint="fp", resolution=64,
        backend="torch", denoiser=object(), dtype=torch.float32, device=torch.device("cpu"),
        stats={}, family="sd", guidance_embedded=False,
    )  # fmt: skip
    return SimpleNamespace(**{**base, **kw})


def test_key_fields_normalise_as_documented():
    from genie_plugin.diffusion.settings import SamplerConfig

    def key(**kw):
        return generation_key(_stub_model(**kw), _item())

    k = key()
    assert (k.memory_format, k.backend_variant, k.device_type) == ("contiguous", "", "cpu")
    assert key(stats={"channels_last": True}).memory_format == "channels_last"
    assert key(denoiser=_Variant("fused")).backend_variant == "fused"
    # guidance <= 1 is the conditional prediction alone: one key, recorded as 1.0 / floor 0.0
    unguided = [
        key(sampler=SamplerConfig(steps=10, guidance_scale=g, guidance_t_min=t))
        for g in (0.0, 0.5, 1.0)
        for t in (0.0, 0.3)
    ]
    assert len({u.digest() for u in unguided}) == 1
    assert (unguided[0].guidance_scale, unguided[0].guidance_t_min) == (1.0, 0.0)
    # a per-item step cap at or above the steps changes nothing
    capped = {
        key(sampler=SamplerConfig(steps=10, guidance_scale=5.0, max_item_steps=c)).digest()
        for c in (10, 12)
    }
    assert capped == {k.digest()}
    guided = {key(sampler=SamplerConfig(steps=10, guidance_scale=g)).digest() for g in (1.5, 1.7)}
    assert len(guided) == 2 and unguided[0].digest() not in guided


@pytest.mark.parametrize(
    "device, kind",
    [("cuda:1", "cuda"), ("cpu", "cpu"), (torch.device("cpu"), "cpu")],
)
def test_device_type_from_strings_devices_and_device_like_objects(device, kind):
    from types import SimpleNamespace

    from genie_plugin.diffusion.key import _device_type

    assert _device_type(device) == kind
    assert _device_type(SimpleNamespace(type="mps")) == "mps"  # its type, not its repr


def test_the_accelerator_is_in_the_key_and_read_live(monkeypatch):
    """An A100's and an H100's images must not share keys; one CPU's ISA is part of it too."""
    from genie_plugin.diffusion import key as key_mod

    k = generation_key(_stub_model(), _item())
    assert k.accelerator == f"cpu {torch.backends.cpu.get_cpu_capability()}"
    monkeypatch.setattr(key_mod, "_cuda_accelerator", lambda i: f"NVIDIA A100 sm_80 #{i}")
    a100 = generation_key(_stub_model(device=torch.device("cuda", 1)), _item())
    assert a100.accelerator == "NVIDIA A100 sm_80 #1" and a100.device_type == "cuda"
    monkeypatch.setattr(key_mod, "_cuda_accelerator", lambda i: "NVIDIA H100 80GB HBM3 sm_90")
    h100 = generation_key(_stub_model(device=torch.device("cuda", 1)), _item())
    assert h100.digest() != a100.digest()
    assert key_mod.accelerator("mps") == "mps"
