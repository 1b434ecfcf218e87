"""A user's ordinary mistake on the `corral` command line is one line on stderr and exit 2,
never a traceback; an unexpected failure is one line too, with the traceback behind --debug."""

from __future__ import annotations

from typing import Any

import pytest

from nodes import cli
from nodes.cli import commands as cli_commands

NOWHERE = ["--connect", "tcp://127.0.0.1:1", "--timeout", "0.2"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse's own refusals
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def assert_one_line(err: str) -> None:
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    "endpoint",
    [
        "localhost:5555",
        "http://127.0.0.1:5555",
        "tcp://localhost",
        "tcp://h:70000",
        "tcp://h:1,localhost:5555",  # one bad endpoint of a list, named alone
    ],
)
def test_a_connect_endpoint_the_config_would_refuse_is_one_line_and_exit_2(capsys, endpoint):
    code, err = run(capsys, "get", "job-1", "--connect", endpoint)
    assert code == 2
    assert_one_line(err)
    assert endpoint.rpartition(",")[2] in err and "--connect" in err


@pytest.mark.parametrize(
    ("meta", "problem"),
    [("{bad", "not valid JSON"), ("[1]", "expected a JSON map"), ("", "not valid JSON")],
)
def test_a_meta_that_is_not_a_json_map_is_one_line_and_exit_2(capsys, meta, problem):
    code, err = run(capsys, "enqueue", "t", "--meta", meta, *NOWHERE)
    assert code == 2
    assert_one_line(err)
    assert "--meta" in err and problem in err


@pytest.mark.parametrize(
    "argv",
    [
        ("get", "j", "--timeout", "0"),
        ("get", "j", "--timeout", "nan"),
        ("get", "j", "--wait", "-1"),
        ("enqueue", "t", "--in", "-5"),
        ("enqueue", "t", "--in", "inf"),
        ("enqueue", "t", "--priority", str(2**31)),
        ("enqueue", "t", "--max-attempts", "0"),
        ("enqueue", "t", "--wait", "-1"),
        ("enqueue", "t", "--job-timeout", "0"),
        ("status", "--watch", "0"),
    ],
)
def test_a_flag_out_of_its_range_is_refused_in_one_line_before_anything_is_sent(capsys, argv):
    code, err = run(capsys, *argv)
    assert code == 2
    assert_one_line(err)
    assert "argument" in err


def test_route_takes_one_pair_per_flag_and_leaves_the_positional_arguments_alone(
    capsys, monkeypatch
):
    sent: list[tuple[Any, ...]] = []

    class Recording:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def __enter__(self) -> Recording:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def enqueue(self, job_type: str, args: list[Any], **options: Any) -> str:
            sent.append((job_type, args, options["route"]))
            return "job-1"

        def stats(self) -> dict[str, Any]:
            return {"workers": []}

    monkeypatch.setattr(cli_commands, "Client", Recording)
    code, _ = run(capsys, "enqueue", "--route", "region=eu", "square", "3", *NOWHERE)
    assert code == 0
    assert sent == [("square", [3], {"region": "eu"})]


def test_an_unexpected_failure_is_one_line_pointing_at_debug(capsys, monkeypatch):
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the bug")

    monkeypatch.setattr(cli_commands, "Client", broken)
    code, err = run(capsys, "cancel", "job-1", *NOWHERE)
    assert code == 2
    assert_one_line(err)
    assert "RuntimeError: the bug" in err and "--debug" in err


def test_debug_shows_the_traceback_of_an_unexpected_failure(capsys, monkeypatch):
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the bug")

    monkeypatch.setattr(cli_commands, "Client", broken)
    code, err = run(capsys, "cancel", "job-1", *NOWHERE, "--debug")
    assert code == 2
    assert "Traceback" in err and "RuntimeError: the bug" in err


def test_version_prints_the_installed_distribution_version(capsys):
    from importlib import metadata

    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"corral {metadata.version('corral')}"


def test_every_enqueue_option_has_help_that_names_its_default(capsys):
    parser = cli.build_parser()
    enqueue = next(
        action for action in parser._subparsers._actions if action.dest == "command"
    ).choices["enqueue"]
    own = [a for a in enqueue._actions if a.option_strings and a.dest not in CLIENT_DESTS]
    assert own, "the enqueue options were not found"
    for action in own:
        assert action.help and "default" in action.help, action.option_strings


CLIENT_DESTS = {
    "help",
    "debug",
    "connect",
    "config",
    "timeout",
    "keys",
    "secret_key_file",
    "server_key_file",
}
