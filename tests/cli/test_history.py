"""``smc history`` and ``smc history prune`` through real ``python -m smc`` processes: which
database a prune touches, what it refuses, numbers out of range, trace ids as users type
them, and JSON output that keeps untrusted text inert (``docs/history.md``)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import psycopg

from smc.runtime.store import Store, history_entry, new_trace_id, open_store
from tests.support.backends import PG_URL
from tests.support.harness import Runner


def _finished_job(db: Path, job_id: str, trace_id: str | None = None) -> None:
    """One job added, claimed and completed in ``db``: history rows and a finished job."""
    with open_store(str(db)) as store:
        store.add_job("task", job_id=job_id, data={"n": 1}, trace_id=trace_id)
        claimed = store.claim_job("worker", ["task"])
        assert claimed is not None and claimed.id == job_id
        store.complete_job(job_id)


def _kept(db: Path) -> tuple[int, int]:
    """How many history rows and jobs ``db`` holds."""
    store: Store
    with open_store(str(db)) as store:
        return len(store.history(limit=100_000)), len(store.list_jobs(limit=1000))


def test_prune_takes_the_database_given_before_or_after_the_word_prune(runner: Runner) -> None:
    """``--db`` before ``prune`` once pruned the default database ($SMC_DB, ./smc.db) and left
    the one named alone: argparse copied the subcommand's default over it."""
    default, before, after = runner.db, runner.cwd / "before.db", runner.cwd / "after.db"
    for db in (default, before, after):
        _finished_job(db, "done")
    untouched = _kept(default)
    assert untouched == (3, 1)  # job_added, job_claimed, job_completed; the job

    pruned = runner.run(
        "history", "--db", str(before), "prune", "--older-than", "0s", "--format", "json"
    )
    assert json.loads(pruned.stdout)["jobs"] == 1
    pruned = runner.run("history", "prune", "--db", str(after), "--older-than", "0s")
    assert pruned.stdout.startswith("pruned ")

    # Each named database lost its finished job and all but its newest history row.
    assert _kept(before) == _kept(after) == (1, 0)
    assert _kept(default) == untouched


def test_prune_refuses_the_listings_filters_and_removes_nothing(runner: Runner) -> None:
    """``smc history --machine M prune`` once pruned everything, filters ignored."""
    _finished_job(runner.db, "done")
    kept = _kept(runner.db)
    for option in (
        ["--machine", "nobody"],
        ["--kind", "error"],
        ["--job", "other"],
        ["--trace", new_trace_id()],
        ["--since", "1h"],
        ["--after-id", "1"],
        ["--limit", "5"],
        ["--newest"],
    ):
        refused = runner.run("history", *option, "prune", "--older-than", "0s", check=False)
        assert refused.returncode == 2, (option, refused.stderr)
        assert refused.stderr.startswith(f"smc history prune: error: {option[0]}")
        assert len(refused.stderr.splitlines()) == 1
    refused = runner.run("history", "--format", "jsonl", "prune", "--older-than", "0s", check=False)
    assert refused.returncode == 2 and "--format jsonl" in refused.stderr
    assert _kept(runner.db) == kept
    # --format before the word is the prune's, when it is one the prune prints.
    pruned = runner.run("history", "--format", "json", "prune", "--older-than", "0s")
    assert json.loads(pruned.stdout)["jobs"] == 1


def test_numbers_beyond_64_bits_are_usage_errors_on_one_line(runner: Runner) -> None:
    _finished_job(runner.db, "done")
    for option, value in (
        ("--limit", str(2**63)),
        ("--limit", "0"),
        ("--after-id", str(10**23)),
        ("--after-id", "-1"),
    ):
        refused = runner.run("history", option, value, check=False)
        assert refused.returncode == 2, (option, value, refused.stderr)
        assert (
            refused.stderr
            == f"smc history: error: {option} must be between "
            + ("1" if option == "--limit" else "0")
            + f" and {2**63 - 1}\n"
        )
    listed = runner.run("history", "--limit", str(2**63 - 1), "--after-id", str(2**63 - 1))
    assert listed.stdout == ""


