"""`rlcourse run`: course order, real kernels (nbclient) on tiny notebooks made here, the table, exit codes."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from rlcourse import cli
from rlcourse.classroom import runner

KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def write_notebook(path: Path, *sources: str) -> Path:
    nb = new_notebook(cells=[new_code_cell(s) for s in sources], metadata={"kernelspec": KERNELSPEC})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["run", *argv])
    return code, out.getvalue(), err.getvalue()


# --- course order (no kernels) -----------------------------------------------------

def test_course_order_is_notebooks_then_solutions_then_the_rest(tmp_path):
    for name in ["solutions/hw1.ipynb", "notebooks/02_b.ipynb", "notebooks/01_a.ipynb", "extra/x.ipynb",
                 "notebooks/.ipynb_checkpoints/01_a-checkpoint.ipynb", "notebooks/readme.md"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    given = [tmp_path / "extra", tmp_path / "solutions", tmp_path / "notebooks", tmp_path / "notebooks/01_a.ipynb"]
    order = [p.relative_to(tmp_path).as_posix() for p in runner.course_order(given)]
    assert order == ["notebooks/01_a.ipynb", "notebooks/02_b.ipynb", "solutions/hw1.ipynb", "extra/x.ipynb"]


def test_bad_paths_are_one_clear_sentence(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="does not exist"):
        runner.course_order([tmp_path / "missing.ipynb"])
    with pytest.raises(ValueError, match="is not a notebook"):
        runner.course_order([tmp_path / "notes.txt"])
    code, out, err = run_cli(str(tmp_path / "missing.ipynb"))
    assert code == 2 and out == ""
    assert err.strip().splitlines()[-1] == f"rlcourse run: {tmp_path / 'missing.ipynb'} does not exist: pass notebooks or folders of notebooks."


def test_out_folder_that_would_overwrite_a_source_is_refused(tmp_path):
    source = write_notebook(tmp_path / "course" / "notebooks" / "01.ipynb", "print(1)")
    before = source.read_bytes()
    code, _, err = run_cli(str(source), "--out", str(tmp_path / "course"))
    assert code == 2 and "would overwrite the source" in err
    assert source.read_bytes() == before


def test_malformed_notebooks_are_failed_rows_not_a_crash(tmp_path):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "solutions" / "not_json.ipynb").write_text("{not json")
    (tmp_path / "solutions" / "not_a_notebook.ipynb").write_text('{"cells": 3}')
    code, out, _ = run_cli(str(tmp_path / "solutions"), "--out", str(tmp_path / "out"))
    assert code == 1
    rows = {line.split()[0]: line for line in out.splitlines() if ".ipynb" in line}
    assert set(rows) == {str(tmp_path / "solutions" / n) for n in ["not_json.ipynb", "not_a_notebook.ipynb"]}
    assert all(" malformed " in row for row in rows.values())
    assert "total (2 notebooks, 2 failed)" in out and "FAILED" in out


# --- real kernels ----------------------------------------------------------------

@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A tiny course: one passing notebook (with an expected error and a 300 MiB string), one
    failing, one minimal; run once with rlcourse.classroom.runner, sources' bytes recorded before."""
    root = tmp_path_factory.mktemp("course")
    sources = [
        write_notebook(root / "notebooks" / "02_fails.ipynb",
                       "print('before')", "x = 1 / 0", "print('after')"),
        write_notebook(root / "notebooks" / "01_ok.ipynb",
                       "print('hello')", "# NBVAL_RAISES_EXCEPTION\nraise KeyError('on purpose')",
                       "blob = b'x' * (300 * 2**20)\nprint(len(blob))"),
        write_notebook(root / "solutions" / "hw_small.ipynb", "y = 2"),
    ]
    before = {p: p.read_bytes() for p in sources}
    out = root / "executed"
    results = runner.run_course([root / "solutions", root / "notebooks"], out, progress=False)
    return root, out, before, {r.path.name: r for r in results}, [r.path.name for r in results]


