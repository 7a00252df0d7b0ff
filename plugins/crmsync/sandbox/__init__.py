"""The SUMIT sandbox: a local stand-in for SUMIT's API, for tests, demos and trying crmsync."""

from crmsync.sandbox.server import SandboxServer

__all__ = ["SandboxServer"]
