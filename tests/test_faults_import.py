"""Every I/O fault point of an import of a small but complete export.

`tools.import`'s `main()` runs in-process with `PYCHAT_DB_VFS` naming the
fault-injecting VFS, so every database file it opens (the temporary file, the
old target it settles) goes through it. For each fault point, I/O error or disk
full, once or for good, and with no target or an existing one (`--force`):

* the import exits 0, or exits 1 with one `Error: ...` line on stderr and no
  traceback;
* on failure no target is created, an existing target is byte-for-byte
  untouched, and no temporary file is left beside it;
* on success the target holds exactly the export (same content as a fault-free
  import) and passes `integrity_check` and `foreign_key_check`.

Every point is tried in the default run (about 6 s per case).
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from pathlib import Path

import pytest

from pychat_db.cli.generate import Spec, generate
from pychat_db.connection import VFS_ENVIRONMENT_VARIABLE
from tests.support.exports import make_export
from tests.support.faulty_vfs import (
    FULL,
    IOERR,
    Fault,
    FaultyVFS,
    db_digest,
    import_leftovers,
    install,
    remove_db,
)


def import_main(argv: list[str]) -> int:
    module = __import__("tools.import", fromlist=["main"])
    result = module.main(argv)
    assert isinstance(result, int)
    return result


def run_import(export: Path, target: Path, *extra: str) -> tuple[int, str]:
    err = io.StringIO()
    out = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = import_main([str(export), "--db", str(target), "--quiet", *extra])
        except SystemExit as exc:  # argparse only
            code = int(exc.code or 0)
        except BaseException as exc:  # a traceback is a failure of the test, reported with its cause
            raise AssertionError(f"the import raised {exc!r} instead of exiting 1") from exc
    return code, err.getvalue()


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small export of every collection: 40 messages, 4 with blobs, tags, modes, outputs, configuration."""
    out = tmp_path_factory.mktemp("faults-import") / "export"
    spec = Spec(
        seed=3, messages=40, threads=4, tags=6, modes=3, mode_outputs=6, blob_ratio=0.1, blob_min=1000, blob_max=3000
    )
    generate(out, spec, variant="canonical", quiet=True)
    return out


@pytest.fixture(scope="module")
def vfs() -> FaultyVFS:
    return install("faulty-import")


def fault_loop(
    export: Path, tmp_path: Path, vfs: FaultyVFS, monkeypatch: pytest.MonkeyPatch, *, existing: bool, sample: int | None
) -> tuple[int, Counter[str]]:
    monkeypatch.setenv(VFS_ENVIRONMENT_VARIABLE, vfs.name)
    directory = tmp_path / "out"
    directory.mkdir()
    target = directory / "chat.db"
    reference = tmp_path / "reference.db"
    previous = tmp_path / "previous.db"
    vfs.arm(None)
    assert run_import(export, reference) == (0, "")
    expected = db_digest(reference)
    other = make_export(tmp_path / "other", messages=20, seed=11)
    assert run_import(other, previous)[0] == 0
    old_bytes = previous.read_bytes()
    extra = ("--force",) if existing else ()

    def prepare() -> None:
        remove_db(target)
        if existing:
            target.write_bytes(old_bytes)
            target.chmod(0o600)

    prepare()
    vfs.arm(None)
    assert run_import(export, target, *extra) == (0, "")
    total = vfs.points
    assert total > 10
    if sample is None:
        plan = [Fault(n, e, p) for n in range(1, total + 1) for e in (IOERR, FULL) for p in (False, True)]
    else:
        step = max(1, total // sample)
        points = sorted({1, 2, total - 1, total, *range(1, total + 1, step)})
        plan = [Fault(n, e) for n in points for e in (IOERR, FULL)] + [Fault(n, FULL, True) for n in points[::3]]

    tally: Counter[str] = Counter()
    for fault in plan:
        prepare()
        vfs.arm(fault)
        code, stderr = run_import(export, target, *extra)
        fired = bool(vfs.fired)
        vfs.arm(None)
        assert fired, fault
        assert "Traceback" not in stderr
        assert import_leftovers(directory) == [], f"{fault}: temporary files left: {import_leftovers(directory)}"
        if code == 0:
            assert db_digest(target) == expected, f"{fault}: exit 0 but the target is not the export"
            tally["imported"] += 1
            continue
        assert code == 1, f"{fault}: exit {code}: {stderr}"
        errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
        assert len(errors) == 1, f"{fault}: {stderr!r}"
        if existing:
            assert target.read_bytes() == old_bytes, f"{fault}: the existing target changed"
        else:
            assert not target.exists(), f"{fault}: a target was created"
        tally["refused, target untouched"] += 1
    return total, tally


@pytest.mark.parametrize("existing", [False, True], ids=["new target", "existing target"])
def test_every_fault_point_of_an_import(
    export: Path, tmp_path: Path, vfs: FaultyVFS, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    total, tally = fault_loop(export, tmp_path, vfs, monkeypatch, existing=existing, sample=None)
    print(f"import ({'existing' if existing else 'new'} target): {total} fault points x 4: {dict(tally)}")
    assert sum(tally.values()) == 4 * total
    assert tally["refused, target untouched"] > 0, tally
