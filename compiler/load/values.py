"""Value rules of the spec: names, quantities, durations, cron, paths.

Each rule is a small pure function that returns the normalised value or raises `ValueError`
with a message that shows a valid form; the `Annotated` types below attach them to pydantic
fields. Messages never repeat the offending value for secrets (see `validate`).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from mlc.runtime.contract import checkpoint_cadence, duration_seconds

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_ENV_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUANTITY = re.compile(r"(?P<number>[+-]?(\d+(\.\d*)?|\.\d+))(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?")
_ENTRYPOINT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*")
_SHA256_REF = re.compile(r".+@sha256:[0-9a-f]{64}")


def dns_label(value: str, max_length: int = 63) -> str:
    """A DNS-1123 label: lower-case alphanumerics and '-', starting and ending alphanumeric."""
    if not _DNS_LABEL.fullmatch(value) or len(value) > max_length:
        suggestion = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")[:max_length] or "my-model"
        raise ValueError(
            f"must be a DNS-1123 label (lower-case letters, digits and '-', 1-{max_length} chars, "
            f"starting and ending with a letter or digit), e.g. '{suggestion}'"
        )
    return value


def project_name(value: str) -> str:
    """The project name prefixes every resource, so it leaves room for suffixes: 40 chars."""
    return dns_label(value, max_length=40)


def label_key(value: str) -> str:
    """A Kubernetes label key: `[prefix/]name`, prefix a DNS subdomain, name up to 63 chars."""
    prefix, _, name = value.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        raise ValueError("label key prefix must be a DNS subdomain, e.g. 'example.com/team'")
    if len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        raise ValueError(
            "label key must be 1-63 letters, digits, '-', '_' or '.', starting and ending "
            "alphanumeric (optionally prefixed 'example.com/'), e.g. 'team'"
        )
    return value


def label_value(value: str) -> str:
    """A Kubernetes label value: empty, or up to 63 chars of [A-Za-z0-9-_.], alphanumeric ends."""
    if value and (len(value) > 63 or not _LABEL_NAME.fullmatch(value)):
        raise ValueError(
            "label value must be at most 63 letters, digits, '-', '_' or '.', starting and ending "
            "alphanumeric, e.g. 'growth'"
        )
    return value


def quantity(value: str | int | float) -> str:
    """A Kubernetes quantity (`500m`, `2`, `16Gi`, `1.5`), normalised to a string, > 0."""
    if isinstance(value, bool):
        raise ValueError("must be a Kubernetes quantity such as '2', '500m' or '16Gi', got a boolean")
    text = str(value) if not isinstance(value, float) else format(Decimal(repr(value)), "f")
    match = _QUANTITY.fullmatch(text)
    if not match:
        raise ValueError(f"must be a Kubernetes quantity such as '2', '500m' or '16Gi'{_quantity_hint(text)}")
    try:
        number = Decimal(match["number"])
    except InvalidOperation:  # pragma: no cover - the regex admits only decimals
        raise ValueError("must be a Kubernetes quantity such as '2', '500m' or '16Gi'") from None
    if number <= 0:
        raise ValueError(f"must be greater than zero, got '{text}'")
    return text


def _quantity_hint(text: str) -> str:
    units = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtTpP])([iI]?)[bB]?\s*", text)
    if units:
        number, unit, binary = units.groups()
        unit = unit.upper() if unit not in "km" else unit
        if unit == "m":
            unit = "M"
        if binary:
            return f", got '{text}': did you mean '{number}{unit}i'?"
        return f", got '{text}': did you mean '{number}{unit}' (decimal) or '{number}{unit}i' (binary)?"
    return f", got '{text}'"


def quantity_to_number(value: str) -> Decimal:
    """The numeric value of a validated quantity (bytes for memory, cores for CPU)."""
    match = _QUANTITY.fullmatch(value)
    assert match, value
    number = Decimal(match["number"])
    suffix = match["suffix"] or ""
    binary = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
    decimal = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
    if suffix in binary:
        return number * (Decimal(1024) ** binary[suffix])
    if suffix in decimal:
        return number * (Decimal(10) ** decimal[suffix])
    if suffix:
        return number * (Decimal(10) ** int(suffix[1:]))
    return number


def duration(value: str) -> str:
    """A duration like `90s`, `90m`, `2h`, `7d` or `1h30m`, greater than zero (the contract's grammar)."""
    if not isinstance(value, str):
        raise ValueError(f"must be a duration such as '90m', '2h' or '7d', got '{value}'")
    if duration_seconds(value) == 0:
        raise ValueError("must be longer than zero, e.g. '10m'")
    return value


def checkpoint_every(value: str) -> str:
    """`epoch`, `<N>steps`, or a duration: the cadence the runtime saves checkpoints at."""
    checkpoint_cadence(value)
    return value


_CRON_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {
            m: i + 1
            for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])
        },
    ),
    # 0-6 as Kubernetes' cron parser (robfig/cron) reads it: it refuses 7, which other crons take for Sunday.
    ("day of week", 0, 6, {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}),
)
_CRON_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def cron(value: str) -> str:
    """A 5-field cron schedule (as Kubernetes CronJob reads it) or a macro like `@daily`."""
    if value in _CRON_MACROS:
        return value
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(
            f"must be a cron schedule of 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(fields)} field(s), e.g. '0 3 * * 1' (Mondays at 03:00)"
        )
    for text, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for part in text.split(","):
            problem = _cron_part_problem(part, low, high, names)
            if problem and name == "day of week" and "7 is out of range" in problem:
                problem += " (Sunday is 0 or SUN: Kubernetes does not read 7 as Sunday)"
            if problem:
                raise ValueError(f"cron {name} field '{text}': {problem}; valid range {low}-{high}")
    return value


