"""The control plane's input types: one definition per kind of value, used by the API's
schemas, the CLI's parameters and the spec and config loaders alike, so a value the CLI
takes the API takes too, and the reverse. The primitives and most limits are
``health.inputs`` (a node checks its own reports with them).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field, Strict

from health import inputs
from health.inputs import InputError

# Request bodies: the largest legitimate one is a node's report of MAX_RESULTS_PER_REPORT
# results with full evidence (~2.5 MB); refused before parsing above this.
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_RESULTS_PER_REPORT = 1000
# A short free-text field that is not a reason (a GPU model, a host).
MAX_SHORT_TEXT = 128
# Configuration and spec files are read whole; anything larger is not one.
MAX_FILE_BYTES = 1024 * 1024

# Tenant names become Slurm accounts and Kubernetes namespaces (tenant-<name>): both accept
# these. Users are login names (Slurm and POSIX; Kubernetes takes any string).
TENANT_NAME = re.compile(r"[a-z][a-z0-9-]{1,38}[a-z0-9]")
TENANT_NAME_HINT = (
    "3-40 characters of lower-case letters, digits and '-', starting with a letter "
    "and ending with a letter or digit"
)
USER_NAME = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
USER_NAME_HINT = "1-32 characters: lower-case letters, digits, '_', '.' or '-', not a digit first"
# Pool names are Kubernetes label values and Slurm partition names.
POOL_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?")
POOL_NAME_HINT = "1-63 letters, digits, '.', '_' or '-', starting and ending with a letter or digit"
MAX_USERS = 1000
MAX_QUOTAS = 64
MAX_GPUS_PER_QUOTA = 100_000
MAX_GPU_HOURS_BUDGET = 1e9
MAX_WALL_TIME_HOURS = 24 * 365


def _checked(fn: Any) -> AfterValidator:
    """A pydantic validator from an ``inputs`` check (its InputError is a ValueError)."""
    return AfterValidator(fn)


def reason(value: str) -> str:
    """A drain reason: one line of printable text, whitespace runs made one space."""
    inputs.text(value, "reason", max_len=inputs.MAX_REASON)
    cleaned = " ".join(value.split())
    if not cleaned:
        raise InputError("reason must not be empty")
    return cleaned


def tenant_name(value: str) -> str:
    return inputs.name(value, "tenant name", TENANT_NAME, TENANT_NAME_HINT)


def user_name(value: str) -> str:
    return inputs.name(value, "user name", USER_NAME, USER_NAME_HINT)


def pool_name(value: str) -> str:
    return inputs.name(value, "pool name", POOL_NAME, POOL_NAME_HINT)


def short_text(value: str) -> str:
    return inputs.text(value, "text", max_len=MAX_SHORT_TEXT, empty=False)


def node_name(value: str) -> str:
    return inputs.node_name(value)


Reason = Annotated[str, Field(max_length=inputs.MAX_REASON), _checked(reason)]
NodeName = Annotated[str, Field(max_length=inputs.MAX_NODE_NAME), _checked(node_name)]
TenantName = Annotated[str, Field(max_length=40), _checked(tenant_name)]
UserName = Annotated[str, Field(max_length=32), _checked(user_name)]
PoolName = Annotated[str, Field(max_length=63), _checked(pool_name)]
ShortText = Annotated[str, Field(max_length=MAX_SHORT_TEXT), _checked(short_text)]
# Strict: no booleans for numbers, no "8" for 8 (JSON and TOML alike). Ranges belong to
# each field (a range here would override the field's own).
StrictInt = Annotated[int, Strict()]
FiniteFloat = Annotated[float, Strict(), Field(allow_inf_nan=False)]


def known_checks() -> frozenset[str]:
    """Every check name a result can carry (what `down_checks` may name)."""
    from compute.services.fabric import PAIR_CHECK
    from health.checks import burnin_checks, passive_checks
    from health.consistency import CHECK as DRIFT_CHECK
    from health.dcgm import CHECK_NAME as DCGM_CHECK
    from health.result import BURNIN_SUMMARY

    names = {c.name for c in (*passive_checks(), *burnin_checks())}
    return frozenset(names | {BURNIN_SUMMARY, DRIFT_CHECK, DCGM_CHECK, PAIR_CHECK, "telemetry"})


def first_error(errors: list[Any]) -> str:
    """One line from pydantic's errors: where, then what (ours without 'Value error, ')."""
    first = errors[0]
    loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    msg = str(first.get("msg", "invalid"))
    if first.get("type") == "extra_forbidden":
        msg = "unknown field"
    msg = msg.removeprefix("Value error, ")
    return inputs.printable(f"{loc}: {msg}" if loc else msg)


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file as a table; any way it cannot be one is an InputError naming the file."""
    try:
        with path.expanduser().open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"{what} {path} is a directory") from None
    except OSError as exc:
        raise InputError(f"{what} {path} cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise InputError(f"{what} {path} is larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {path} is not UTF-8 text (byte {exc.start})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{what} {path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise InputError(f"{what} {path} is nested too deeply") from None
