"""Sweeps: results on disk point by point, resume, SIGKILL, and the same numbers whichever
executor runs them (serial, local processes, a real Dask LocalCluster on loopback); records
that fail their checksum or do not parse are rejected with a warning and recomputed; two
sweeps on one folder share its points; workers die with their parent; a lost or unreachable
Dask scheduler is a one-line error."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import psutil
import pytest

from flatminima.errors import FlatMinimaError
from flatminima.validation import (
    OutputError,
    PointStore,
    RecordWarning,
    SchedulerError,
    make_executor,
    run_sweep,
)

HERE = Path(__file__).parent


def cheap_points(n: int = 4, escapes: int = 200) -> list[dict]:
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
            "target_escapes": escapes,
            "max_steps": 200_000,
            "seed": 100 + i,
        }
        for i in range(n)
    ]


def endless_point(seed: int = 0) -> dict:
    # no escape at this noise level: it runs to max_steps, hours away (killed long before)
    return {
        "task": "rate",
        "landscape": "double-well",
        "noise": "white",
        "lr": 1.0,
        "loss_scale": 0.05,
        "diffusion": 1e-5,
        "replicas": 64,
        "target_escapes": 1,
        "max_steps": 10**8,
        "seed": seed,
    }


def strip(results: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in results]


def run_script(code: str, *args: str, **kwargs) -> subprocess.Popen:
    """A Python process running ``code`` (in its own session, so killpg reaches its children)."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        start_new_session=True,
        **kwargs,
    )


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def count_records(path: Path) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RecordWarning)
        return len(PointStore(path).load()) if path.exists() else 0


def test_resume_skips_finished_points(tmp_path: Path, capsys) -> None:
    store = PointStore(tmp_path / "points.jsonl")
    first = run_sweep(cheap_points(2), store, make_executor(workers=0), progress=False)
    lines = (tmp_path / "points.jsonl").read_text().splitlines()
    assert len(lines) == 2
    again = run_sweep(cheap_points(3), store, make_executor(workers=0), label="s", progress=True)
    assert "2 of 3 points already done; running 1" in capsys.readouterr().out
    assert strip(again[:2]) == strip(first)
    # a torn last line (killed mid-write) is reported, set aside, and the point reruns
    with (tmp_path / "points.jsonl").open("a") as handle:
        handle.write('{"key": "tru')
    with pytest.warns(RecordWarning, match=r"points\.jsonl:4: incomplete last line"):
        assert len(store.load()) == 3
    assert (tmp_path / "points.jsonl.rejected").read_text() == '{"key": "tru\n'
    # the next record starts on a line of its own, not glued to a torn one
    with (tmp_path / "points.jsonl").open("a") as handle:
        handle.write('{"key": "tru')
    store.append({"task": "marker"}, {"value": 1})
    with pytest.warns(RecordWarning, match=r"points\.jsonl:4: not JSON"):
        records = store.load()
    assert len(records) == 4
    assert sum(r["point"] == {"task": "marker"} for r in records.values()) == 1


