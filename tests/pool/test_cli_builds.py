"""Builds under ``controller reconcile`` as a process: plugins from the environment,
and no worker outliving a controller killed with SIGKILL mid-build."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from procs import alive, workers
from support import CONTROLLER, Cli, controller_env, wait_until

PLUGINS = Path(__file__).parent / "plugin_dist"


def _cli(tmp_path: Path, **extra: str) -> Cli:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        (src / f"post-{i}.md").write_text(f"Title: Post {i}\n\nbody\n")
    env = controller_env(
        tmp_path,
        PYTHONPATH=os.pathsep.join([str(PLUGINS), os.environ.get("PYTHONPATH", "")]),
        CONTROLLER_BUILDERS=json.dumps({".hang": "test-hang", ".segv": "test-segv"}),
        CONTROLLER_BLOGS_DIR=str(tmp_path / "blogs"),
        **extra,
    )
    cli = Cli(env)
    cli.run("blog", "add", "b", "--source", f"local:{src}")
    return cli


def test_a_crashing_builder_fails_its_file_and_the_cli_pass_reports_it(tmp_path: Path) -> None:
    cli = _cli(tmp_path)
    (tmp_path / "src" / "bad.segv").write_bytes(b"bad\n")
    report = json.loads(cli.run("reconcile", "--blog", "b", "--json").stdout)
    assert report["actions"]["set"] == 5 and report["errors"] == 1
    status = json.loads(cli.run("status", "--blog", "b", "--json").stdout)
    [bad] = [f for f in status["files"] if f["path"] == "bad.segv"]
    assert bad["state"] == "failed" and bad["error"] == "build crashed (signal 11)"


def test_an_unknown_builder_in_the_rules_is_an_error_at_start(tmp_path: Path) -> None:
    cli = _cli(tmp_path)
    cli.env["CONTROLLER_BUILDERS"] = json.dumps({".rst": "restructured"})
    message = cli.fails("reconcile", "--blog", "b")
    assert "CONTROLLER_BUILDERS names builders that are not installed: restructured" in message


def test_no_worker_survives_a_controller_killed_during_builds(tmp_path: Path) -> None:
    cli = _cli(tmp_path, CONTROLLER_BUILD_TIMEOUT="600", CONTROLLER_BUILD_WORKERS="2")
    for i in range(2):
        (tmp_path / "src" / f"stuck-{i}.hang").write_bytes(b"bad\n")
    controller = subprocess.Popen(
        [str(CONTROLLER), "reconcile", "--blog", "b"],
        env=cli.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: len(workers(controller.pid)) >= 2, 60, "workers building")
        time.sleep(0.5)  # both are inside their hanging builds
        building = set(workers(controller.pid))
        controller.send_signal(signal.SIGKILL)
        controller.wait(10)
        took = wait_until(lambda: not any(alive(p) for p in building), 5, "the workers to die")
        assert took < 2.0
    finally:
        if controller.poll() is None:
            controller.kill()
