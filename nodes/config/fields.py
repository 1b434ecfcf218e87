"""Checks for config values: each names the file, the node and the key it refuses.

A config model is a dataclass whose YAML keys are the fields carrying a `check` in their
metadata (see `check`); `parse_keys` refuses unknown keys, fills defaults and runs every check,
so one table per node kind is both the schema and the documentation of its defaults.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import math
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nodes.stores import POSTGRES_PREFIXES
from transport.errors import CorralError

Check = Callable[[Any, "Where", str], Any]
ENDPOINT_SCHEMES = ("tcp://", "ipc://", "inproc://")
SQLITE_PREFIX = "sqlite:///"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_TCP = re.compile(r"^tcp://(?:\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(?:\*|\d{1,5})$")
MAX_PORT = 65535
MAX_SECONDS = 366 * 24 * 3600.0  # a year: longer is a typo, and timers overflow near 1e300


class ConfigError(CorralError):
    """A config file that cannot be used; the message names the file, node and key."""

    code = "config_error"
    node: str | None = None  # where it is, for the line number (nodes.config.source)
    key: str | None = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Where:
    """The place a value came from, for error messages."""

    file: str
    node: str | None = None
    base_dir: Path = Path(".")

    def error(self, problem: str, key: str | None = None, *, at: str | None = None) -> ConfigError:
        """The error, naming file, node and `key`; `at` locates a key the problem names itself
        (an unknown key), for its line."""
        parts = [self.file]
        if self.node is not None:
            parts.append(f"node {self.node!r}")
        if key:
            parts.append(f"key {key!r}")
        error = ConfigError(": ".join([*parts, problem]))
        error.node, error.key = self.node, key or at
        return error


def check(fn: Check) -> dict[str, Check]:
    """Field metadata marking a dataclass field as a YAML key validated by `fn`:
    `bind: str = field(default=DEFAULT_BIND, metadata=check(endpoint))`."""
    return {"check": fn}


def parse_keys(
    raw: Any, cls: type, where: Where, prefix: str = "", ignore: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Validate mapping `raw` against the keyed fields of dataclass `cls`; return its kwargs."""
    if not isinstance(raw, Mapping):
        raise where.error(f"expected a mapping, got {_show(raw)}", prefix.rstrip(".") or None)
    fields = {f.name: f for f in dataclasses.fields(cls) if "check" in f.metadata}
    for name in raw:
        if name in ignore:
            continue
        if name not in fields:
            hint = difflib.get_close_matches(str(name), list(fields), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise where.error(
                f"unknown key {prefix + str(name)!r}{suggestion}", at=prefix + str(name)
            )
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        if name in raw and raw[name] is not None:
            values[name] = spec.metadata["check"](raw[name], where, prefix + name)
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise where.error("is required", prefix + name)
    return values


def _show(value: Any) -> str:
    text = repr(value)
    return (text if len(text) <= 40 else text[:37] + "...") + f" ({type(value).__name__})"


# -- scalar checks ----------------------------------------------------------------------------


def text(value: Any, where: Where, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise where.error(f"expected a non-empty string, got {_show(value)}", name)
    return value


def flag(value: Any, where: Where, name: str) -> bool:
    if not isinstance(value, bool):
        raise where.error(f"expected true or false, got {_show(value)}", name)
    return value


def integer(minimum: int, maximum: int | None = None) -> Check:
    """An int in [minimum, maximum] (booleans refused: YAML `yes` is not a number)."""

    def check(value: Any, where: Where, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise where.error(f"expected an integer, got {_show(value)}", name)
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise where.error(f"expected an integer {bound}, got {value}", name)
        return value

    return check


def seconds(*, allow_zero: bool = False, maximum: float = MAX_SECONDS) -> Check:
    """A finite duration in seconds (int or float), > 0 (or >= 0), at most `maximum`."""

    def check(value: Any, where: Where, name: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise where.error(f"expected a number of seconds, got {_show(value)}", name)
        low = ">=" if allow_zero else ">"
        if (
            not math.isfinite(value)
            or value < 0
            or (value == 0 and not allow_zero)
            or value > maximum
        ):
            raise where.error(f"expected a number {low} 0 and <= {maximum:.0f}, got {value}", name)
        return float(value)

    return check


def endpoint(value: Any, where: Where, name: str) -> str:
    """A ZeroMQ endpoint: `tcp://host:port` (port 1-65535, or `*` to bind any), `ipc://path`
    or `inproc://name`; the CLI's `--connect` is checked here too."""
    address = text(value, where, name)
    if not address.startswith(ENDPOINT_SCHEMES) or address in ENDPOINT_SCHEMES:
        raise where.error(f"expected an endpoint like tcp://127.0.0.1:5555, got {value!r}", name)
    if address.startswith("tcp://"):
        port = address.rpartition(":")[2]
        if not _TCP.match(address) or (port != "*" and not 1 <= int(port) <= MAX_PORT):
            raise where.error(
                f"expected tcp://HOST:PORT with a port from 1 to {MAX_PORT}, got {value!r}", name
            )
    return address


def endpoints(value: Any, where: Where, name: str) -> str | tuple[str, ...]:
    """A peer's `connect:`: one endpoint, or a non-empty list of them (coordinators sharing
    one database, tried in order for the leader), each checked as `endpoint`."""
    if not isinstance(value, list):
        return endpoint(value, where, name)
    if not value:
        raise where.error("expected an endpoint or a non-empty list of endpoints, got []", name)
    return tuple(endpoint(item, where, f"{name}[{i}]") for i, item in enumerate(value))


def log_level(value: Any, where: Where, name: str) -> str:
    level = text(value, where, name).upper()
    if level not in LOG_LEVELS:
        raise where.error(f"expected one of {', '.join(LOG_LEVELS)}, got {value!r}", name)
    return level


def store_url(value: Any, where: Where, name: str) -> str:
    """`memory`, `sqlite:///relative.db` (resolved against the config's directory) or
    `postgresql://user:pass@host:port/db` (`postgres://` too), kept as it is."""
    url = text(value, where, name)
    if url == "memory":
        return url
    if url.startswith(POSTGRES_PREFIXES) and url.partition("://")[2]:
        return url
    if not url.startswith(SQLITE_PREFIX) or len(url) == len(SQLITE_PREFIX):
        raise where.error(
            "expected 'memory', 'sqlite:///path.db' or 'postgresql://user:pass@host:port/db', "
            f"got {url!r}",
            name,
        )
    rest = url.removeprefix(SQLITE_PREFIX)
    if rest == ":memory:" or rest.startswith("/"):
        return url
    return SQLITE_PREFIX + str(where.base_dir / rest)


def file_path(value: Any, where: Where, name: str) -> Path:
    """A path, relative to the config file's directory unless absolute."""
    return where.base_dir / Path(text(value, where, name)).expanduser()


def ref(value: Any, where: Where, name: str) -> str:
    """A `module:callable` reference, imported later by `import_ref`."""
    if not isinstance(value, str) or not _REF.match(value):
        raise where.error(f"expected 'module:callable', got {_show(value)}", name)
    return value


# -- collections ------------------------------------------------------------------------------


def str_list(value: Any, where: Where, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise where.error(f"expected a non-empty list of strings, got {_show(value)}", name)
    return tuple(text(item, where, f"{name}[{i}]") for i, item in enumerate(value))


def mapping_of(values: Check) -> Check:
    """A mapping with non-empty string keys whose values pass `values`."""

    def check(value: Any, where: Where, name: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise where.error(f"expected a mapping, got {_show(value)}", name)
        out: dict[str, Any] = {}
        for item_key, item in value.items():
            if not isinstance(item_key, str) or not item_key:
                raise where.error(f"keys must be non-empty strings, got {_show(item_key)}", name)
            out[item_key] = values(item, where, f"{name}.{item_key}")
        return out

    return check


def plain_data(value: Any, where: Where, name: str) -> Any:
    """Data msgpack can carry: str, int, float, bool, null, lists and string-keyed maps."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list):
        return [plain_data(item, where, f"{name}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return mapping_of(plain_data)(value, where, name)
    raise where.error(f"expected plain data (quote dates and such), got {_show(value)}", name)


def data_list(value: Any, where: Where, name: str) -> tuple[Any, ...]:
    if not isinstance(value, list):
        raise where.error(f"expected a list, got {_show(value)}", name)
    return tuple(plain_data(value, where, name))


# -- imports ----------------------------------------------------------------------------------


def import_ref(reference: str, where: Where, name: str) -> Callable[..., Any]:
    """Import `module:callable`, with the config's directory first on sys.path.

    Users keep their handler modules next to their config, so that directory must be importable
    whatever the current directory of the process is.
    """
    base = str(where.base_dir)
    if base not in sys.path:
        sys.path.insert(0, base)
    module_name, _, attribute = reference.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except Exception as exc:  # ImportError, AttributeError, or the module's own failure
        raise where.error(
            f"cannot import {reference!r}: {type(exc).__name__}: {exc}", name
        ) from exc
    if not callable(target):
        raise where.error(f"{reference!r} is not callable", name)
    return target  # type: ignore[no-any-return]


# -- ready-made field metadata ----------------------------------------------------------------

TEXT = check(text)
FLAG = check(flag)
POSITIVE_INT = check(integer(1))
SECONDS = check(seconds())
SECONDS_OR_ZERO = check(seconds(allow_zero=True))
ENDPOINT = check(endpoint)
ENDPOINTS = check(endpoints)
LOG_LEVEL = check(log_level)
STORE_URL = check(store_url)
FILE_PATH = check(file_path)
REF = check(ref)
STR_LIST = check(str_list)
STR_MAP = check(mapping_of(text))
LABELS = check(mapping_of(str_list))
HANDLERS = check(mapping_of(ref))
DATA_LIST = check(data_list)