def _cron_part_problem(part: str, low: int, high: int, names: dict[str, int]) -> str:
    base, _, step = part.partition("/")
    if step and (not step.isdigit() or int(step) == 0):
        return f"step '/{step}' must be a positive integer"
    if base == "*":
        return ""
    bounds = base.split("-")
    if len(bounds) > 2 or not all(bounds):
        return f"'{part}' is not a number, range (a-b) or '*'"
    values = []
    for bound in bounds:
        number = names.get(bound.upper()) if not bound.isdigit() else int(bound)
        if number is None:
            return f"'{bound}' is not a number"
        if not low <= number <= high:
            return f"{number} is out of range"
        values.append(number)
    if len(values) == 2 and values[0] > values[1]:
        return f"range '{base}' runs backwards"
    return ""


# Characters a path must not have: they are pattern syntax in .dockerignore (one pattern a line,
# `!` re-includes, `#` comments) and in COPY, or line breaks that would add instructions.
_PATH_SYNTAX = re.compile(r"[\x00-\x1f\x7f*?\[\]!#\\]")


def relative_path(value: str) -> str:
    """A relative POSIX path that stays inside the repository (no absolute path, no `..` escape),
    written as plain path characters (it becomes a COPY source and a .dockerignore line)."""
    _inside_the_repository(value)
    if _PATH_SYNTAX.search(value):
        raise ValueError(
            "must be a plain path: no line break, control character, glob (*?[]), '!', '#' or backslash, e.g. 'src/'"
        )
    return value


def _inside_the_repository(value: str) -> str:
    """A non-empty relative path without control characters that does not climb out with `..`."""
    if not value or re.search(r"[\x00-\x1f\x7f]", value):
        raise ValueError("must be a non-empty relative path without line breaks or control characters, e.g. 'src/'")
    if value.startswith(("/", "~", "\\")) or re.match(r"[A-Za-z]:[\\/]", value):
        raise ValueError(f"must be relative to the directory of mlproject.yaml, got the absolute path '{value}'")
    depth = 0
    for part in PurePosixPath(value.replace("\\", "/")).parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            raise ValueError(f"must stay inside the repository, but '{value}' climbs out with '..'")
    return value


def is_remote_uri(value: str) -> bool:
    """True for object-store and web URIs, which are not paths in the repository."""
    return bool(re.match(r"[a-z][a-z0-9+.-]*://", value))


_DATA_URI_SCHEMES = frozenset({"s3", "gs", "gcs", "abfs", "abfss", "hdfs"})  # pyarrow.fs opens these


