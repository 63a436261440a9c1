"""Codegen: golden cases, the repository's generated files, `--check`, headers, mappers."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen.errors import CodegenError
from codegen.pipeline import existing, generate
from codegen.protocols import PROTOCOLS
from pychat_db import aio, repositories
from pychat_db.aio import protocols as async_protocols
from pychat_db.connection import connect
from pychat_db.generated import async_protocols as generated_async
from pychat_db.generated import mappers, sqlite_repositories
from pychat_db.generated.enums import MessageType
from pychat_db.generated.rows import ConfigurationRow, MessageRow, ThreadRow
from pychat_db.migrations import migrate
from pychat_db.repositories import sqlite

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())


def _case_root(case: str, tmp_path: Path) -> Path:
    """A repository-shaped copy of a golden case: its schema/ (or the real one) and its queries/."""
    source = GOLDEN / case
    root = tmp_path / case
    shutil.copytree(source / "schema" if (source / "schema").is_dir() else ROOT / "schema", root / "schema")
    shutil.rmtree(root / "schema" / "snapshots", ignore_errors=True)
    if (source / "queries").is_dir():
        shutil.copytree(source / "queries", root / "queries")
    return root


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, tmp_path: Path) -> None:
    source = GOLDEN / case
    root = _case_root(case, tmp_path)
    error_file = source / "expected_error.txt"
    if error_file.exists():
        with pytest.raises(CodegenError) as caught:
            generate(root)
        if os.environ.get("UPDATE_GOLDEN"):
            error_file.write_text(str(caught.value) + "\n", encoding="utf-8")
        assert str(caught.value) == error_file.read_text(encoding="utf-8").rstrip("\n")
        return
    out = generate(root)
    # A case with its own schema checks every generated module; others only the query wrappers.
    prefix = "pychat_db/generated/"
    wanted = "" if (source / "schema").is_dir() else "queries/"
    modules = {
        path.removeprefix(prefix): text
        for path, text in out.items()
        if path.startswith(prefix + wanted) and not path.endswith("__init__.py")
    }
    expected_dir = source / "expected"
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.rmtree(expected_dir, ignore_errors=True)
        for name, text in modules.items():
            (expected_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / name).write_text(text, encoding="utf-8")
    expected = {
        p.relative_to(expected_dir).as_posix(): p.read_text(encoding="utf-8") for p in expected_dir.rglob("*.py")
    }
    assert modules.keys() == expected.keys()
    for name, text in modules.items():
        assert text == expected[name], f"{case}/expected/{name} differs (UPDATE_GOLDEN=1 to accept)"


GOLDEN_OUTPUTS = sorted(p.parent.name for p in GOLDEN.glob("*/expected"))


@pytest.mark.parametrize("case", GOLDEN_OUTPUTS)
def test_golden_outputs_pass_ruff_and_mypy(case: str, tmp_path: Path) -> None:
    """The expected modules are valid, formatted, strictly typed Python (checked inside a copy of the package)."""
    expected_dir = GOLDEN / case / "expected"
    files = sorted(str(p) for p in expected_dir.rglob("*.py"))
    assert files
    bin_dir = Path(sys.executable).parent
    for args in (["ruff", "check", "--no-cache", *files], ["ruff", "format", "--check", "--no-cache", *files]):
        result = subprocess.run([str(bin_dir / args[0]), *args[1:]], capture_output=True, text=True, cwd=ROOT)
        assert result.returncode == 0, result.stdout + result.stderr
    package = tmp_path / "pkg"
    shutil.copytree(ROOT / "pychat_db", package / "pychat_db", ignore=shutil.ignore_patterns("__pycache__"))
    generated = package / "pychat_db" / "generated"
    for path in expected_dir.rglob("*.py"):
        shutil.copy(path, generated / path.relative_to(expected_dir))
    targets = [str(generated / p.relative_to(expected_dir)) for p in expected_dir.rglob("*.py")]
    config = ["--config-file", str(ROOT / "pyproject.toml")]
    result = subprocess.run(
        [str(bin_dir / "mypy"), "--strict", "--no-incremental", *config, *targets],
        capture_output=True,
        text=True,
        cwd=package,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_golden_wrappers_run_against_a_real_database(tmp_path: Path) -> None:
    """The `wrappers` case's generated module, imported and called on a migrated database."""
    import importlib.util

    module_path = GOLDEN / "wrappers" / "expected" / "queries" / "sample.py"
    text = module_path.read_text(encoding="utf-8").replace(
        'QUERIES_DIR / "sample.sql"', repr(str(GOLDEN / "wrappers" / "queries" / "sample.sql"))
    )
    copy = tmp_path / "golden_sample.py"
    copy.write_text(text, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("golden_sample", copy)
    assert spec is not None and spec.loader is not None
    sample = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = sample  # dataclasses look their module up
    try:
        spec.loader.exec_module(sample)
    finally:
        del sys.modules[spec.name]
    conn = connect(":memory:")
    migrate(conn)
    when = dt.datetime(1969, 7, 20, 20, 17, 40, 1, tzinfo=dt.UTC)
    with conn:
        conn.execute("INSERT INTO threads (id, name, created_at) VALUES (7, 'moon', '1969-07-20T20:17:40.000001Z')")
        conn.execute(
            "INSERT INTO messages (id, thread_id, text, timestamp, type) VALUES "
            "(1, 7, 'a', '1969-07-20T20:17:41.000000Z', 'audio'), (2, 7, 'b', '1969-07-20T20:17:42.000000Z', 'text')"
        )
        tag_id = sample.insert_tag(conn, id=None, name="t", description="", is_editable=True)
        sample.add_links(conn, [sample.AddLinksParams(message_id=1, tag_id=tag_id)])
    assert sample.get_thread(conn, id=7) == ThreadRow(7, "moon", when)
    assert sample.get_thread(conn, id=8) is None
    assert sample.list_threads_before(conn, before_created_at=when + dt.timedelta(seconds=1), page_limit=5) == [
        ThreadRow(7, "moon", when)
    ]
    assert sample.count_messages_of_type(conn, thread_id=7, kind=MessageType.AUDIO) == 1
    assert sample.latest_message_time(conn, thread_id=7) == dt.datetime(1969, 7, 20, 20, 17, 42, tzinfo=dt.UTC)
    assert sample.latest_message_time(conn, thread_id=99) is None
    counts = sample.thread_names_with_counts(conn, thread_id=7)
    assert {(r.name, r.type, r.n) for r in counts} == {("moon", MessageType.AUDIO, 1), ("moon", MessageType.TEXT, 1)}
    with conn:
        assert sample.delete_tags_of_messages(conn, message_ids=[1, 2]) == 1
        sample.vacuum_tags(conn)
    assert conn.execute("SELECT count(*) FROM tags").fetchone() == (0,)
    with conn:
        conn.execute("INSERT INTO modes (id, name, prompt) VALUES (3, 'old', 'p')")
        renamed = sample.rename_mode(conn, id=3, name="new")
    assert (renamed.id, renamed.name) == (3, "new")


def test_repository_generated_files_are_current() -> None:
    """What `python -m codegen --check` checks, in process: regenerating changes nothing."""
    assert generate(ROOT) == existing(ROOT)


def test_generation_is_deterministic() -> None:
    """Two fresh processes with different hash seeds (set and dict orders differ) write the same bytes."""
    script = (
        "import hashlib, json, sys; from pathlib import Path; from codegen.pipeline import generate; "
        "out = generate(Path(sys.argv[1])); "
        "print(json.dumps({str(k): hashlib.sha256(v.encode()).hexdigest() for k, v in sorted(out.items())}))"
    )
    digests = []
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", script, os.fspath(ROOT)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        digests.append(done.stdout)
    assert digests[0] == digests[1] and len(digests[0]) > 100


def test_every_generated_file_names_its_sources_with_their_hashes() -> None:
    for path, text in generate(ROOT).items():
        head = text[:4000]
        assert "python -m codegen" in head, path
        assert "do not edit" in head, path
        listed = re.findall(r"([\w/.-]+\.(?:sql|j2|py))\"?:? \"?([0-9a-f]{64})", head)
        if path.endswith("__init__.py"):
            continue
        assert listed, path
        for source, digest in listed:
            assert hashlib.sha256((ROOT / source).read_bytes()).hexdigest() == digest, (path, source)


def _copy_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name in ("schema", "queries"):
        shutil.copytree(ROOT / name, root / name)
    shutil.copytree(ROOT / "pychat_db" / "generated", root / "pychat_db" / "generated",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    (root / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "schema.md", root / "docs" / "schema.md")
    (root / PROTOCOLS).parent.mkdir(parents=True)
    shutil.copy(ROOT / PROTOCOLS, root / PROTOCOLS)
    return root


def _codegen(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codegen", *map(str, args)], cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_check_fails_on_a_stale_file_in_a_copy_of_the_repo(tmp_path: Path) -> None:
    root = _copy_repo(tmp_path)
    assert _codegen("--check", "--root", root).returncode == 0

    rows = root / "pychat_db" / "generated" / "rows.py"
    rows.write_text(rows.read_text(encoding="utf-8").replace("    name: str\n", "    name: bytes\n", 1))
    (root / "schema" / "snapshots" / "0002.json").unlink()
    (root / "pychat_db" / "generated" / "leftover.py").write_text("x = 1\n")
    before = rows.read_text(encoding="utf-8")

    result = _codegen("--check", "--root", root)
    assert result.returncode == 1
    assert "pychat_db/generated/rows.py: stale" in result.stderr
    assert "schema/snapshots/0002.json: missing" in result.stderr
    assert "pychat_db/generated/leftover.py: not generated (delete it)" in result.stderr
    assert result.stderr.splitlines()[-1] == "Error: 3 generated file(s) out of date; run `python -m codegen`"
    assert "--- a/pychat_db/generated/rows.py\n+++ b/pychat_db/generated/rows.py" in result.stdout
    assert "-    name: bytes\n+    name: str\n" in result.stdout
    assert rows.read_text(encoding="utf-8") == before  # --check writes nothing

    assert _codegen("--root", root).returncode == 0
    assert _codegen("--check", "--root", root).returncode == 0
    assert not (root / "pychat_db" / "generated" / "leftover.py").exists()


def test_check_fails_when_a_query_changes(tmp_path: Path) -> None:
    root = _copy_repo(tmp_path)
    threads = root / "queries" / "threads.sql"
    threads.write_text(threads.read_text(encoding="utf-8") + "\n-- name: count_threads()$\n-- column n: int\n"
                       "SELECT count(*) AS n FROM threads;\n")  # fmt: skip
    result = _codegen("--check", "--root", root)
    assert result.returncode == 1
    assert "pychat_db/generated/queries/threads.py: stale" in result.stderr
    assert "+def count_threads(" in result.stdout


def test_check_fails_when_a_repository_protocol_changes(tmp_path: Path) -> None:
    """A method declared (and marked) on a protocol is a new SQLite method running its plan, and a new async one."""
    root = _copy_repo(tmp_path)
    protocols = root / PROTOCOLS
    text = protocols.read_text(encoding="utf-8")
    anchor = "class TagRepository(Protocol):\n"
    assert anchor in text
    declared = (
        "    @reads\n"
        "    def count(self, *, editable: bool | None = None) -> int:\n"
        '        """How many tags there are (`editable`: only those)."""\n'
        "        ...\n\n"
    )
    protocols.write_text(text.replace(anchor, anchor + declared, 1), encoding="utf-8")
    result = _codegen("--check", "--root", root)
    assert result.returncode == 1
    assert "pychat_db/generated/sqlite_repositories.py: stale" in result.stderr
    assert "pychat_db/generated/async_protocols.py: stale" in result.stderr
    assert "+    def count(self, *, editable: bool | None = None) -> int:\n" in result.stdout
    assert "+        return self._run(TagPlans.count(editable=editable))\n" in result.stdout
    assert "+    async def count(self, *, editable: bool | None = None) -> int:\n" in result.stdout
    assert '+        """How many tags there are (`editable`: only those)."""\n' in result.stdout


def test_an_unmarked_protocol_method_is_refused(tmp_path: Path) -> None:
    root = _copy_repo(tmp_path)
    protocols = root / PROTOCOLS
    anchor = "class TagRepository(Protocol):\n"
    text = protocols.read_text(encoding="utf-8").replace(anchor, anchor + "    def count(self) -> int: ...\n\n", 1)
    protocols.write_text(text, encoding="utf-8")
    with pytest.raises(
        CodegenError, match=r"^pychat_db/repositories/protocols\.py: TagRepository\.count: not described"
    ):
        generate(root)


def test_generated_repositories_of_long_and_keyword_signatures_are_formatted(tmp_path: Path) -> None:
    """However a protocol method's signature is laid out, the generated modules are what ruff format writes."""
    root = _copy_repo(tmp_path)
    protocols = root / PROTOCOLS
    anchor = "class TagRepository(Protocol):\n"
    declared = (
        "    @reads\n"
        "    def count(self, message_id: int, /, *, editable: bool | None = None, name: str = 'x') -> int: ...\n\n"
        "    @reads\n"
        "    def search_everything(\n"
        "        self,\n"
        "        first_long_parameter_name: builtins.list[Tag] | None = None,\n"
        "        second_long_parameter_name: builtins.list[Tag] | None = None,\n"
        "    ) -> builtins.list[Tag]: ...\n\n"
    )
    protocols.write_text(protocols.read_text(encoding="utf-8").replace(anchor, anchor + declared, 1), encoding="utf-8")
    out = generate(root)
    files = []
    for name in ("sqlite_repositories.py", "async_protocols.py"):
        path = tmp_path / name
        path.write_text(out[f"pychat_db/generated/{name}"], encoding="utf-8")
        files.append(str(path))
    assert (
        "TagPlans.count(message_id, editable=editable, name=name)" in out["pychat_db/generated/sqlite_repositories.py"]
    )
    ruff = Path(sys.executable).parent / "ruff"
    for args in (["check", "--no-cache", "--select", "E,F,W,I"], ["format", "--check", "--no-cache", "--diff"]):
        result = subprocess.run([str(ruff), *args, *files], capture_output=True, text=True, cwd=ROOT, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_public_paths_name_the_generated_repositories() -> None:
    assert sqlite.SQLiteThreadRepository is sqlite_repositories.SQLiteThreadRepository
    assert repositories.SQLiteTagRepository is sqlite_repositories.SQLiteTagRepository
    assert async_protocols.AsyncThreadRepository is generated_async.AsyncThreadRepository
    assert aio.AsyncRepositories is generated_async.AsyncRepositories
    assert set(sqlite_repositories.__all__) < set(repositories.__all__)
    assert set(generated_async.__all__) < set(aio.__all__)


def test_codegen_error_is_one_error_line_per_problem_and_exit_1(tmp_path: Path) -> None:
    root = _case_root("unindexed_scan", tmp_path)
    (root / "queries" / "more.sql").write_text("-- name: bad()\nSELECT nope FROM threads;\n", encoding="utf-8")
    result = _codegen("--root", root)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "Error: queries/more.sql:1: query bad: SQLite cannot prepare it: no such column: nope",
        "Error: queries/search.sql:1: query search_messages: reads every row of messages (SCAN m); "
        "make it use an index, or say why with a comment line `full scan: <reason>`",
    ]
    assert not (root / "pychat_db").exists()  # nothing written


def test_usage_error_exits_2() -> None:
    assert _codegen("--bogus").returncode == 2


def test_secret_columns_stay_out_of_repr() -> None:
    row = ConfigurationRow(id=1, api_key="sk-very-secret", base_url=None, model_name="m")
    assert "sk-very-secret" not in repr(row)
    assert "sk-very-secret" not in str(row)


_texts = st.text()
_ids = st.integers(min_value=-(2**63), max_value=2**63 - 1)
_times = st.datetimes(
    min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59), timezones=st.just(dt.UTC)
)


@settings(max_examples=60, deadline=None)
@given(
    thread_id=_ids,
    message_id=_ids,
    created=_times,
    stamp=_times,
    text=_texts,
    kind=st.sampled_from(MessageType),
    blob=st.none() | st.binary(max_size=64),
    optional=st.none() | _texts,
)
def test_mappers_round_trip_through_sqlite(
    thread_id: int,
    message_id: int,
    created: dt.datetime,
    stamp: dt.datetime,
    text: str,
    kind: MessageType,
    blob: bytes | None,
    optional: str | None,
) -> None:
    conn = connect(":memory:")
    migrate(conn)
    thread = ThreadRow(thread_id, text, created)
    message = MessageRow(message_id, thread_id, text, stamp, kind, text, blob, optional, optional, optional)
    with conn:
        conn.execute(
            f"INSERT INTO threads VALUES ({', '.join('?' * len(mappers.THREAD_COLUMNS))})", mappers.thread_to_db(thread)
        )
        names = ", ".join(f":{c}" for c in mappers.MESSAGE_COLUMNS)
        conn.execute(f"INSERT INTO messages VALUES ({names})", mappers.message_to_params(message))
    stored_thread = conn.execute(f"SELECT {', '.join(mappers.THREAD_COLUMNS)} FROM threads").fetchone()
    stored_message = conn.execute(f"SELECT {', '.join(mappers.MESSAGE_COLUMNS)} FROM messages").fetchone()
    assert stored_thread is not None and stored_message is not None
    assert mappers.thread_from_db(stored_thread) == thread
    assert mappers.message_from_db(stored_message) == message
    conn.close()


def test_schema_errors_name_the_migration(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "schema").mkdir(parents=True)
    migration = root / "schema" / "0001_initial.sql"
    table = 'CREATE TABLE t (id INTEGER PRIMARY KEY, kind TEXT NOT NULL CONSTRAINT "{}" CHECK (kind IN ({}))) STRICT;\n'
    migration.write_text(table.format("t.kind", "0, 1"), encoding="utf-8")
    with pytest.raises(CodegenError, match=r"^schema/0001_initial\.sql: table t: column kind is TEXT but its CHECK"):
        generate(root)
    migration.write_text(table.format("x.kind", "'a'"), encoding="utf-8")
    with pytest.raises(CodegenError, match=r'table t: CHECK named "x.kind"; name it "t.<column>"'):
        generate(root)


def test_query_on_a_missing_table_is_refused(tmp_path: Path) -> None:
    """aiosql loads it happily; SQLite refuses to prepare it."""
    root = _case_root("unpreparable", tmp_path)
    (root / "queries" / "broken.sql").write_text("-- name: all_users()\nSELECT id FROM users;\n", encoding="utf-8")
    with pytest.raises(
        CodegenError, match=r"^queries/broken\.sql:1: query all_users: SQLite cannot prepare it: no such table: users"
    ):
        generate(root)


@pytest.mark.parametrize(
    "text",
    [
        "2024-2-29T23:59:59.999999Z",
        "2024-02-29T23:59:59Z",
        "2024-02-29 23:59:59.999999Z",
        "2023-02-29T00:00:00.000000Z",
    ],
)
def test_mappers_refuse_non_canonical_timestamps(text: str) -> None:
    with pytest.raises(ValueError):
        mappers.thread_from_db((1, "t", text))
