"""Hostile input: the importer fuzzed with hypothesis on mutations of a valid export.

Mutations: byte flips, truncations, splices (a chunk of one file pasted into
another place), type swaps of a field, deep nesting, huge numbers and huge
strings, in any file including the manifest, with the manifest's checksums
refreshed or not. Every input must end in

* exit 0, and then `tools.verify` proves the database holds the (mutated)
  export, or
* exit 1 with an `Error: ...` line on stderr, no database and no temporary file,

never a traceback, a hang (hypothesis deadline) or a runaway memory use (the
process's peak RSS is checked at the end). The default run tries a few hundred
cases; `make fuzz` sets `PYCHAT_FUZZ_EXAMPLES` for a long run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pychat_db.cli.generate import Spec, generate
from tests.support.faulty_vfs import import_leftovers
from tests.support.mutations import refresh_manifest

EXAMPLES = int(os.environ.get("PYCHAT_FUZZ_EXAMPLES", "300"))
FILES = (
    "manifest.json",
    "configuration.json",
    "threads.ndjson",
    "modes.ndjson",
    "tags.ndjson",
    "messages.ndjson",
    "mode_outputs.ndjson",
    "message_tags.ndjson",
)


def tool_main(module: str, argv: list[str]) -> tuple[int, str]:
    main: Callable[[list[str]], int] = __import__(f"tools.{module}", fromlist=["main"]).main
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, err.getvalue()


@pytest.fixture(scope="module")
def valid_export(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("fuzz") / "export"
    spec = Spec(
        seed=13, messages=30, threads=3, tags=5, modes=3, mode_outputs=4, blob_ratio=0.1, blob_min=100, blob_max=400
    )
    generate(out, spec, variant="canonical", quiet=True)
    return {name: (out / name).read_bytes() for name in FILES}


# -- mutations ---------------------------------------------------------------------------------

JSON_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**40, 1e308, -0.0, 0.5]),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


@st.composite
def mutation(draw: st.DrawFn, files: dict[str, bytes]) -> tuple[str, dict[str, bytes]]:
    out = dict(files)
    name = draw(st.sampled_from(FILES))
    data = out[name]
    kind = draw(
        st.sampled_from(["flip", "truncate", "splice", "type swap", "deep nesting", "huge number", "huge string"])
    )
    if kind == "flip":
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, max(0, len(data) - 1)))
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
    elif kind == "truncate":
        data = data[: draw(st.integers(0, len(data)))]
    elif kind == "splice":
        source = out[draw(st.sampled_from(FILES))]
        start = draw(st.integers(0, len(source)))
        chunk = source[start : start + draw(st.integers(0, 200))]
        at = draw(st.integers(0, len(data)))
        data = data[:at] + chunk + data[at + draw(st.integers(0, 50)) :]
    else:
        lines = _lines(data)
        index = draw(st.integers(0, max(0, len(lines) - 2)))
        try:
            obj: Any = json.loads(lines[index])
        except (ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict) and obj:
            key = draw(st.sampled_from(sorted(obj)))
            literal: str | None = None
            if kind == "type swap":
                obj[key] = draw(JSON_VALUES)
            elif kind == "deep nesting":
                depth = draw(st.sampled_from([50, 1000, 100_000]))
                literal = draw(st.sampled_from(["[", '{"a":'])) * depth
                literal += "1" + ("]" if literal[0] == "[" else "}") * depth
            elif kind == "huge number":
                literal = draw(st.sampled_from(["9" * 30, "9" * 5000, "-" + "1" * 400, "1e999", "-1e-999"]))
            else:
                obj[key] = draw(st.sampled_from(["x", "é"])) * draw(st.sampled_from([10_000, 2_000_000]))
            if literal is not None:
                obj[key] = "__LITERAL__"
            text = json.dumps(obj, ensure_ascii=draw(st.booleans()))
            if literal is not None:
                text = text.replace('"__LITERAL__"', literal)
            lines[index] = text.encode()
            data = b"\n".join(lines)
    out[name] = data
    return f"{kind} in {name}", out


def write_export(directory: Path, files: dict[str, bytes], refresh: bool) -> None:
    directory.mkdir()
    for name, data in files.items():
        (directory / name).write_bytes(data)
    if refresh:
        with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError, OSError):
            refresh_manifest(directory)


def check_one(files: dict[str, bytes], refresh: bool, label: str) -> str:
    with tempfile.TemporaryDirectory(prefix="pychat-fuzz-") as tmp:
        base = Path(tmp)
        export = base / "export"
        write_export(export, files, refresh)
        target = base / "chat.db"
        code, stderr = tool_main("import", [str(export), "--db", str(target), "--quiet"])
        assert "Traceback" not in stderr, f"{label}: {stderr}"
        assert import_leftovers(base) == [], f"{label}: temporary files left"
        if code == 0:
            vcode, vstderr = tool_main("verify", [str(export), "--db", str(target), "--samples", "10", "--quiet"])
            assert vcode == 0, f"{label}: imported, but verify says: {vstderr}"
            return "imported and verified"
        assert code == 1, f"{label}: exit {code}: {stderr}"
        assert any(line.startswith("Error: ") for line in stderr.splitlines()), f"{label}: {stderr!r}"
        assert not target.exists(), f"{label}: refused but a database was written"
        shutil.rmtree(export)
        return "refused"


TALLY: dict[str, int] = {}


def test_fuzz_the_importer(valid_export: dict[str, bytes]) -> None:
    assert check_one(valid_export, False, "unmutated") == "imported and verified"
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    @settings(
        max_examples=EXAMPLES,
        deadline=20_000,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data(), refresh=st.booleans())
    def one_case(data: st.DataObject, refresh: bool) -> None:
        label, files = data.draw(mutation(valid_export))
        if data.draw(st.booleans()):  # sometimes two mutations
            label2, files = data.draw(mutation(files))
            label = f"{label}, then {label2}"
        outcome = check_one(files, refresh, label)
        TALLY[outcome] = TALLY.get(outcome, 0) + 1

    one_case()
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    print(f"fuzz: {sum(TALLY.values())} cases: {TALLY}; peak RSS grew {grown_mb:.0f} MB")
    assert TALLY.get("refused", 0) > 0
    assert grown_mb < 300, f"peak RSS grew by {grown_mb:.0f} MB"


def test_deeply_nested_configuration_is_refused(valid_export: dict[str, bytes]) -> None:
    files = dict(valid_export)
    files["configuration.json"] = b'{"id":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}"
    assert check_one(files, True, "configuration.json nested 100,000 deep") == "refused"
