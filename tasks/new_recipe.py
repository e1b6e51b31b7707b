"""``edgeflow new-recipe NAME [--from quickstart] [--dir conf/recipe]``: write a recipe to start from.

The file is a copy of the recipe ``--from`` (a built-in one in edgeflow's ``conf/recipe/``, or one
already in ``--dir``) with ``# @package _global_`` on its first line (Hydra reads the package
header only there), its path on the second and ``name: NAME`` (the run folder and the MLflow
experiment). It prints the command that runs it: ``edgeflow recipe=NAME`` inside edgeflow's own
``conf/``, else ``edgeflow --config-dir <the folder above --dir> recipe=NAME``.
"""

from __future__ import annotations

import re
from pathlib import Path

from edgeflow import CONF_DIR
from edgeflow.core.suggest import did_you_mean
from tasks.args import OneLineArgumentParser

__all__ = ["main", "recipe_text"]

PROG = "edgeflow new-recipe"
BUILTIN = CONF_DIR / "recipe"
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _parser() -> OneLineArgumentParser:
    p = OneLineArgumentParser(prog=PROG, description="Write a recipe file to start from, and print how to run it.")
    p.add_argument("name", help="the recipe's name: file <dir>/NAME.yaml, run folder outputs/NAME/, MLflow experiment")
    p.add_argument("--from", dest="source", default="quickstart", metavar="RECIPE",
                   help="the recipe to copy: one in --dir or a built-in one (default: quickstart)")
    p.add_argument("--dir", type=Path, default=Path("conf/recipe"),
                   help="where to write; a folder named recipe inside a config folder (default: conf/recipe)")
    return p


def main(argv: list[str]) -> None:
    """Write ``<dir>/<name>.yaml`` and print the command that runs it; a bad argument exits 2 (one line)."""
    parser = _parser()
    args = parser.parse_args(argv)
    folder: Path = args.dir
    builtin = folder.resolve() == BUILTIN.resolve()
    if not NAME.fullmatch(args.name):
        parser.error(f"NAME {args.name!r}: a letter first, then letters, digits or '_'")
    if folder.name != "recipe":
        parser.error(f"--dir {str(folder)!r}: must be a folder named 'recipe' inside a config folder "
                     "(e.g. conf/recipe), where Hydra looks for recipe=NAME")
    if not builtin and (BUILTIN / f"{args.name}.yaml").is_file():
        parser.error(f"NAME {args.name!r}: a built-in recipe has this name and would be run instead; choose another")
    target = folder / f"{args.name}.yaml"
    if target.exists():
        parser.error(f"{target} exists; choose another name or remove it")
    source = next((d / f"{args.source}.yaml" for d in (folder, BUILTIN) if (d / f"{args.source}.yaml").is_file()), None)
    if source is None:
        known = sorted({p.stem for d in (folder, BUILTIN) if d.is_dir() for p in d.glob("*.yaml")})
        parser.error(f"--from: no recipe {args.source!r}{did_you_mean(args.source, known)}; recipes: {', '.join(known)}")

    command = f"edgeflow recipe={args.name}" if builtin else f"edgeflow --config-dir {folder.parent} recipe={args.name}"
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(recipe_text(args.name, source.read_text(), f"{target}", args.source, command))
    print(f"wrote {target} (a copy of recipe {args.source})")
    print(f"run it:  {command}")
    print(f"         {command} stages.train.max_epochs=5   (override any key on the command line)")


def recipe_text(name: str, source_text: str, path: str, source_name: str, command: str) -> str:
    """The recipe ``source_text`` renamed ``name``: the package header first, then ``path`` and how
    to run it, then the source without its leading comments and with its ``name:`` set to ``name``."""
    lines = source_text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() and not line.startswith("#")), len(lines))
    body = "\n".join(lines[start:]).rstrip("\n") + "\n"
    body, found = re.subn(r"(?m)^name:.*$", f"name: {name}", body, count=1)
    if not found:
        body += f"name: {name}\n"
    return (f"# @package _global_\n# {path}\n"
            f"# {name}: started from recipe {source_name}. Run it: {command}\n{body}")
