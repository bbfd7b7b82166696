"""The ``genie`` command line (installed as the ``genie_cli`` package)."""
