"""Comparing runs: ``edgeflow-report EXPERIMENT...`` (``tasks/report_app.py``) and the table a
multirun prints at its end (``callback.SweepTableCallback``).

- ``runs``: the pipeline runs of experiments, read from MLflow (any tracking URI), and what varied;
- ``pareto``: objectives and the Pareto front;
- ``build``: the table (CSV, Markdown), PNG plots of accuracy against latency / energy / flash /
  RAM, and one self-contained HTML page.
"""