def test_a_trace_is_found_in_any_case_and_whatever_time_its_id_claims(runner: Runner) -> None:
    """ULIDs are case-insensitive, and a trace id whose time is ahead of this host's clock (a
    clock far ahead, an id made up) still finds its rows: its time bounds no search."""
    today = new_trace_id()
    ahead = "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"  # the largest ULID: year 10889
    _finished_job(runner.db, "today", trace_id=today)
    _finished_job(runner.db, "ahead", trace_id=ahead)
    for trace, job in ((today, "today"), (today.lower(), "today"), (ahead.lower(), "ahead")):
        listed = runner.run("history", "--trace", trace, "--format", "json")
        rows = json.loads(listed.stdout)
        assert [row["kind"] for row in rows] == ["job_added", "job_claimed", "job_completed"]
        assert {row["job_id"] for row in rows} == {job}
        assert {row["trace_id"] for row in rows} == {trace.upper()}


def test_json_output_escapes_non_ascii_text(runner: Runner) -> None:
    """Job data is untrusted: a bidi override reaches the terminal as ``\\u202e``, and the
    JSON still reads back to the text that was stored."""
    hostile = "\u202egnp.exe"
    with open_store(str(runner.db)) as store:
        store.add_job("task", job_id=hostile, data={"name": hostile})
    for output in ("json", "jsonl"):
        listed = runner.run("history", "--format", output)
        assert listed.stdout.isascii() and "\\u202e" in listed.stdout
        rows = json.loads(listed.stdout) if output == "json" else [json.loads(listed.stdout)]
        assert rows[0]["job_id"] == hostile


def test_newest_lists_the_latest_rows_and_a_cut_table_says_so(runner: Runner) -> None:
    for job_id in ("first", "second"):
        _finished_job(runner.db, job_id)
    everything = json.loads(runner.run("history", "--format", "json").stdout)
    assert len(everything) == 6
    newest = runner.run("history", "--limit", "2", "--newest", "--format", "json")
    assert json.loads(newest.stdout) == everything[-2:] and newest.stderr == ""
    cut = runner.run("history", "--limit", "2")
    assert len(cut.stdout.splitlines()) == 3  # the header and the oldest two
    assert cut.stderr.startswith("smc history: note: the oldest 2 rows that match")
    assert "--newest" in cut.stderr
    whole = runner.run("history", "--limit", "6")
    assert whole.stderr.startswith("smc history: note: the oldest 6")  # cannot know it is all
    assert runner.run("history", "--limit", "7").stderr == ""


def test_a_job_story_too_long_to_print_keeps_its_start_and_its_outcome(runner: Runner) -> None:
    """``smc jobs show`` of a job with more rows than it prints: its first and last halves,
    the gap marked and a note on stderr (it once printed the first 10,000 silently, without
    the claim and the completion that came after them)."""
    db = runner.cwd / "long.db"
    with open_store(str(db)) as store:
        job = store.add_job("task", job_id="long")
        claimed = store.claim_job("worker", ["task"])
        assert claimed is not None
        for _ in range(2):  # at most 10,000 rows wait staged at a time
            for n in range(5100):
                store.stage_history(
                    history_entry(
                        "transition",
                        "worker",
                        ts=time.time(),
                        event=f"tick{n}",
                        job_id="long",
                        from_state="a",
                        to_state="a",
                    )
                )
            store.flush_history()
        store.complete_job("long", claimed.claim_token, {"ok": True})
    shown = runner.run("jobs", "show", "--db", str(db), "long")
    lines = shown.stdout.splitlines()
    assert "job_claimed" in shown.stdout and "job_completed" in lines[-1]
    assert "…" in lines and "longer than 10000 rows" in shown.stderr
    story = json.loads(
        runner.run("jobs", "show", "--db", str(db), "long", "--format", "json").stdout
    )
    kinds = [row["kind"] for row in story["history"]]
    assert story["history_cut"] is True and len(kinds) == 10_000
    assert kinds[:2] == ["job_added", "job_claimed"] and kinds[-1] == "job_completed"
    assert story["history"][0]["trace_id"] == job.trace_id
    ids = [row["id"] for row in story["history"]]
    assert ids == sorted(ids) and ids[5000] - ids[4999] > 1  # the gap between the halves


