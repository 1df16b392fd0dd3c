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


def test_progress_is_a_bar_on_a_terminal_and_lines_in_a_log():
    import io

    from rts_mapper_plugin.__main__ import ConsoleProgress

    now = [0.0]
    log = io.StringIO()
    progress = ConsoleProgress("infer", log, clock=lambda: now[0])
    for fraction, seconds in ((0.0, 0), (0.04, 4), (0.1, 10), (0.12, 12), (0.55, 55), (1.0, 100)):
        now[0] = seconds
        progress.update(fraction)
    assert log.getvalue().splitlines() == [
        "infer:  10 % (10 s spent, about 1 min 30 s left)",
        "infer:  50 % (55 s spent, about 45 s left)",
        "infer: 100 % (1 min 40 s spent, about 0 s left)",
    ]

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    bar = ConsoleProgress("train", screen)
    bar.update(0.0)
    assert screen.getvalue() == "", "nothing before the first step"
    bar.update(0.25)
    assert "train:  25%|" in screen.getvalue() and "left" in screen.getvalue()
    bar.update(1.0)
    assert bar.bar is None and "100%" in screen.getvalue(), "closed when done"
