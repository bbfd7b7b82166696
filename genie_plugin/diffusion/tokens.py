"""Learned tokens (textual inversion) in prompts, named by their content.

A peer such as DA-Fusion learns a word embedding per class per episode and writes prompts with
it. If that word were a fixed placeholder (``<cls0>``) every episode would give the same prompt
and so the same generation key, and the cache would serve one episode's images to another.
Here a learned token is *named by a digest of its vector* (``<learned-3f2a…>``): the prompt,
and so the key, changes whenever the vector does, and two fits that learned the same vector
share their images, as they should.

The bank maps names to vectors. It is process-wide on purpose: a name is a function of its
vector, so no entry can ever mean two things; a fit loaded in any part of a run (or a --jobs
worker) makes its tokens known to every model that meets them in a prompt. Registering writes
the vector into the model's tokenizer and text encoder once — both of SDXL's, the vector being
their rows concatenated — with diffusers' own ``load_textual_inversion`` over the family's
pipeline.
"""

from __future__ import annotations

import hashlib
import re

from genie_plugin.errors import ConfigError

TOKEN_RE = re.compile(r"<learned-[0-9a-f]{16}>")

_BANK: dict[str, object] = {}  # name -> float32 CPU tensor (dim,)


def token_name(vector) -> str:
    """``<learned-…>``: the first 16 hex digits of the SHA-256 of the vector's float32 bytes."""
    import numpy as np
    import torch

    v = torch.as_tensor(vector).detach().to("cpu", torch.float32).contiguous()
    h = hashlib.sha256(str(tuple(v.shape)).encode())
    h.update(np.ascontiguousarray(v.numpy()).tobytes())
    return f"<learned-{h.hexdigest()[:16]}>"


def learn(vectors) -> list[str]:
    """Add vectors to the bank; their names, in order."""
    import torch

    names = []
    for v in vectors:
        v = torch.as_tensor(v).detach().to("cpu", torch.float32).contiguous()
        name = token_name(v)
        _BANK.setdefault(name, v)
        names.append(name)
    return names


def tokens_in(prompts) -> list[str]:
    return sorted({t for p in prompts for t in TOKEN_RE.findall(p)})


def register(model, prompts) -> int:
    """Write every learned token the ``prompts`` use into ``model``'s tokenizer and text encoder
    (once per model); return how many were new. A token not in the bank is refused: its fit
    was never loaded in this process, and encoding it as plain text would be a silent lie."""
    names = tokens_in(prompts)
    if not names:
        return 0
    known = model.helpers.stats.setdefault("learned_tokens", set())
    new = [n for n in names if n not in known]
    missing = [n for n in new if n not in _BANK]
    if missing:
        raise ConfigError(
            f"prompt uses learned token {missing[0]} whose fit was not loaded in this run "
            "(a strategy's prepare step registers it)"
        )
    if new:
        import torch

        from genie_plugin.diffusion.inversion import encoder_pairs

        pairs = encoder_pairs(model)  # refuses a family whose words are not fitted here
        dims = [te.get_input_embeddings().weight.shape[1] for _, te in pairs]
        for n in new:
            if _BANK[n].numel() != sum(dims):
                raise ConfigError(
                    f"learned token {n} has {_BANK[n].numel()} values; this model's text "
                    f"encoders take {' + '.join(map(str, dims))} (a word learned on another model)"
                )
        pipe = model.adapter.pipeline(model)
        start = 0
        for (tok, te), dim in zip(pairs, dims, strict=True):
            dtype = te.get_input_embeddings().weight.dtype
            # the resize inside initialises new rows from the global RNG before they are set
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                pipe.load_textual_inversion(
                    [_BANK[n][start : start + dim].to(dtype) for n in new],
                    token=new, tokenizer=tok, text_encoder=te,
                )  # fmt: skip
            start += dim
        known.update(new)
    return len(new)
