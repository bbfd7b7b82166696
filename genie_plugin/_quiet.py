"""One known-harmless diffusers warning, filtered at its logger (not diffusers' verbosity).

Why not fix the cause: optimum 2.x moved its ONNX exporter into the separate distribution
``optimum-onnx``, which installs into the ``optimum`` namespace package, so two distributions
rightly declare the top-level name ``optimum``. diffusers' import-time probe
(``_is_package_available("optimum", get_dist_name=True)``) assumes one and logs "Multiple
distributions found for package optimum" on every first import. Neither distribution's metadata
is ours to change; the filter drops that one message and nothing else.
"""

from __future__ import annotations

import logging

_MESSAGE = "Multiple distributions found for package optimum."


class _OptimumNamespaceFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(_MESSAGE)


def install() -> None:
    logger = logging.getLogger("diffusers.utils.import_utils")
    if not any(isinstance(f, _OptimumNamespaceFilter) for f in logger.filters):
        logger.addFilter(_OptimumNamespaceFilter())
