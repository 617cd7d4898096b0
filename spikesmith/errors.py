"""The user-facing error family: every message names the file, node or field and what was expected."""

from __future__ import annotations


class SpikesmithError(Exception):
    """Base class of every error a user should see as one line (the CLI exits 2)."""


class InputError(SpikesmithError):
    """A file, array or argument supplied by the user is missing or malformed."""


class GraphError(SpikesmithError):
    """A NIR graph is invalid or uses something a target cannot run."""


class UnsupportedNodeError(GraphError):
    """A NIR node type has no lowering for the chosen target."""


class DependencyError(SpikesmithError):
    """An optional dependency needed for this feature is missing."""


class DataError(SpikesmithError):
    """A dataset is missing or malformed."""
