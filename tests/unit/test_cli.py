"""The command-line face: the contract outside checks rely on."""

from __future__ import annotations

import json

from tests.conftest import run_python


def test_env_json():
    done = run_python(["-m", "rts_mapper_plugin", "env", "--json"])
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["deep_learning_ready"] is True
    assert "torch" in report["versions"]


def test_version_and_help():
    done = run_python(["-m", "rts_mapper_plugin", "--version"])
    assert done.returncode == 0 and done.stdout.startswith("RTS Mapper ")
    done = run_python(["-m", "rts_mapper_plugin", "--help"])
    assert done.returncode == 0 and "COMMAND" in done.stdout


def test_unknown_command_is_exit_2_without_traceback():
    done = run_python(["-m", "rts_mapper_plugin", "no-such-command"])
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
