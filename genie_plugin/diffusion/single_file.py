"""Save a diffusers SD model as one checkpoint file in the original (CompVis/LDM) layout.

Why: users hold SD weights as single ``.safetensors`` files in the original layout, loaded by
``--model FILE --config DIR``; CI rehearses that path with the embedded model in that layout.
diffusers ships only the other direction (``single_file_utils.convert_ldm_*``), so this module
inverts it: its fixed key tables are read from diffusers' own ``DIFFUSERS_TO_LDM_MAPPING``, and
:func:`check_round_trip` runs diffusers' forward converters over the result and demands every
tensor back bit for bit.
"""

from __future__ import annotations

import re
from pathlib import Path

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
CLIP_PREFIX = "cond_stage_model.transformer."

_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
_VAE_ATTN = {
    "group_norm": "norm",
    "to_q": "q",
    "to_k": "k",
    "to_v": "v",
    "to_out.0": "proj_out",
}


def _resnet(rest: str, table: dict[str, str]) -> str:
    head, _, tail = rest.partition(".")
    return f"{table.get(head, head)}.{tail}"


def _remap(state: dict, fixed: dict, rule, what: str) -> dict:
    """``state`` under LDM keys: ``fixed`` (diffusers' own table) first, then ``rule(k, v)`` ->
    (LDM key, tensor) or None for a key that has no counterpart."""
    out = {}
    for k, v in state.items():
        mapped = (fixed[k], v) if k in fixed else rule(k, v)
        if mapped is None:
            raise ValueError(f"{what} key {k!r} has no LDM counterpart (not an SD 1.x/2.x model?)")
        out[mapped[0]] = mapped[1]
    return out


def unet_to_ldm(state: dict, config) -> dict:
    """diffusers ``UNet2DConditionModel`` state dict -> LDM keys (without the prefix)."""
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    per = config["layers_per_block"]
    up_has_attn = ["CrossAttn" in t for t in config["up_block_types"]]
    blocks = re.compile(
        r"(down|up)_blocks\.(\d+)\.(resnets|attentions|downsamplers|upsamplers)\.(\d+)\.(.*)"
    )

    def rule(k, v):
        if m := blocks.match(k):
            kind, b, part, i, rest = m.groups()
            b, i = int(b), int(i)
            if kind == "down":
                n = 1 + b * (per + 1) + (per if part == "downsamplers" else i)
                return {
                    "resnets": f"input_blocks.{n}.0.{_resnet(rest, _UNET_RESNET)}",
                    "attentions": f"input_blocks.{n}.1.{rest}",
                    "downsamplers": f"input_blocks.{n}.0.op.{rest.removeprefix('conv.')}",
                }[part], v
            n = b * (per + 1) + (per if part == "upsamplers" else i)
            up = 2 if up_has_attn[b] else 1
            return {
                "resnets": f"output_blocks.{n}.0.{_resnet(rest, _UNET_RESNET)}",
                "attentions": f"output_blocks.{n}.1.{rest}",
                "upsamplers": f"output_blocks.{n}.{up}.{rest}",
            }[part], v
        if m := re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.*)", k):
            part, i, rest = m.group(1), int(m.group(2)), m.group(3)
            if part == "resnets":
                return f"middle_block.{2 * i}.{_resnet(rest, _UNET_RESNET)}", v
            return f"middle_block.1.{rest}", v
        return None

    return _remap(state, DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"], rule, "UNet")


def vae_to_ldm(state: dict, config) -> dict:
    """diffusers ``AutoencoderKL`` state dict -> LDM keys (1×1 convolutions in attention)."""
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING

    n_up = len(config["up_block_types"])
    blocks = re.compile(
        r"(encoder|decoder)\.(down|up)_blocks\.(\d+)\.(resnets|downsamplers|upsamplers)\.(\d+)\.(.*)"
    )

    def rule(k, v):
        if m := blocks.match(k):
            side, kind, b, part, i, rest = m.groups()
            b = int(b) if kind == "down" else n_up - 1 - int(b)  # LDM numbers up blocks upwards
            rest = rest.replace("conv_shortcut", "nin_shortcut")
            if part == "resnets":
                return f"{side}.{kind}.{b}.block.{i}.{rest}", v
            return f"{side}.{kind}.{b}.{'downsample' if kind == 'down' else 'upsample'}.{rest}", v
        if m := re.match(r"(encoder|decoder)\.mid_block\.(resnets|attentions)\.(\d+)\.(.*)", k):
            side, part, i, rest = m.groups()
            if part == "resnets":
                return (
                    f"{side}.mid.block_{int(i) + 1}.{rest.replace('conv_shortcut', 'nin_shortcut')}",
                    v,
                )
            head, leaf = rest.rsplit(".", 1)
            if leaf == "weight" and v.ndim == 2:
                v = v[:, :, None, None]  # LDM's attention uses 1×1 convolutions
            return f"{side}.mid.attn_1.{_VAE_ATTN.get(head, head)}.{leaf}", v
        return None

    return _remap(state, DIFFUSERS_TO_LDM_MAPPING["vae"], rule, "VAE")


def ldm_state_dict(model) -> dict:
    """One LDM-layout state dict (UNet, VAE, CLIP text encoder) of a loaded ``DiffusionGenerator``."""
    out = {}
    for k, v in unet_to_ldm(model.unet.state_dict(), model.unet.config).items():
        out[UNET_PREFIX + k] = v
    for k, v in vae_to_ldm(model.vae.state_dict(), model.vae.config).items():
        out[VAE_PREFIX + k] = v
    for k, v in model.text_encoder.state_dict().items():
        out[CLIP_PREFIX + k] = v
    return {k: v.detach().cpu().contiguous() for k, v in out.items()}


def check_round_trip(model, state: dict) -> None:
    """Raise unless diffusers' own converters turn ``state`` back into the model's tensors."""
    import torch
    from diffusers.loaders.single_file_utils import (
        convert_ldm_clip_checkpoint,
        convert_ldm_unet_checkpoint,
        convert_ldm_vae_checkpoint,
    )

    back = {
        "unet": convert_ldm_unet_checkpoint(state, dict(model.unet.config)),
        "vae": convert_ldm_vae_checkpoint(state, dict(model.vae.config)),
        "text_encoder": convert_ldm_clip_checkpoint(state),
    }
    for name, conv in back.items():
        ref = getattr(model, name).state_dict()
        if set(conv) != set(ref):
            diff = sorted(set(conv) ^ set(ref))[:5]
            raise AssertionError(f"{name}: keys differ after diffusers' conversion: {diff}")
        for k, v in ref.items():
            if not torch.equal(conv[k].to(v.dtype).reshape(v.shape), v.cpu()):
                raise AssertionError(f"{name}: tensor {k} differs after diffusers' conversion")


def save_single_file(model, path: str | Path) -> Path:
    """Write ``model`` as one original-layout ``.safetensors`` (checked by round trip first)."""
    import os

    from safetensors.torch import save_file

    state = ldm_state_dict(model)
    check_round_trip(model, state)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(state, str(tmp))
    os.replace(tmp, path)  # atomic: a killed save never leaves a torn checkpoint
    return path
