"""Stable Diffusion 1.x/2.x: one CLIP text encoder, a UNet, ε or v prediction; with a
``time_cond_proj_dim`` UNet it is a latent consistency model (LCM: guidance embedded, no
unconditional rows). The defaults of :class:`~.base.ModelFamily` are this family."""

from __future__ import annotations

from genie_plugin.diffusion.families.base import ModelFamily


class SD(ModelFamily):
    pass
