"""``edgeflow``'s exit status 2, through the installed console script: a config or command-line
mistake is one line on stderr (``edgeflow: config error: <key>: <message>``, with the closest match
where one is close), also when Hydra finds it while composing, and leaves no run folder behind;
``--help`` lists the config groups users pick from, and neither imports torch.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import project_env
from conftest import BIN, ROOT

EDGEFLOW = str(BIN / "edgeflow")
PREFIX = "edgeflow: config error: "

#: recipe files of a user's project (conf/recipe/) with one mistake each
RECIPES = {
    "broken": "# @package _global_\ndefaults:\n  - /stage@stages.train: train\n  - _self_\nname: broken\n"
              "stages:\n  train: {max_epochs: 4, lr: 0.005\n",
    "typo": "# @package _global_\ndefaults:\n  - /stage@stages.train: trian\n  - _self_\nname: typo\n",
    "late_header": "# conf/recipe/late_header.yaml\n# @package _global_\ndefaults:\n  - /stage@stages.train: train\n"
                   "  - override /model: tcn\n  - _self_\nname: late_header\n",
}

# (arguments, the line's first words after "edgeflow: config error: ", the suggestion it must hold)
MISTAKES = [
    (["hardware=cortex-m4"], "hardware: no option 'cortex-m4'", "(did you mean 'cortex_m4'?); options: cortex_m4, "),
    (["recipe=quickstat"], "recipe: no option 'quickstat'", "(did you mean 'quickstart'?); options: "),
    (["model=resnet9"], "model: no option 'resnet9'", "(did you mean 'resnet8'?); options: "),
    (["stages.train.max_epoch=5"], "stages.train.max_epoch: no such key", "(did you mean 'max_epochs'?); keys here: kind, "),
    (["hardwar=gap9"], "hardwar: no such key", "(did you mean 'hardware'?); keys here: seed, "),
    (["stages.trian.lr=0.1"], "stages.trian: no such key", "(did you mean 'train'?); keys here: train, "),
    (["foo=bar"], "foo: no such key; keys here: seed, name, ", ""),
    (["stages.train.max_epochs=[1"], "stages.train.max_epochs=[1: malformed override: no viable alternative", ""),
    (["+stages.train.max_epochs=3"], "stages.train.max_epochs: already set", "without '+': stages.train.max_epochs=3"),
    (["model=cnn,mlp"], "model=cnn,mlp: a comma in a value needs -m", ""),
    (["--foo"], "command line: unrecognized arguments: --foo", ""),
    (["--config-dir", "missing"], "--config-dir: Additional config directory", ""),
    (["stages.train.max_epochs=-3"], "stages.train.max_epochs: must be an integer >= 1, got -3", ""),
    (["--help", "dataset=digitz"], "dataset: no option 'digitz'", "(did you mean 'digits'?)"),
    (["-cd", "conf", "recipe=broken"], "conf/recipe/broken.yaml:8:1: YAML syntax error: expected ',' or '}', but got '<stream end>'",
     "(while parsing a flow mapping at line 7, column 10)"),
    (["-cd", "conf", "recipe=typo"], "stage: no option 'trian'", "(did you mean 'train'?), asked for in recipe/typo"),
    (["-cd", "conf", "recipe=late_header"], "recipe/late_header: the first line must be '# @package _global_'", ""),
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project folder: cwd and EDGEFLOW_HOME of the runs, with a conf/recipe/ of mistakes."""
    (tmp_path / "conf" / "recipe").mkdir(parents=True)
    for name, text in RECIPES.items():
        (tmp_path / "conf" / "recipe" / f"{name}.yaml").write_text(text)
    return tmp_path


def edgeflow(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([EDGEFLOW, *args, "tracking.enabled=false"], cwd=project, env=project_env(project),
                          capture_output=True, text=True, timeout=120)


def leftovers(project: Path) -> list[str]:
    """What runs left in ``outputs/`` and ``multirun/``."""
    return sorted(str(p.relative_to(project)) for d in ("outputs", "multirun") for p in (project / d).rglob("*"))


@pytest.mark.parametrize(("args", "first_words", "suggestion"), MISTAKES, ids=[" ".join(m[0]) for m in MISTAKES])
def test_mistake_is_one_line_and_exit_2(project: Path, args: list[str], first_words: str, suggestion: str) -> None:
    r = edgeflow(project, *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(PREFIX + first_words), lines[0]
    assert suggestion in lines[0]
    assert leftovers(project) == []


def test_refused_run_removes_only_what_hydra_made(project: Path) -> None:
    user_dir = project / "mine"
    user_dir.mkdir()
    (user_dir / "notes.txt").write_text("keep me")
    r = edgeflow(project, "stages.train.max_epochs=0", f"hydra.run.dir={user_dir}")
    assert r.returncode == 2 and r.stderr.startswith(PREFIX + "stages.train.max_epochs: must be"), r.stderr
    assert sorted(p.name for p in user_dir.iterdir()) == ["notes.txt"]  # .hydra/ and the empty log are gone

    r = edgeflow(project, "-m", "stages.train.max_epochs=0,-1")  # a sweep stops at its first refused job
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert leftovers(project) == []


def test_help_hides_schema_groups(project: Path) -> None:
    r = edgeflow(project, "--help")
    assert r.returncode == 0, r.stderr
    assert "\nrecipe: " in r.stdout and "\nhardware: cortex_m4, " in r.stdout
    assert "schema/" not in r.stdout
    assert "edgeflow new-recipe" in r.stdout and "Exit status: 0 success, 1 a stage failed, 2 " in r.stdout


@pytest.mark.parametrize("args", [["--help"], ["hardware=cortex-m4"], ["stages.train.max_epochs=-3"]])
def test_help_and_config_errors_import_no_torch(project: Path, args: list[str]) -> None:
    probe = ("import sys\nsys.argv = ['edgeflow', *sys.argv[1:]]\nfrom tasks.edgeflow_app import main\n"
             "try:\n    main()\nfinally:\n"
             "    print(sorted(m for m in ('torch', 'lightning', 'pytorch_lightning', 'mlflow') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", probe, *args], cwd=project, env={**project_env(project), "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode in (0, 2), r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