@pytest.mark.slow
def test_runs_in_course_order_and_reports_each_status(course):
    _, _, _, results, order = course
    assert order == ["01_ok.ipynb", "02_fails.ipynb", "hw_small.ipynb"]
    assert results["01_ok.ipynb"].status == "ok" and results["01_ok.ipynb"].error == ""
    assert results["hw_small.ipynb"].status == "ok"
    assert results["02_fails.ipynb"].status == "failed"
    assert results["02_fails.ipynb"].error == "ZeroDivisionError: division by zero"
    assert all(r.seconds > 0 for r in results.values())


@pytest.mark.slow
def test_peak_memory_is_the_kernels(course):
    # The kernel of 01_ok held a 300 MiB bytes object; hw_small's kernel held nothing big.
    _, _, _, results, _ = course
    big, small = results["01_ok.ipynb"].peak_mib, results["hw_small.ipynb"].peak_mib
    assert big is not None and small is not None
    assert big >= 300 > small
    assert big - small >= 250


@pytest.mark.slow
def test_executed_copies_go_to_out_and_sources_are_untouched(course):
    root, out, before, results, _ = course
    for path, content in before.items():
        assert path.read_bytes() == content, f"{path} was modified"
    ok = nbformat.read(out / "notebooks" / "01_ok.ipynb", as_version=4)
    assert ok.cells[0].outputs[0]["text"] == "hello\n"
    assert ok.cells[1].outputs[0]["ename"] == "KeyError"
    assert ok.cells[2].outputs[0]["text"] == f"{300 * 2**20}\n"
    failed = nbformat.read(out / "notebooks" / "02_fails.ipynb", as_version=4)
    assert failed.cells[0].outputs[0]["text"] == "before\n"
    assert failed.cells[1].outputs[0]["ename"] == "ZeroDivisionError"
    assert failed.cells[2].outputs == []  # nothing ran after the error
    assert results["hw_small.ipynb"].out_path == out / "solutions" / "hw_small.ipynb"


@pytest.mark.slow
def test_table_lists_every_notebook_and_the_totals(course):
    _, _, _, results, order = course
    table = runner.format_table([results[name] for name in order]).splitlines()
    assert table[0].split() == ["notebook", "seconds", "peak", "MiB", "status", "first", "error"]
    rows = {Path(line.split()[0]).name: line.split() for line in table[1:4]}
    assert rows["01_ok.ipynb"][3] == "ok" and rows["hw_small.ipynb"][3] == "ok"
    assert rows["02_fails.ipynb"][3:] == ["failed", "ZeroDivisionError:", "division", "by", "zero"]
    assert float(rows["01_ok.ipynb"][2]) == pytest.approx(results["01_ok.ipynb"].peak_mib, abs=0.5)
    total = table[-1].split()
    assert total[:5] == ["total", "(3", "notebooks,", "1", "failed)"] and total[-1] == "FAILED"
    assert float(total[5]) == pytest.approx(sum(r.seconds for r in results.values()), abs=0.1)


@pytest.mark.slow
def test_cli_exit_code_zero_when_all_pass_and_a_timeout_is_a_failed_row(tmp_path):
    ok = write_notebook(tmp_path / "notebooks" / "01.ipynb", "print(sum(range(10)))")
    code, out, _ = run_cli(str(ok), "--out", str(tmp_path / "out"))
    assert code == 0
    assert "total (1 notebooks, 0 failed)" in out and f"executed copies in {tmp_path / 'out'}" in out

    slow = write_notebook(tmp_path / "notebooks" / "02_slow.ipynb", "import time\ntime.sleep(60)")
    result = runner.run_notebook(slow, tmp_path / "out", timeout=2)
    assert result.status == "timeout" and "2 seconds" in result.error


def test_on_result_is_called_as_each_notebook_finishes(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "a.ipynb").write_text("{")
    (tmp_path / "notebooks" / "b.ipynb").write_text("[]")
    seen = []
    results = runner.run_course([tmp_path / "notebooks"], tmp_path / "out", progress=False, on_result=seen.append)
    assert seen == results and [r.path.name for r in seen] == ["a.ipynb", "b.ipynb"]
    assert all(r.status == "malformed" for r in seen)