def test_reading_or_pruning_a_database_that_is_not_there_says_so_and_makes_none(
    runner: Runner,
) -> None:
    """A mistyped ``--db`` once made an empty database there and printed nothing (or
    "pruned 0"): now a one-line usage error, and no file."""
    missing = runner.cwd / "typo.db"
    absent_schema = f"{PG_URL}?schema=smc_never_made_{uuid.uuid4().hex[:8]}"
    for args in (
        ("history", "--db", str(missing)),
        ("history", "prune", "--db", str(missing), "--older-than", "1d"),
        ("history", "--db", f"sqlite:///{missing}"),
        ("history", "prune", "--db", absent_schema, "--older-than", "1d"),
    ):
        result = runner.run(*args, check=False)
        assert result.returncode == 2, result
        command = "history prune" if "prune" in args else "history"
        assert result.stderr.startswith(f"smc {command}: error: --db: ") and result.stdout == ""
        assert len(result.stderr.splitlines()) == 1
    assert not missing.exists()
    with psycopg.connect(PG_URL, autocommit=True) as connection:
        found = connection.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s",
            (absent_schema.rsplit("=", 1)[1],),
        ).fetchone()
    assert found == (0,)


def test_a_query_that_matches_nothing_says_so_on_stderr(runner: Runner) -> None:
    db = runner.cwd / "some.db"
    _finished_job(db, "done")
    result = runner.run("history", "--db", str(db), "--job", "nope")
    assert result.stdout == "" and "no rows match" in result.stderr
    as_json = runner.run("history", "--db", str(db), "--job", "nope", "--format", "json")
    assert json.loads(as_json.stdout) == [] and "no rows match" in as_json.stderr
    as_lines = runner.run("history", "--db", str(db), "--job", "nope", "--format", "jsonl")
    assert as_lines.stdout == "" and "no rows match" in as_lines.stderr


def test_ages_take_ascii_digits_and_retention_errors_name_their_source(runner: Runner) -> None:
    db = runner.cwd / "ages.db"
    _finished_job(db, "done")
    arabic = runner.run("history", "prune", "--db", str(db), "--older-than", "١٢", check=False)
    assert arabic.returncode == 2 and "--older-than" in arabic.stderr
    # A negative age is refused as an age, not taken for an option ("expected one argument").
    for args in (["history", "prune", "--older-than", "-1d"], ["history", "--since", "-1d"]):
        negative = runner.run(*args, "--db", str(db), check=False)
        option = args[-2]
        assert negative.returncode == 2 and f"{option}: '-1d'" in negative.stderr, negative
    # A number needs its unit: `--older-than 5`, meant as days, pruned everything finished.
    bare = runner.run("history", "prune", "--db", str(db), "--older-than", "5", check=False)
    assert bare.returncode == 2 and "needs its unit" in bare.stderr
    with open_store(str(db)) as store:
        assert store.get_job("done") is not None  # nothing was pruned
    # ... and a basic ISO date is a date, not 20 million seconds.
    dated = runner.run("history", "--db", str(db), "--since", "20261128", check=False)
    assert dated.returncode == 0, dated.stderr
    # A value that is an option stays a missing value: `--db` is not taken for the age.
    missing = runner.run("history", "--since", "--db", str(db), check=False)
    assert missing.returncode == 2 and "'--db'" not in missing.stderr
    (runner.cwd / "m.yaml").write_text(
        "initial_state: a\nmetadata: {machine_name: m}\nstates: [a, b]\n"
        "transitions:\n  - {from: a, to: b, event: go}\n"
    )
    empty = runner.run("run", "m.yaml", "--db", str(db), "--history-retention", "", check=False)
    assert empty.returncode == 2 and "--history-retention: empty" in empty.stderr
    runner.env["SMC_HISTORY_RETENTION"] = "0s"
    from_env = runner.run("run", "m.yaml", "--db", str(db), check=False)
    assert from_env.returncode == 2
    assert "$SMC_HISTORY_RETENTION: must be more than 0" in from_env.stderr
