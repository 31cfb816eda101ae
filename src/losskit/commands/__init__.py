"""Subcommands of the ``losskit`` CLI, one module each (see :mod:`losskit.cli`)."""
