"""The one prompt template: the reference's (reference.md), used to generate, train and score."""

from __future__ import annotations

DEFAULT_PROMPT = "a photo of a {name}."


def class_prompt(template: str, name: str) -> str:
    """Fill the prompt template with a human-readable class name (underscores -> spaces)."""
    return template.format(name=name.replace("_", " ").strip())
