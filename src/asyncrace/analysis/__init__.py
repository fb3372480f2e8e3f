"""The analysis: what asyncrace knows about the code, from each file's facts up to the
questions the rules ask.

From the bottom up: ``facts`` (the plain records of one file), ``extract`` and ``lower`` (a
file's source to its facts), ``index`` (every file's facts linked into one project), ``locks``
(the lock model), ``summaries`` (the call-graph summaries the rules share), ``concurrency``
(what may run at the same time) and ``facade`` (``Analysis``: the one object a rule queries).

Nothing here imports the machinery that runs it (``asyncrace.run``), the rules or a front end
(``tests/test_layout.py``)."""
