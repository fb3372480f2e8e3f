"""The records the stages of a run share: what one file to extract is (:class:`FileJob`), and
the signal that an incremental run's snapshot no longer matches the cache (:class:`Stale`).

They live below every module that uses them (``engine``, ``pipeline``, ``link``,
``incremental``), so that none of those has to import another one back."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FileJob:
    """One file to extract; picklable so it can go to a worker process."""

    path: str  # real path on disk ("" for a text given directly)
    display: str
    module: str
    is_package: bool
    text: str | None = None  # given text (stdin/editor); None: read ``path``


class Stale(Exception):
    """An incremental run found its snapshot out of step with the cache: run in full."""


__all__ = ["FileJob", "Stale"]
