"""A seeded tiny Stable-Diffusion-architecture pipeline built from configs.

It has every SD component (CLIP tokenizer + text encoder, AutoencoderKL, UNet2DConditionModel,
scheduler) at toy size, saved with ``save_pretrained`` into the cache and loaded back through
the same :func:`~genie_plugin.diffusion.loading.load_generator` path as a real checkpoint. Its
weights are random: it proves plumbing and determinism, not image quality.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

from genie_plugin.paths import cache_root

TINY_NAME = "tiny-random"
TINY_VERSION = 1


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's byte -> printable-unicode table (as in OpenAI's tokenizer)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs], strict=True))


def _bpe(pieces: list[str], merges: list[tuple[str, str]]) -> list[str]:
    """CLIP's BPE loop: merge every occurrence of the lowest-ranked adjacent pair, repeat."""
    ranks = {m: i for i, m in enumerate(merges)}
    while len(pieces) > 1:
        best = min(zip(pieces, pieces[1:], strict=False), key=lambda p: ranks.get(p, 1 << 30))
        if best not in ranks:
            break
        out, i = [], 0
        while i < len(pieces):
            if i + 1 < len(pieces) and (pieces[i], pieces[i + 1]) == best:
                out.append(pieces[i] + pieces[i + 1])
                i += 2
            else:
                out.append(pieces[i])
                i += 1
        pieces = out
    return pieces


def write_char_tokenizer(folder: Path, words: tuple[str, ...] = (), max_length: int = 77) -> int:
    """Write a CLIP tokenizer vocabulary (bytes + optional whole-word merges); return its size.

    Without merges every character is a token, which is enough for a random model; ``words``
    adds whole-word tokens via BPE merges (used by the embedded model's caption vocabulary).
    """
    from transformers import CLIPTokenizer

    chars = list(_bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for c in chars:
        vocab[c] = len(vocab)
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    merges: list[tuple[str, str]] = []
    for word in words:
        # Tokenise with the merges so far, then append merges that join the leftover pieces.
        # Appended merges rank after every earlier one, so earlier words keep their single
        # token (a plain per-word chain would let one word's bigram split another word).
        chars = list(word[:-1]) + [word[-1] + "</w>"]
        pieces = _bpe(chars, merges)
        while len(pieces) > 1:
            merges.append((pieces[0], pieces[1]))
            vocab.setdefault(pieces[0] + pieces[1], len(vocab))
            pieces = _bpe(chars, merges)  # a merge can fire at several places in the word
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    merge_lines = [f"{a} {b}" for a, b in merges]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merge_lines) + "\n")
    tok = CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_length
    )
    tok.save_pretrained(folder)
    return len(vocab)


def build_tiny_pipeline(seed: int = 0):
    """Build the tiny pipeline with seeded weights, without touching the global RNG state."""
    from diffusers import (
        AutoencoderKL,
        DPMSolverMultistepScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        vocab_size = write_char_tokenizer(Path(tmp))
        tokenizer = CLIPTokenizer.from_pretrained(tmp)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            block_out_channels=(8, 16),
            layers_per_block=1,
            sample_size=16,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=16,
            attention_head_dim=4,
            norm_num_groups=4,
        )
        vae = AutoencoderKL(
            block_out_channels=(8, 16),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            latent_channels=4,
            norm_num_groups=4,
            sample_size=32,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                bos_token_id=vocab_size - 2,
                eos_token_id=vocab_size - 1,
                pad_token_id=vocab_size - 1,
                hidden_size=16,
                intermediate_size=32,
                num_attention_heads=2,
                num_hidden_layers=2,
                vocab_size=vocab_size,
                max_position_embeddings=77,
            )
        )
    # SD 1.5's scheduler config (scaled-linear betas), as a real checkpoint would carry.
    scheduler = DPMSolverMultistepScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        timestep_spacing="linspace",
        steps_offset=1,
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def tiny_model_dir(seed: int = 0) -> Path:
    """Seeded random tiny SD-architecture model (tests, plumbing).

    Returns its folder in the cache; built (atomically) on first use."""
    target = cache_root() / "models" / f"{TINY_NAME}-v{TINY_VERSION}-seed{seed}"
    if (target / "model_index.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-", dir=target.parent))
    try:
        build_tiny_pipeline(seed).save_pretrained(tmp, safe_serialization=True)
        try:
            tmp.rename(target)
        except OSError:  # another process won the race; its copy is identical
            if not (target / "model_index.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