def data_uri(value: str) -> str:
    """A data location: an `s3://`, `gs://`, ... URI, or a relative path/glob inside the repository."""
    if is_remote_uri(value):
        if re.search(r"[\x00-\x20\x7f]", value):
            raise ValueError(
                "must be a URI without spaces, line breaks or control characters, e.g. 's3://bucket/path/'"
            )
        scheme = value.split("://", 1)[0]
        if scheme == "file":
            raise ValueError("use a relative path instead of a file:// URI, so the spec works on every machine")
        if scheme == "az":
            raise ValueError(
                "the runtime reads Azure through abfs://: abfs://<container>@<account>.dfs.core.windows.net/..."
            )
        if scheme not in _DATA_URI_SCHEMES:
            # The runtime opens data with pyarrow's filesystems; a web URL is not a dataset store.
            raise ValueError(
                f"unsupported URI scheme '{scheme}://'; use s3://, gs://, abfs://, hdfs:// or a relative path"
            )
        return value
    return _inside_the_repository(value)  # a local path may be a glob (`data/part-*.csv`)


def entrypoint(value: str) -> str:
    """`package.module:function`, importable from `code.source`."""
    if not _ENTRYPOINT.fullmatch(value):
        raise ValueError(f"must be 'module:function' (e.g. 'churn.model:train'), got '{value}'")
    return value


# Variables a secret must not set: the loader, the shells, Python, and mlc's own settings.
_RESERVED_VARIABLES = frozenset(
    {"PATH", "HOME", "SHELL", "BASH_ENV", "ENV", "IFS", "PS4", "PROMPT_COMMAND", "CDPATH", "GLOBIGNORE"}
    | {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONINSPECT", "PYTHONUSERBASE", "PYTHONDONTWRITEBYTECODE"}
    | {"XDG_CACHE_HOME", "TMPDIR", "JOB_COMPLETION_INDEX"}
)
_RESERVED_PREFIXES = ("LD_", "DYLD_", "MLC_", "GITHUB_", "RUNNER_", "ACTIONS_")
_SECRETS_MLC_READS = frozenset({"MLC_BOT_TOKEN"})  # documented: the token the CI bot pushes with


def env_var_name(value: str) -> str:
    """An environment variable name: letters, digits and '_', not starting with a digit."""
    if not _ENV_VAR.fullmatch(value):
        raise ValueError("must be an environment variable name such as 'AWS_ACCESS_KEY_ID'")
    return value


def secret_name(value: str) -> str:
    """The variable a secret is read into: a name no loader, shell, Python, CI or mlc itself reads."""
    env_var_name(value)
    if value in _SECRETS_MLC_READS:
        return value
    if value.upper() in _RESERVED_VARIABLES or value.upper().startswith(_RESERVED_PREFIXES):
        raise ValueError(
            f"'{value}' would shadow a variable the system, CI or mlc reads (PATH, LD_*, BASH_ENV, PYTHON*, "
            "MLC_*, GITHUB_*...); name the secret for what it is, e.g. 'MLFLOW_TRACKING_TOKEN'"
        )
    return value


# The Docker reference grammar (distribution/reference): [registry[:port]/]path[:tag][@digest].
_IMAGE_REFERENCE = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?"
)


def image_reference(value: str) -> str:
    """An image reference as Docker reads it (`python:3.11-slim@sha256:<64 hex>`): it becomes a FROM line."""
    if len(value) > 255 or not _IMAGE_REFERENCE.fullmatch(value):
        raise ValueError("must be an image reference such as 'python:3.11-slim' or 'ghcr.io/acme/base@sha256:<64 hex>'")
    return value


def git_branch(value: str) -> str:
    """A branch name git accepts (`git check-ref-format --branch`), without pattern characters:
    workflows trigger on it, and a `*` would release from every branch."""
    if (
        not value
        or value.startswith(("-", "/", "."))
        or value.endswith(("/", ".", ".lock"))
        or ".." in value
        or "//" in value
        or "@{" in value
        or value == "@"
        or re.search(r"[\x00-\x20\x7f~^:?*\[\\!]", value)
    ):
        raise ValueError("must be a branch name such as 'main' or 'release/v1' (no spaces, globs, '..' or ':')")
    return value


