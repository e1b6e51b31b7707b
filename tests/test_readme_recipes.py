"""Every ```yaml block of README.md works verbatim.

Each block says what it is in its first lines (the README's Development section states it):

- a **file**: its path in a comment on line 1, or on line 2 after a ``# @package ...`` line (which
  Hydra reads only on line 1), e.g. ``# conf/recipe/my_recipe.yaml``. All file blocks are written
  into one temporary project; each recipe among them (``conf/recipe/<name>.yaml``) runs through the
  real ``edgeflow`` with ``--config-dir <project>/conf`` and one-epoch stages, and must land in
  ``outputs/<name>/`` (its ``name:``);
- an **excerpt**: ``# excerpt of <path>`` — the rest of the block appears verbatim in that file
  (one of the repository's, or a file block above);
- **not run**: ``# not run: <reason>`` — only parsed as YAML.

Any other block fails ``test_every_yaml_block_says_what_it_is``: nothing is skipped silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from cli_helpers import run_recipe
from conftest import ROOT

README = ROOT / "README.md"
FENCE = re.compile(r"^(?P<indent>[ \t]*)```yaml[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)


@dataclass(frozen=True)
class Block:
    """One ```yaml block: where it starts in the README, its text, and what its first lines say it is."""

    line: int
    text: str
    kind: str  # "file", "excerpt", "not run" or "unmarked"
    path: str = ""

    @property
    def is_recipe(self) -> bool:
        return self.kind == "file" and Path(self.path).parent.name == "recipe"


def _classify(line: int, text: str) -> Block:
    lines = text.splitlines() or [""]
    path_line = lines[1] if lines[0].startswith("# @package") and len(lines) > 1 else lines[0]
    if m := re.fullmatch(r"#\s*(\S+\.ya?ml)\s*", path_line):
        return Block(line, text, "file", m[1])
    if m := re.fullmatch(r"#\s*excerpt of\s+(\S+)\s*", lines[0]):
        return Block(line, text, "excerpt", m[1])
    if re.fullmatch(r"#\s*not run:\s*\S.*", lines[0]):
        return Block(line, text, "not run")
    return Block(line, text, "unmarked")


def readme_blocks(markdown: str) -> list[Block]:
    """The README's ```yaml blocks (indented ones dedented by their fence's indentation)."""
    blocks = []
    for m in FENCE.finditer(markdown):
        indent = len(m["indent"])
        text = "".join(line[indent:] for line in m["body"].splitlines(keepends=True))
        blocks.append(_classify(markdown.count("\n", 0, m.start()) + 1, text))
    return blocks


BLOCKS = readme_blocks(README.read_text())
FILES = [b for b in BLOCKS if b.kind == "file"]
RECIPES = [b for b in FILES if b.is_recipe]


def test_convention_is_recognised() -> None:
    blocks = readme_blocks("text\n```yaml\n# @package _global_\n# conf/recipe/a.yaml\nname: a\n```\n"
                           "  ```yaml\n  # excerpt of conf/config.yaml\n  seed: 0\n  ```\n"
                           "```yaml\n# not run: a fragment\nx: 1\n```\n"
                           "```yaml\n# conf/recipe/b.yaml\n# @package _global_\nname: b\n```\n"
                           "```yaml\nname: c\n```\n")
    assert [(b.line, b.kind, b.path) for b in blocks] == [
        (2, "file", "conf/recipe/a.yaml"), (7, "excerpt", "conf/config.yaml"), (11, "not run", ""),
        (15, "file", "conf/recipe/b.yaml"), (20, "unmarked", "")]
    assert blocks[1].text == "# excerpt of conf/config.yaml\nseed: 0\n"
    assert blocks[0].is_recipe and not blocks[1].is_recipe


def test_every_yaml_block_says_what_it_is() -> None:
    assert RECIPES, "the README shows no recipe file"
    unmarked = [b.line for b in BLOCKS if b.kind == "unmarked"]
    assert not unmarked, f"README.md lines {unmarked}: a ```yaml block must start with its file path, " \
                         "'# excerpt of <path>' or '# not run: <reason>' (see this module's docstring)"
    for block in BLOCKS:
        if block.kind != "excerpt":
            yaml.safe_load(block.text)  # raises on a syntax error
    paths = [b.path for b in FILES]
    assert len(paths) == len(set(paths)), f"two README blocks write one file: {paths}"


def test_excerpts_appear_verbatim() -> None:
    files = {b.path: b.text for b in FILES}
    for block in (b for b in BLOCKS if b.kind == "excerpt"):
        source = files.get(block.path) or (ROOT / block.path).read_text()
        excerpt = block.text.split("\n", 1)[1]
        assert excerpt in source, f"README.md line {block.line}: not verbatim in {block.path}"


@pytest.mark.parametrize("block", RECIPES, ids=[b.path for b in RECIPES])
def test_readme_recipe_runs_verbatim(block: Block, tmp_path: Path) -> None:
    for file in FILES:
        (tmp_path / file.path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / file.path).write_text(file.text)
    recipe = tmp_path / block.path
    run_dir = run_recipe(tmp_path, "--config-dir", str(recipe.parent.parent), f"recipe={recipe.stem}")
    assert run_dir.parent.name == recipe.stem  # its `name:` names the run folder (not custom/)
