"""The `tokens` list of a gateway config: bearer tokens, each read from a file, and the roles
each grants (docs/OJS.md).

```yaml
gateway:
  kind: gateway
  connect: tcp://127.0.0.1:5555
  bind: 127.0.0.1:8080
  tokens:
    - {token_file: producer.token, roles: [client]}
    - {token_file: workers.token, roles: [worker]}
    - {token_file: ops.token, roles: [client, admin]}
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodes.config import fields as f
from nodes.config.fields import Where

ROLES = ("client", "worker", "admin")
MIN_TOKEN_CHARS = 16  # a token shorter than this is guessable: refused at load


@dataclass(frozen=True, kw_only=True)
class TokenConfig:
    token_file: Path = field(metadata=f.FILE_PATH)
    roles: tuple[str, ...] = field(metadata=f.STR_LIST)


def parse_tokens(value: Any, where: Where, name: str) -> tuple[TokenConfig, ...]:
    if not isinstance(value, list) or not value:
        raise where.error("expected a non-empty list of {token_file, roles}", name)
    tokens = []
    for index, raw in enumerate(value):
        at = f"{name}[{index}]"
        token = TokenConfig(**f.parse_keys(raw, TokenConfig, where, f"{at}."))
        unknown = [role for role in token.roles if role not in ROLES]
        if unknown or not token.roles:
            raise where.error(f"roles must name some of {', '.join(ROLES)}", f"{at}.roles")
        tokens.append(token)
    return tuple(tokens)


def read_tokens(tokens: tuple[TokenConfig, ...], where: Where) -> dict[str, tuple[str, ...]]:
    """Each token file's token (its text, stripped) -> its roles; a ConfigError names the file
    that cannot be read, is too short, or repeats another's token."""
    grants: dict[str, tuple[str, ...]] = {}
    for index, token in enumerate(tokens):
        key = f"tokens[{index}].token_file"
        try:
            text = token.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise where.error(f"cannot read {token.token_file}: {exc.strerror}", key) from exc
        if len(text) < MIN_TOKEN_CHARS:
            raise where.error(
                f"{token.token_file} holds a token of under {MIN_TOKEN_CHARS} characters", key
            )
        if text in grants:
            raise where.error(f"{token.token_file} repeats another file's token", key)
        grants[text] = token.roles
    return grants


TOKENS = f.check(parse_tokens)
