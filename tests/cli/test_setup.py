"""The command line's setting-up edges (issue 11): a missing ``postgres`` extra, ``smc run``
given a directory, one default folder for diagrams, the build cache kept out of git, help for
every subcommand, shell completion in real bash, and the schema's built-in action types."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from smc.catalog import BUILTIN_ACTIONS
from smc.cli import build_parser
from smc.compiler.schema import schema_path
from tests.support.cli import bash_completions, command_name

ROOT = Path(__file__).resolve().parents[2]
SIMPLE = ROOT / "examples" / "simple_worker"

#: Runs smc as if psycopg were not installed (an import of it fails, as when it is absent).
WITHOUT_PSYCOPG = (
    "import sys; sys.modules['psycopg'] = None; from smc.cli import main; "
    "raise SystemExit(main(sys.argv[1:]))"
)


def smc(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "smc", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def subcommands(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], str | None, argparse.ArgumentParser]]:
    """(words, help, parser) of every subcommand, nested ones (jobs add) included."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                found.append(((*prefix, name), helps.get(name), sub))
                found.extend(subcommands(sub, (*prefix, name)))
    return found


# ---- PostgreSQL without the postgres extra --------------------------------------------


@pytest.mark.parametrize(
    "command",
    [["status"], ["jobs", "add", "--type", "t"], ["send", "m", "go"], ["run", "x.yaml"]],
    ids=lambda c: c[0],
)
def test_a_postgres_url_without_psycopg_names_the_extra(tmp_path: Path, command: list[str]) -> None:
    url = "postgresql://127.0.0.1/test"
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_PSYCOPG, *command, "--db", url],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert (
        line.startswith(f"smc {command_name(command)}: error: ")
        and "Traceback" not in result.stderr
    )
    assert line.endswith("pip install 'smc-compiler[postgres]'"), line


def test_smc_db_naming_postgres_without_psycopg_is_the_same_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_PSYCOPG, "status"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SMC_DB": "postgres://127.0.0.1/test"},
    )
    assert result.returncode == 2
    assert result.stderr.strip().endswith("pip install 'smc-compiler[postgres]'")


# ---- smc run DIR ----------------------------------------------------------------------


def test_run_a_directory_says_so_and_names_the_machine_files(tmp_path: Path) -> None:
    result = smc("run", str(ROOT / "examples" / "pipeline"), cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "is a directory" in line
    for name in ("analyzer.yaml", "generator.yaml", "processor.yaml"):
        assert str(ROOT / "examples" / "pipeline" / name) in line
    assert not (tmp_path / "smc.db").exists()  # nothing ran


def test_run_a_directory_without_machines_says_what_to_pass(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = smc("run", "empty", cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "empty is a directory" in line and "MODULE:Class" in line


# ---- one default folder for diagrams --------------------------------------------------


def test_diagram_writes_where_build_writes_its_diagrams(tmp_path: Path) -> None:
    shutil.copytree(SIMPLE, tmp_path / "machines")
    assert smc("build", "machines", cwd=tmp_path).returncode == 0
    built = {p.name: p.read_bytes() for p in (tmp_path / "generated" / "diagrams").iterdir()}
    shutil.rmtree(tmp_path / "generated" / "diagrams")

    result = smc("diagram", "machines", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "diagrams").exists()
    drawn = {p.name: p.read_bytes() for p in (tmp_path / "generated" / "diagrams").iterdir()}
    assert drawn == built  # same folder, same files, same bytes
    assert smc("build", "machines", "--check", cwd=tmp_path).returncode == 0


def test_diagram_follows_the_configured_output(tmp_path: Path) -> None:
    shutil.copytree(SIMPLE, tmp_path / "machines")
    (tmp_path / "pyproject.toml").write_text('[tool.smc-compiler]\noutput = "src/gen"\n')
    assert smc("diagram", "machines", cwd=tmp_path).returncode == 0
    assert (tmp_path / "src" / "gen" / "diagrams" / "simple_worker.mmd").is_file()


# ---- the build cache stays out of git -------------------------------------------------


def test_the_build_cache_does_not_show_in_git_status(tmp_path: Path) -> None:
    shutil.copytree(SIMPLE, tmp_path / "machines")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    assert smc("build", "machines", cwd=tmp_path).returncode == 0
    assert any((tmp_path / ".smc-cache").glob("build-*.json"))  # the cache was written
    status = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=all"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert status and not [line for line in status if ".smc-cache" in line], status
    assert (tmp_path / ".smc-cache" / ".gitignore").read_text().splitlines()[-1] == "*"


# ---- help for every subcommand --------------------------------------------------------


def test_every_subcommand_and_argument_has_help() -> None:
    found = subcommands(build_parser())
    assert {words[0] for words, _, _ in found} >= {"schema", "send", "completion", "jobs"}
    for words, short_help, parser in found:
        assert short_help, words
        assert parser.description, words
        for action in parser._actions:
            if not isinstance(action, argparse._SubParsersAction):
                assert action.help, (words, action.dest)


@pytest.mark.parametrize(
    "words", [words for words, _, _ in subcommands(build_parser())], ids=" ".join
)
def test_help_of_every_subcommand(words: tuple[str, ...], tmp_path: Path) -> None:
    parser = dict((w, p) for w, _, p in subcommands(build_parser()))[words]
    result = smc(*words, "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: smc {' '.join(words)}")
    first_words = " ".join(str(parser.description).split()[:4])
    assert first_words in " ".join(result.stdout.split())


# ---- shell completion -----------------------------------------------------------------


def test_bash_completion_script_completes_in_real_bash(tmp_path: Path) -> None:
    (tmp_path / "machines").mkdir()
    top, jobs, detail, paths = bash_completions(
        tmp_path, 'smc ""', 'smc jobs ""', 'smc diagram --detail ""', "smc check mach"
    )
    assert top == {words[0] for words, _, _ in subcommands(build_parser()) if len(words) == 1}
    assert jobs == {"add", "list", "show", "retry", "cancel"}
    assert detail == {"names", "full"}
    assert paths == {"machines/"} or paths == {"machines"}


@pytest.mark.parametrize("shell", ["zsh", "tcsh"])
def test_zsh_and_tcsh_scripts_are_written(shell: str, tmp_path: Path) -> None:
    result = smc("completion", shell, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "smc" in result.stdout and "diagram" in result.stdout


def test_an_unknown_shell_is_a_usage_error(tmp_path: Path) -> None:
    assert smc("completion", "cmd.exe", cwd=tmp_path).returncode == 2


# ---- the schema for editors -----------------------------------------------------------


def test_the_schema_offers_exactly_the_built_in_action_types() -> None:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    action_type = schema["$defs"]["action"]["properties"]["type"]
    builtin, user = action_type["anyOf"]
    assert builtin["enum"] == list(BUILTIN_ACTIONS), "update the enum from smc/catalog.py"
    assert "enum" not in user and action_type["type"] == "string"  # user types stay valid


def test_schema_output_writes_the_schema_file(tmp_path: Path) -> None:
    result = smc("schema", "--output", "s.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "s.json").read_bytes() == schema_path().read_bytes()
    assert smc("schema", cwd=tmp_path).stdout == schema_path().read_text(encoding="utf-8")
    missing = smc("schema", "--output", "no/such/dir/s.json", cwd=tmp_path)
    assert missing.returncode == 2 and len(missing.stderr.splitlines()) == 1
