"""``edgeflow new-recipe``: writes a recipe that runs as printed; a bad argument is one line, exit 2."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import tasks.new_recipe as new_recipe
from cli_helpers import project_env, run_recipe
from conftest import BIN


def test_written_recipe_runs_as_printed(tmp_path: Path) -> None:
    r = subprocess.run([str(BIN / "edgeflow"), "new-recipe", "my_recipe"], cwd=tmp_path, env=project_env(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == ["wrote conf/recipe/my_recipe.yaml (a copy of recipe quickstart)",
                                         "run it:  edgeflow --config-dir conf recipe=my_recipe"]
    text = (tmp_path / "conf" / "recipe" / "my_recipe.yaml").read_text()
    assert text.startswith("# @package _global_\n# conf/recipe/my_recipe.yaml\n")
    assert "\nname: my_recipe\n" in text and "quickstart\n" not in text

    run_dir = run_recipe(tmp_path, "--config-dir", "conf", "recipe=my_recipe")  # the printed command
    assert run_dir.parent == tmp_path / "outputs" / "my_recipe"
    assert {"train", "prune", "qat", "export", "profile"} <= {p.name for p in run_dir.iterdir()}


def test_from_a_recipe_of_the_project_and_into_edgeflows_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    new_recipe.main(["first", "--from", "ptq_int8", "--dir", "proj/conf/recipe"])
    new_recipe.main(["second", "--from", "first", "--dir", "proj/conf/recipe"])  # --dir is searched first
    second = (tmp_path / "proj/conf/recipe/second.yaml").read_text()
    assert second.splitlines()[:3] == [
        "# @package _global_", "# proj/conf/recipe/second.yaml",
        "# second: started from recipe first. Run it: edgeflow --config-dir proj/conf recipe=second"]
    assert second.splitlines()[3] == "defaults:" and "\nname: second\n" in second and "first" not in second.split("\n", 3)[3]
    assert (tmp_path / "proj/conf/recipe/first.yaml").read_text().split("\n", 3)[3] == second.split("\n", 3)[3].replace(
        "name: second", "name: first")

    monkeypatch.setattr(new_recipe, "BUILTIN", tmp_path / "proj/conf/recipe")  # as if proj/conf were edgeflow's
    capsys.readouterr()
    new_recipe.main(["third", "--from", "first", "--dir", "proj/conf/recipe"])
    assert capsys.readouterr().out.splitlines()[1] == "run it:  edgeflow recipe=third"


@pytest.mark.parametrize(("argv", "line"), [
    (["9lives"], "NAME '9lives': a letter first, then letters, digits or '_'"),
    (["quickstart"], "NAME 'quickstart': a built-in recipe has this name and would be run instead; choose another"),
    (["mine", "--from", "quickstat"], "--from: no recipe 'quickstat' (did you mean 'quickstart'?); recipes: "),
    (["mine", "--dir", "conf/recipes"], "--dir 'conf/recipes': must be a folder named 'recipe' inside a config folder"),
    (["mine", "--colour"], "unrecognized arguments: --colour"),
    ([], "the following arguments are required: name"),
])
def test_bad_argument_is_one_line_exit_2(argv: list[str], line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        new_recipe.main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"edgeflow new-recipe: bad argument: {line}"), err
    assert err.endswith(" (see edgeflow new-recipe --help)\n")
    assert not (tmp_path / "conf").exists()


def test_existing_file_is_never_overwritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "conf" / "recipe").mkdir(parents=True)
    (tmp_path / "conf" / "recipe" / "mine.yaml").write_text("my work\n")
    with pytest.raises(SystemExit) as stop:
        new_recipe.main(["mine"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.startswith("edgeflow new-recipe: bad argument: conf/recipe/mine.yaml exists;")
    assert (tmp_path / "conf" / "recipe" / "mine.yaml").read_text() == "my work\n"