def test_tampered_and_malformed_records_are_rejected_and_recomputed(tmp_path: Path) -> None:
    """A record edited by hand (exposure / 1000, still valid JSON) must not be used: before
    checksums it was, and the verdict flipped. ``{}``, ``null``, a bad UTF-8 byte, a record
    without checksum and a torn line each get one warning naming the file and line, and every
    point comes back with the numbers of a clean run."""
    points = cheap_points(3)
    clean = run_sweep(
        points, PointStore(tmp_path / "clean.jsonl"), make_executor(workers=0), progress=False
    )
    path = tmp_path / "points.jsonl"
    shutil.copy(tmp_path / "clean.jsonl", path)
    lines = path.read_bytes().splitlines()
    edited = json.loads(lines[1])
    edited["result"]["exposure"] /= 1000  # rate x1000: the kind of edit that flips a verdict
    unsummed = json.loads(lines[2])
    del unsummed["sha256"]
    bad = [b"{}", b"null", b'{"key": "\xff\xfe"}', json.dumps(unsummed).encode()]
    path.write_bytes(
        b"\n".join([lines[0], json.dumps(edited).encode(), *bad])
        + b"\n"
        + b'{"key": "[1,2]", "point": {"ta'  # torn: no newline
    )
    with pytest.warns(RecordWarning) as caught:
        resumed = run_sweep(points, PointStore(path), make_executor(workers=0), progress=False)
    messages = [str(w.message) for w in caught]
    expected = {
        2: "checksum mismatch",
        3: "not a record",
        4: "not a record",
        5: "not valid UTF-8",
        6: "no checksum",
        7: "incomplete last line",
    }
    assert len(messages) == len(expected), messages
    for (number, reason), message in zip(sorted(expected.items()), messages, strict=True):
        assert message.startswith(f"{path}:{number}: {reason}"), message
        assert "\n" not in message
    assert strip(resumed) == strip(clean)  # the edited point was recomputed, not trusted
    rejected = (tmp_path / "points.jsonl.rejected").read_bytes().splitlines()
    assert rejected == [json.dumps(edited).encode(), *bad, b'{"key": "[1,2]", "point": {"ta']
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecordWarning)  # set aside once: no warning again
        records = PointStore(path).load()
    assert len(records) == 3 and len(path.read_bytes().splitlines()) == 3
    # a file of many bad lines (say from an old version): ten named, then one summary
    with path.open("ab") as handle:
        handle.write(b"{}\n" * 25)
    with pytest.warns(RecordWarning) as caught:
        assert len(PointStore(path).load()) == 3
    messages = [str(w.message) for w in caught]
    assert len(messages) == 11 and messages[9].startswith(f"{path}:13: not a record")
    assert messages[10] == (
        f"{path}: 15 more lines rejected (moved to points.jsonl.rejected), "
        "their points are recomputed"
    )


def test_executors_give_identical_numbers(tmp_path: Path) -> None:
    """Same seeds, same numbers: serial, local processes and Dask, each also resuming a store
    that another executor started."""
    points = cheap_points(3)
    serial = run_sweep(
        points, PointStore(tmp_path / "a.jsonl"), make_executor(workers=0), progress=False
    )
    first = (tmp_path / "a.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "b.jsonl").write_text(first[0])  # processes resume after one serial point
    processes = run_sweep(
        points, PointStore(tmp_path / "b.jsonl"), make_executor(workers=2), progress=False
    )
    (tmp_path / "c.jsonl").write_text(first[2])  # Dask resumes around the last one
    dask = run_sweep(
        points, PointStore(tmp_path / "c.jsonl"), make_executor(local_cluster=2), progress=False
    )
    assert strip(serial) == strip(processes) == strip(dask)
    assert count_records(tmp_path / "b.jsonl") == count_records(tmp_path / "c.jsonl") == 3


def test_sigkill_then_rerun_equals_uninterrupted(tmp_path: Path) -> None:
    """A sweep killed with SIGKILL while computing its third point; a second sweep started
    meanwhile on the same file skips the claimed point, computes the others, waits, and takes
    the point over once the kill releases its claim. Same numbers as an uninterrupted run."""
    points = cheap_points(5)
    target = tmp_path / "killed.jsonl"
    process = run_script(
        f"""
        import sys, time
        sys.path.insert(0, {str(HERE)!r})
        from test_sweep import cheap_points
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
        run_sweep(cheap_points(5), PointStore({str(target)!r}), make_executor(workers=0), progress=False)
        """
    )
    # count complete points, as the rerun will: a line being written is not one yet
    wait_for(lambda: count_records(target) >= 2, 120, "two finished points")
    time.sleep(0.3)  # the third point is claimed and sleeping
    assert process.poll() is None, "the sweep ended before it could be killed"
    outcome: dict = {}

    def second_sweep() -> None:
        try:
            outcome["results"] = run_sweep(
                points, PointStore(target), make_executor(workers=0), progress=False
            )
        except BaseException as exc:  # pragma: no cover - reported below
            outcome["error"] = exc

    other = threading.Thread(target=second_sweep)
    other.start()
    wait_for(lambda: count_records(target) >= 4, 60, "the second sweep's two points")
    time.sleep(0.5)
    assert other.is_alive(), "the second sweep did not wait for the claimed point"
    assert count_records(target) == 4  # it did not compute the claimed point itself
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    other.join(60)
    assert not other.is_alive() and "error" not in outcome, outcome
    clean = run_sweep(
        points, PointStore(tmp_path / "clean.jsonl"), make_executor(workers=0), progress=False
    )
    assert strip(outcome["results"]) == strip(clean)
    assert len(target.read_text().splitlines()) == 5  # each point once
    resumed = run_sweep(points, PointStore(target), make_executor(workers=0), progress=False)
    assert strip(resumed) == strip(clean)


SHARE = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {here!r})
from test_sweep import cheap_points
from flatminima.validation import PointStore, make_executor, run_sweep
points = cheap_points(15, escapes=600)
if sys.argv[1] == "backwards":
    points = points[::-1]
