"""asyncrace: a static analyzer for concurrency hazards in asyncio code."""

__version__ = "0.1.0"

__all__ = ["__version__"]