def ip_network(value: str) -> str:
    """An address or CIDR block without host bits (`10.0.0.0/8`, `192.168.1.7`, `fd00::/8`): a
    network the server compares client addresses against."""
    import ipaddress

    try:
        ipaddress.ip_network(value)
    except ValueError:
        raise ValueError(
            f"{value!r} is not a network: give an address or a CIDR block with no host bits set, "
            "e.g. '10.0.0.0/8', '192.168.1.7' or 'fd00::/8'"
        ) from None
    return value


def is_cluster_internal_url(url: str) -> bool:
    """True for a URL only a pod can resolve: a Service name (`*.svc`, `*.cluster.local`) or a
    bare host name without a domain (`http://mlflow:5000`). Loopback is not cluster-internal."""
    from urllib.parse import urlparse

    host = (urlparse(url).hostname or "").rstrip(".").lower()
    if host in ("localhost", "") or re.fullmatch(r"[\d.]+|\[?[0-9a-f:]+\]?", host):
        return False
    return host.endswith((".svc", ".svc.cluster.local", ".cluster.local")) or "." not in host


def image_reference_with_digest(value: str) -> bool:
    """True when an image reference is pinned by digest (`...@sha256:<64 hex>`)."""
    return bool(_SHA256_REF.fullmatch(value))


def runner_label(value: str) -> str:
    """A GitHub Actions runner label (what `runs-on` matches): letters, digits, '.', '_', '-'."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", value) or value.lower() == "self-hosted":
        raise ValueError(
            "must be a runner label of letters, digits, '.', '_' or '-' (besides `self-hosted`), e.g. 'ml-cluster'"
        )
    return value


def python_version(value: str) -> str:
    """`3.X` (major.minor)."""
    if not re.fullmatch(r"3\.\d{1,2}", value):
        raise ValueError(f"must include major and minor version, e.g. '3.11', got '{value}'")
    return value


def torch_version(value: str) -> str:
    """A release version `X.Y.Z` (the compatibility table decides which ones exist)."""
    if not re.fullmatch(r"\d+\.\d+\.\d+", value):
        raise ValueError(f"must be a full release version, e.g. '2.5.1', got '{value}'")
    return value


DnsLabel = Annotated[str, AfterValidator(dns_label)]
ProjectName = Annotated[str, AfterValidator(project_name)]
LabelKey = Annotated[str, AfterValidator(label_key)]
LabelValue = Annotated[str, AfterValidator(label_value)]
# `cpu: 2` and `cpu: 0.5` are natural YAML; Kubernetes quantities are strings, so normalise.
Quantity = Annotated[
    str,
    BeforeValidator(quantity),
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "pattern": "^[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$",
                },
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": "Kubernetes quantity, e.g. 2, 500m, 16Gi",
        }
    ),
]
Duration = Annotated[str, AfterValidator(duration)]
Cron = Annotated[str, AfterValidator(cron)]
RelativePath = Annotated[str, AfterValidator(relative_path)]
DataUri = Annotated[str, AfterValidator(data_uri)]
Entrypoint = Annotated[str, AfterValidator(entrypoint)]
EnvVarName = Annotated[str, AfterValidator(env_var_name)]
CheckpointEvery = Annotated[str, AfterValidator(checkpoint_every)]
PythonVersion = Annotated[str, AfterValidator(python_version)]
SecretName = Annotated[str, AfterValidator(secret_name)]
ImageReference = Annotated[str, AfterValidator(image_reference)]
GitBranch = Annotated[str, AfterValidator(git_branch)]
IpNetwork = Annotated[str, AfterValidator(ip_network)]
# Kubernetes' replica counts, completions, ports and limits are int32.
Int32 = Annotated[int, Field(ge=0, le=2**31 - 1)]
RunnerLabel = Annotated[str, AfterValidator(runner_label)]
TorchVersion = Annotated[str, AfterValidator(torch_version)]
Count = Annotated[int, Field(ge=0, le=2**31 - 1)]
PositiveInt = Annotated[int, Field(ge=1, le=2**31 - 1)]
Fraction = Annotated[float, Field(ge=0, le=1)]
Port = Annotated[int, Field(ge=1, le=65535)]
