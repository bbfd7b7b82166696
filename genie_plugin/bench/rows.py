"""Result rows as read from a results file: validated like scenarios (pydantic), named by file
and line when they are not what a run writes.

A results file is an input every reporting command trusts (leaderboard, report, compare, the
merge at the end of ``bench run``): a torn last line (a run killed mid-write by an older
version, a copy cut short), bytes that are not UTF-8, a row edited by hand. Each is one line
naming the file, the line and the fix, before any work — never a traceback after it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from genie_plugin.errors import ConfigError
from genie_plugin.sinks import quoted

#: The most episodes a row may claim: far above any paper's 600-10,000, far below what would
#: exhaust memory in the report (a row claiming 10^9 episodes).
MAX_EPISODES = 1_000_000

Name = Annotated[str, Field(strict=True, min_length=1, max_length=200)]
Accuracy = Annotated[float, Field(ge=0.0, le=100.0, allow_inf_nan=False)]
NonNegative = Annotated[int, Field(ge=0, strict=True)]


class ResultRow(BaseModel):
    """What ``bench run`` writes and reporting reads; other fields (versions, timings,
    configs) pass through unchecked. A field may be absent (older rows, failed rows) but
    never null: defaults are not validated, an explicit ``null`` is."""

    model_config = ConfigDict(extra="allow", strict=False)

    scenario: Name
    strategy: Name
    status: Literal["ok", "failed"]
    dataset: Annotated[str, Field(strict=True)] = None
    split: Annotated[str, Field(strict=True)] = None
    backbone: Annotated[str, Field(strict=True)] = None
    ways: Annotated[int, Field(ge=2, le=10_000, strict=True)] = None
    shots: Annotated[int, Field(ge=1, le=10_000, strict=True)] = None
    episodes: Annotated[int, Field(ge=1, le=MAX_EPISODES, strict=True)] = None
    episodes_hash: Annotated[str, Field(strict=True)] = None
    mean: Accuracy = None
    ci95: Annotated[float, Field(ge=0.0, le=100.0, allow_inf_nan=False)] = None
    episode_accuracies: list[Accuracy] = None
    images_generated: NonNegative = None
    cache_hits: NonNegative = None
    unet_rows: NonNegative = None
    error: Annotated[str, Field(strict=True)] = None

    @model_validator(mode="after")
    def _consistent(self) -> ResultRow:
        if self.status != "ok":
            return self
        for key in ("mean", "ci95"):
            if getattr(self, key) is None:
                raise ValueError(f"an ok row needs '{key}'")
        accs, n = self.episode_accuracies, self.episodes
        if accs is not None and n is not None and len(accs) != n:
            raise ValueError(f"'episode_accuracies' has {len(accs)} values for episodes = {n}")
        return self


def validate_row(row: object, where: str) -> dict:
    """``row`` checked (one line naming ``where``, the key and what is wrong), as a dict."""
    if not isinstance(row, dict):
        raise ConfigError(
            f"{where}: a result row is a JSON object, got {type(row).__name__}; "
            "remove the line or rerun the strategy"
        )
    try:
        ResultRow.model_validate(row)
    except ValidationError as exc:
        e = exc.errors()[0]
        key = ".".join(str(p) for p in e["loc"]) or "row"
        value = "" if e["type"] == "missing" else f" = {quoted(e.get('input'))}"
        raise ConfigError(
            f"{where}: key {key}{value}: {e['msg'][0].lower()}{e['msg'][1:]}; fix or remove the "
            "line, or rerun the strategy"
        ) from None
    return row


def read_results(path: str | os.PathLike, *, option: str = "results") -> list[dict]:
    """Every row of the results file ``path``, validated; one line for anything else."""
    from genie_plugin.sinks import one_line

    p = Path(path)
    shown = one_line(p)
    if not p.exists():
        raise ConfigError(f"{option} {shown}: file not found; pass a results .jsonl of bench run")
    if p.is_dir():
        raise ConfigError(f"{option} {shown}: is a folder; pass a results .jsonl file in it")
    if not p.is_file():
        raise ConfigError(f"{option} {shown}: not a regular file; pass a results .jsonl file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{option} {shown}: cannot be read ({exc.strerror})") from None
    rows = []
    for n, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        where = f"{option} {shown} line {n}"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"{where}: not UTF-8 (byte {exc.start + 1}); results files are UTF-8 JSON lines"
            ) from None
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{where}: not a JSON row ({exc.msg}, column {exc.colno}): a torn or edited "
                "line; remove it, or rerun that strategy to rewrite its row"
            ) from None
        rows.append(validate_row(row, where))
    return rows