Path(sys.argv[2]).touch()  # ready
while not Path({go!r}).exists():
    time.sleep(0.005)
results = run_sweep(points, PointStore({store!r}), make_executor(workers=0), label="s")
print("RESULTS", json.dumps([{{k: v for k, v in r.items() if k != "seconds"}} for r in results[::-1 if sys.argv[1] == "backwards" else 1]]))
"""


def test_two_concurrent_sweeps_share_the_points(tmp_path: Path) -> None:
    """Two processes start the same 15-point sweep on one file at the same instant (one walks
    the points backwards). Before claims: 23 to 30 lines for 15 keys. Now each point is
    computed once, both processes do part of the work, and both return the same numbers as a
    serial run."""
    store, go = tmp_path / "points.jsonl", tmp_path / "go"
    code = SHARE.format(here=str(HERE), go=str(go), store=str(store))
    runs = [
        run_script(code, way, str(tmp_path / way), stdout=subprocess.PIPE, text=True)
        for way in ("forwards", "backwards")
    ]
    wait_for(lambda: all((tmp_path / w).exists() for w in ("forwards", "backwards")), 120, "ready")
    go.touch()
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    lines = store.read_text().splitlines()
    keys = [json.loads(line)["key"] for line in lines]
    assert len(lines) == len(set(keys)) == 15
    computed = [
        sum(1 for x in out.splitlines() if "/15 " in x and "(by another sweep)" not in x)
        for out in outputs
    ]
    assert sum(computed) == 15 and min(computed) >= 1, computed
    results = [json.loads(out.split("RESULTS ", 1)[1]) for out in outputs]
    serial = run_sweep(
        cheap_points(15, escapes=600),
        PointStore(tmp_path / "serial.jsonl"),
        make_executor(workers=0),
        progress=False,
    )
    assert results[0] == results[1] == json.loads(json.dumps(strip(serial)))
    assert not (tmp_path / "points.jsonl.claims").exists()  # tidied


ORPHANS = """
import sys
sys.path.insert(0, {here!r})
from test_sweep import cheap_points, endless_point
from flatminima.validation import PointStore, make_executor, run_sweep
if __name__ == "__main__":
    points = cheap_points(4) + [endless_point(1), endless_point(2)]
    run_sweep(points, PointStore(sys.argv[1]), make_executor(workers=2), progress=False)
"""


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for proc in processes:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            pass
    return out


def test_workers_die_with_their_parent(tmp_path: Path) -> None:
    """SIGKILL of the sweep's process while its two workers compute points that would run for
    hours: the workers (and multiprocessing's resource tracker) end within seconds, instead of
    staying alive, orphaned, until their points end."""
    script = tmp_path / "orphans.py"
    script.write_text(ORPHANS.format(here=str(HERE)))
    target = tmp_path / "points.jsonl"
    process = subprocess.Popen([sys.executable, str(script), str(target)], cwd=tmp_path)
    try:
        wait_for(lambda: count_records(target) >= 4, 180, "the cheap points")
        time.sleep(1.0)  # the workers are on the endless points
        children = psutil.Process(process.pid).children(recursive=True)
        assert len(alive(children)) >= 2, children
        process.kill()
        process.wait()
        killed = time.monotonic()
        while alive(children) and time.monotonic() - killed < 30:
            time.sleep(0.05)
        elapsed = time.monotonic() - killed
        assert not alive(children), f"orphans still alive {elapsed:.0f} s after the kill"
        assert elapsed < 10, elapsed
    finally:
        for proc in alive(psutil.Process(process.pid).children() if process.poll() is None else []):
            proc.kill()
        for proc in alive(children if "children" in locals() else []):
            proc.kill()


CLUSTER = """
import time
from distributed import LocalCluster
if __name__ == "__main__":
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           scheduler_port=0, dashboard_address=None)
    print(cluster.scheduler_address, flush=True)
    time.sleep(600)
