"""Sweeps: results on disk point by point, resume, SIGKILL, and the same numbers whichever
executor runs them (serial, local processes, a real Dask LocalCluster on loopback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from flatminima.errors import FlatMinimaError
from flatminima.validation import PointStore, make_executor, run_sweep


def cheap_points(n: int = 4) -> list[dict]:
    # a white-noise rate on the double well at ΔΦ ≈ 2: a few hundredths of a second per point
    return [
        {
            "task": "rate",
            "landscape": "double-well",
            "noise": "white",
            "lr": 1.0,
            "loss_scale": 0.05,
            "diffusion": 0.05 * 0.25 / 2 * (1 + 0.05 * i),
            "replicas": 512,
            "target_escapes": 200,
            "max_steps": 200_000,
            "seed": 100 + i,
        }
        for i in range(n)
    ]


def strip(results: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in results]


def test_resume_skips_finished_points(tmp_path: Path, capsys) -> None:
    store = PointStore(tmp_path / "points.jsonl")
    first = run_sweep(cheap_points(2), store, make_executor(workers=0), progress=False)
    lines = (tmp_path / "points.jsonl").read_text().splitlines()
    assert len(lines) == 2
    again = run_sweep(cheap_points(3), store, make_executor(workers=0), label="s", progress=True)
    assert "2 of 3 points already done; running 1" in capsys.readouterr().out
    assert strip(again[:2]) == strip(first)
    # a torn last line (killed mid-write) is ignored and the point reruns
    with (tmp_path / "points.jsonl").open("a") as handle:
        handle.write('{"key": "tru')
    assert len(store.load()) == 3
    # the next record starts on a line of its own, not glued to the torn one
    store.append({"task": "marker"}, {"value": 1})
    assert len(store.load()) == 4
    assert sum(r["point"] == {"task": "marker"} for r in store.load().values()) == 1


def test_executors_give_identical_numbers(tmp_path: Path) -> None:
    points = cheap_points(3)
    serial = run_sweep(
        points, PointStore(tmp_path / "a.jsonl"), make_executor(workers=0), progress=False
    )
    processes = run_sweep(
        points, PointStore(tmp_path / "b.jsonl"), make_executor(workers=2), progress=False
    )
    dask = run_sweep(
        points, PointStore(tmp_path / "c.jsonl"), make_executor(local_cluster=2), progress=False
    )
    assert strip(serial) == strip(processes) == strip(dask)


def test_sigkill_then_rerun_equals_uninterrupted(tmp_path: Path) -> None:
    points = cheap_points(5)
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_sweep import cheap_points
        import time
        import flatminima.validation._sweep as sweep
        from flatminima.validation import PointStore, make_executor, run_sweep
        real, calls = sweep.run_point, []
        def run_point(point):  # the third point is a long computation: the kill lands in it
            calls.append(point)
            result = real(point)
            if len(calls) == 3:
                time.sleep(600)
            return result
        sweep.run_point = run_point
        run_sweep(cheap_points(5), PointStore({str(tmp_path / "killed.jsonl")!r}), make_executor(workers=0), progress=False)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    target = tmp_path / "killed.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        # count complete points, as the rerun will: a line being written is not one yet
        if target.exists() and len(PointStore(target).load()) >= 2:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the sweep ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    done_before = len(PointStore(target).load())
    assert done_before == 2, done_before  # killed in the middle of the sweep
    resumed = run_sweep(points, PointStore(target), make_executor(workers=0), progress=False)
    clean = run_sweep(
        points, PointStore(tmp_path / "clean.jsonl"), make_executor(workers=0), progress=False
    )
    assert strip(resumed) == strip(clean)
    assert len(PointStore(target).load()) == 5


def test_script_without_main_guard_still_runs_with_an_explanation(tmp_path: Path) -> None:
    """Spawned workers re-import a script; without `if __name__ == "__main__":` they die while
    bootstrapping. The sweep finishes in process, with a warning that says why and what to do,
    and gives the same numbers as a serial run."""
    script = tmp_path / "no_guard.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import json, sys
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            from test_sweep import cheap_points, strip
            from flatminima.validation import PointStore, make_executor, run_sweep
            out = run_sweep(cheap_points(2), PointStore({str(tmp_path / "p.jsonl")!r}),
                            make_executor(workers=2), progress=False)
            print("RESULT", json.dumps(strip(out), sort_keys=True))
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "if __name__ == '__main__':" in done.stderr
    assert "Traceback" not in done.stderr  # the workers leave quietly; one warning explains
    assert f"{script}:" in done.stderr  # the warning points at the user's call, not at flatminima
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    serial = run_sweep(
        cheap_points(2), PointStore(tmp_path / "s.jsonl"), make_executor(workers=0), progress=False
    )
    assert json.loads(line[len("RESULT ") :]) == json.loads(json.dumps(strip(serial)))


def test_bad_executor_options() -> None:
    with pytest.raises(FlatMinimaError, match="scheduler"):
        make_executor(scheduler="tcp://x:1", local_cluster=2)
    with pytest.raises(FlatMinimaError, match="local_cluster"):
        make_executor(local_cluster=0)
    with pytest.raises(FlatMinimaError, match="workers"):
        make_executor(workers=-1)
    with pytest.raises(FlatMinimaError, match="task"):
        run_sweep(
            [{"task": "nope"}],
            PointStore("/tmp/never/used.jsonl"),
            make_executor(workers=0),
            progress=False,
        )


def test_points_file_is_json_lines(tmp_path: Path) -> None:
    run_sweep(
        cheap_points(1), PointStore(tmp_path / "p.jsonl"), make_executor(workers=0), progress=False
    )
    record = json.loads((tmp_path / "p.jsonl").read_text())
    assert set(record) == {"key", "point", "result"} and record["result"]["escapes"] > 0
