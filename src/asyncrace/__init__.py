"""asyncrace: a static analyzer for concurrency hazards in asyncio code."""

__version__ = "0.1.0"


def code_version() -> str:
    """The version plus a digest of asyncrace's own source files: what caches are keyed on, so
    a changed analyzer (an editable install, a build between releases) never answers from
    results of another one."""
    global _CODE_VERSION
    if _CODE_VERSION is None:
        import hashlib
        from pathlib import Path

        h = hashlib.blake2b(digest_size=8)
        root = Path(__file__).parent
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
        _CODE_VERSION = f"{__version__}+{h.hexdigest()}"
    return _CODE_VERSION


_CODE_VERSION: str | None = None

__all__ = ["__version__", "code_version"]
