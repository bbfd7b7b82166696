"""The equivalence table (family × scheduler × r → max uint8 difference), written when the
environment asks for it (``GENIE_EQUIVALENCE_TABLE=path``): the issue's acceptance table."""

import json
import os

import pytest

_ROWS: list = []


@pytest.fixture
def equivalence_table():
    return _ROWS


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("GENIE_EQUIVALENCE_TABLE")
    if path and _ROWS:
        with open(path, "w") as f:
            json.dump(sorted(_ROWS), f, indent=1)