"""


def test_dask_worker_killed_then_scheduler_killed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """An external Dask cluster: SIGKILL of a worker mid-sweep changes nothing (Dask reruns its
    point, same seed, same numbers); SIGKILL of the scheduler mid-sweep is a SchedulerError
    naming the address within seconds (it was a FutureCancelledError traceback), and a rerun
    resumes from the points that were saved."""
    script = tmp_path / "cluster.py"
    script.write_text(CLUSTER)
    env = {**os.environ, "PYTHONPATH": str(HERE)}
    cluster = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        cwd=tmp_path,
        env=env,
    )
    try:
        address = cluster.stdout.readline().strip()
        assert address.startswith("tcp://127.0.0.1:"), address
        points = cheap_points(6, escapes=1000)
        target = tmp_path / "dask.jsonl"

        def kill_a_worker() -> None:
            wait_for(lambda: count_records(target) >= 1, 120, "a first point")
            workers = [
                p
                for p in psutil.Process(cluster.pid).children()
                if "spawn_main" in " ".join(p.cmdline())
            ]
            workers[0].kill()

        killer = threading.Thread(target=kill_a_worker)
        killer.start()
        results = run_sweep(
            points, PointStore(target), make_executor(scheduler=address), progress=False
        )
        killer.join()
        serial = run_sweep(
            points, PointStore(tmp_path / "serial.jsonl"), make_executor(workers=0), progress=False
        )
        assert strip(results) == strip(serial)

        # now the scheduler goes, with an endless point in flight
        second = tmp_path / "second.jsonl"
        killed: list[float] = []

        def kill_the_cluster() -> None:
            wait_for(lambda: count_records(second) >= 2, 120, "two points")
            time.sleep(0.5)
            os.killpg(cluster.pid, signal.SIGKILL)
            killed.append(time.monotonic())

        killer = threading.Thread(target=kill_the_cluster)
        killer.start()
        capfd.readouterr()
        with pytest.raises(SchedulerError, match=address) as caught:
            run_sweep(
                [*points[:2], endless_point()],
                PointStore(second),
                make_executor(scheduler=address),
                progress=False,
            )
        raised = time.monotonic()
        killer.join()
        assert raised - killed[0] < 10, raised - killed[0]
        assert "rerun to resume" in str(caught.value) and "\n" not in str(caught.value)
        assert "Traceback" not in capfd.readouterr().err  # Dask's client logs nothing
        resumed = run_sweep(
            points[:2], PointStore(second), make_executor(workers=0), progress=False
        )
        assert strip(resumed) == strip(serial[:2])
    finally:
        if cluster.poll() is None:
            os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait()


def test_unreachable_scheduler_is_a_prompt_one_line_error(tmp_path: Path) -> None:
    """It was a traceback after Dask's 30 s connect timeout. Now make_executor checks the
    address (parse, TCP connect), and the sweep's own connection gives up after 5 s."""
    for address in ("tcp://127.0.0.1:1", "nonsense://x:1", "host-without-port", "tcp://:x"):
        start = time.monotonic()
        with pytest.raises(SchedulerError, match="scheduler") as caught:
            make_executor(scheduler=address)
        assert time.monotonic() - start < 10
        assert address in str(caught.value) and "\n" not in str(caught.value)
    # past the check (a scheduler that went away since): the sweep's connection times out
    from flatminima.validation import Executor

    start = time.monotonic()
    with pytest.raises(SchedulerError, match="scheduler") as caught:
        run_sweep(
            cheap_points(1),
            PointStore(tmp_path / "p.jsonl"),
            Executor("dask", scheduler="tcp://127.0.0.1:1"),
            progress=False,
        )
    assert time.monotonic() - start < 20
    assert "tcp://127.0.0.1:1" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(SchedulerError, match="scheduler"):
        make_executor(scheduler="tcp://host:1 ; rm -rf /")


def test_unwritable_output_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store = PointStore(blocker / "points.jsonl")
    with pytest.raises(OutputError, match="a-file") as caught:
        run_sweep(cheap_points(1), store, make_executor(workers=0), progress=False)
    assert str(blocker) in str(caught.value) and "\n" not in str(caught.value)
    from flatminima.validation import run_experiment

    with pytest.raises(OutputError, match="out: expected a folder that can be created") as caught:
        run_experiment("covariance", blocker / "out", quick=True, progress=False)
    assert str(blocker / "out") in str(caught.value)


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
    assert set(record) == {"key", "point", "result", "sha256"} and record["result"]["escapes"] > 0
