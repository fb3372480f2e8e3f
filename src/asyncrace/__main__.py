"""``python -m asyncrace``, and the ``asyncrace`` command (:func:`run`).

Python puts the working directory first on ``sys.path`` for ``-m``. The working directory is
usually the project being analyzed, and a file there named like a module asyncrace imports
(``json.py``, ``re.py``, ``tokenize.py``...) would then be imported, and run, by asyncrace
itself. asyncrace never runs the code it reads, so that entry goes before anything else is
imported (``sys`` and ``os`` are already loaded by the interpreter).
"""

import os
import sys

if sys.path and os.path.abspath(sys.path[0] or os.curdir) == os.path.abspath(os.curdir):
    del sys.path[0]


def run() -> None:
    """The ``asyncrace`` command: ``--version`` is answered without importing the command line
    (click alone costs three times the interpreter's start-up); anything else goes to
    :func:`asyncrace.cli.run`."""
    if sys.argv[1:] in (["--version"], ["-V"]):
        from asyncrace import __version__

        sys.stdout.write(f"asyncrace, version {__version__}\n")
        sys.exit(0)
    from asyncrace.cli import run as cli_run

    cli_run()


if __name__ == "__main__":
    run()
