"""Class labels as words for prompts: WordNet ids -> lemmas, CUB folder names -> bird names."""

from __future__ import annotations

import functools
import re

_WNID = re.compile(r"^n\d{8}$")


def wordnet_lemma(wnid: str) -> str:
    """The prompt word of an ImageNet class: the first lemma of its WordNet synset, from timm's
    ImageNet metadata (``n02108089`` -> ``boxer``). Not an ImageNet-1k id: returned as given."""
    if not _WNID.match(wnid):
        return wnid
    from timm.data import ImageNetInfo

    descriptions = _imagenet_descriptions(ImageNetInfo)
    if wnid not in descriptions:
        return wnid
    return descriptions[wnid].split(",")[0].strip()


@functools.cache
def _imagenet_descriptions(cls) -> dict[str, str]:
    """WordNet id -> timm's description ("lemma, other lemmas") for ImageNet-1k's classes."""
    info = cls()
    return {w: info.label_name_to_description(w) for w in info.label_names()}


def class_word(name: str) -> str:
    """A class label as words: WordNet id -> lemma, CUB's ``017.Cardinal`` -> ``Cardinal``,
    underscores -> spaces."""
    name = _text(name)
    if _WNID.match(name):
        return wordnet_lemma(name)
    return re.sub(r"^\d+\.", "", name).replace("_", " ")


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def is_synset_id(text: str) -> bool:
    """True if ``text`` holds a WordNet id anywhere (a prompt no diffusion model understands)."""
    return re.search(r"\bn\d{8}\b", text) is not None
