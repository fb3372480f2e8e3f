"""The machinery that runs the analysis over a project: ``discover`` (the files to check),
``pipeline`` (extraction, parallel, behind the ``cache``), the caches of whole runs
(``runcache``, ``snapshot``), ``incremental`` runs, and ``engine`` (``check``: what every front
end calls)."""
