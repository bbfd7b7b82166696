"""``cutmix``: CutMix baseline: a box from a partner view pasted in, soft label = kept area."""

from __future__ import annotations

from genie_plugin.strategies.mixup import MixConfig, MixUpStrategy


class CutMixStrategy(MixUpStrategy):
    """CutMix of weak views with area-weighted soft labels (λ ~ Beta(alpha, alpha))."""

    name = "cutmix"
    config_cls = MixConfig
    mix = "cutmix"
