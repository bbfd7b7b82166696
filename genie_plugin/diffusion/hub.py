"""The Hugging Face hub as loads read it: what a hub id looks like, and whether it is offline."""

from __future__ import annotations

import os
import re

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def hub_offline() -> bool:
    """The hub's offline mode: ``huggingface_hub.constants.HF_HUB_OFFLINE`` (read when the hub
    was imported), or the same variables set since (a notebook, a test) with the hub's values."""
    from huggingface_hub import constants

    now = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(constants.HF_HUB_OFFLINE) or now.strip().upper() in constants.ENV_VARS_TRUE_VALUES
