"""``edgeflow-report``: compare runs recorded in MLflow — a table, the Pareto front, plots, one HTML page.

    edgeflow-report EXPERIMENT... [--tracking-uri URI] [--objective STAGE/METRIC:max|min ...]
                    [--sweep SWEEP_ID] [--out DIR] [--format markdown|csv]

Writes ``runs.csv``, one PNG per cost (accuracy against latency / energy / flash / RAM, one point per
run labelled by what varied, the Pareto front highlighted) and ``report.html`` (self-contained:
the table and the plots) into ``--out`` (default ``<home>/reports/<experiments>``), and prints the
table (Markdown, or CSV with ``--format csv``) and the page's path. ``--tracking-uri`` defaults to
the project's ``sqlite:///<home>/mlflow.db``; any MLflow URI works (``http://127.0.0.1:5000``).
Errors (no such experiment, an objective no run reports, no finished run) are one line on stderr
and exit status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

from tasks.args import OneLineArgumentParser

PROG = "edgeflow-report"


def _parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog=PROG, description="Compare edgeflow runs recorded in MLflow.")
    p.add_argument("experiments", nargs="+", metavar="EXPERIMENT", help="MLflow experiment names (a recipe's name)")
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite:///<home>/mlflow.db)")
    p.add_argument("--objective", action="append", default=None, metavar="STAGE/METRIC:max|min",
                   help="an objective of the Pareto front (repeat for several; default: accuracy and latency)")
    p.add_argument("--sweep", default=None, help="only the jobs of this sweep (tag edgeflow.sweep_id)")
    p.add_argument("--out", default=None, help="folder for runs.csv, the PNGs and report.html")
    p.add_argument("--format", choices=("markdown", "csv"), default="markdown", help="the table printed")
    return p


def _fail(message: str) -> NoReturn:
    print(f"{PROG}: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    """Run the report; see the module doc."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    from edgeflow.report.pareto import parse_objective

    try:
        objectives = [parse_objective(o) for o in args.objective] if args.objective else None
    except ValueError as err:
        _fail(f"bad argument: --objective: {err}")
    from edgeflow.core.home import home
    from edgeflow.report.build import build_report, to_csv, to_markdown, write_html, write_plots
    from edgeflow.report.runs import load_runs

    uri = args.tracking_uri or f"sqlite:///{home() / 'mlflow.db'}"
    try:
        rows = load_runs(uri, args.experiments, args.sweep)
        if not rows:
            raise ValueError(f"no finished run in {', '.join(args.experiments)}"
                             + (f" (sweep {args.sweep})" if args.sweep else ""))
        report = build_report(rows, objectives)
    except (LookupError, ValueError) as err:
        _fail(str(err).splitlines()[0])
    out = Path(args.out) if args.out else home() / "reports" / "_".join(args.experiments)
    out.mkdir(parents=True, exist_ok=True)
    (out / "runs.csv").write_text(to_csv(report))
    plots = write_plots(report, out)
    page = write_html(report, plots, out / "report.html", f"edgeflow report: {', '.join(args.experiments)}")
    print(to_csv(report) if args.format == "csv" else to_markdown(report), end="")
    print(f"report: {page.resolve()} ({len(plots)} plots, {len(report.front)} runs on the Pareto front)", file=sys.stderr)


if __name__ == "__main__":
    main()
