"""``python -m asyncrace``.

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

from asyncrace.cli import run

if __name__ == "__main__":
    run()
