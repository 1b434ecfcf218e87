"""Argument types of the `corral` flags: each checks its range with the config's own checks, so
a flag and the YAML key it mirrors accept the same values and refuse them in the same words.

argparse turns the `ArgumentTypeError` these raise into its usage line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from nodes.config import fields as f
from nodes.config.fields import ConfigError, Where
from nodes.config.kinds import PRIORITY_MAX, PRIORITY_MIN

# Every flag value is a CLI argument, not a file: the config checks name the flag as the "file".
_CLI = Where("command line")
MAX_UNIX_S = 253_402_300_799.0  # 9999-12-31T23:59:59Z


def _checked(check: f.Check, parse: Callable[[str], Any], kind: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
        try:
            return check(value, _CLI, "")
        except ConfigError as exc:
            raise argparse.ArgumentTypeError(exc.message.removeprefix(f"{_CLI.file}: ")) from None

    convert.__name__ = kind  # argparse names the type in "invalid <name> value" messages
    return convert


SECONDS = _checked(f.seconds(), float, "a number of seconds")
SECONDS_OR_ZERO = _checked(f.seconds(allow_zero=True), float, "a number of seconds")
UNIX_TIME = _checked(f.seconds(allow_zero=True, maximum=MAX_UNIX_S), float, "a UNIX time")
POSITIVE_NUMBER = _checked(f.seconds(), float, "a positive number")
COUNT = _checked(f.integer(1), int, "an integer")
PRIORITY = _checked(f.integer(PRIORITY_MIN, PRIORITY_MAX), int, "an integer")


def endpoint(text: str, flag: str = "--connect") -> str:
    """A coordinator endpoint, checked as a config's `connect:` is (raises ConfigError)."""
    return f.endpoint(text, Where(flag), "")


def endpoints(text: str, flag: str = "--connect") -> tuple[str, ...]:
    """`--connect a,b`: coordinators sharing one database, tried in order for the leader;
    each checked as `endpoint` (raises ConfigError)."""
    return tuple(endpoint(part.strip(), flag) for part in text.split(","))


def meta(text: str) -> dict[str, Any]:
    """`--meta`: a JSON map (raises ConfigError naming the flag)."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"--meta: not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"--meta: expected a JSON map such as '{{\"k\": 1}}', got {text!r}")
    return value


def route_pair(text: str) -> tuple[str, str]:
    """`--route K=V`: one label pair per flag."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return name, value
