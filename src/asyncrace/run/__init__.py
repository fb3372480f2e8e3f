"""The machinery that runs the analysis over a project: ``discover`` (the files to check),
``jobs`` (the records the stages share), ``pipeline`` (extraction, parallel, behind the
``cache``), ``link`` (the index and the rules over each module), the caches of whole runs
(``runcache``, ``snapshot``), ``incremental`` runs, and ``engine`` (``check``: what every front
end calls).

It uses the rules and the analysis; only the front ends import it (``tests/test_layout.py``)."""
