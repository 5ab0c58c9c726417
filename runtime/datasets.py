"""Reading datasets: a URI (file, directory, glob; local or s3:// gs:// ...) to record batches.

This module is the one place that decides which files a data URI names (`locate_data_files`):
training, evaluation, `validate-data`, `batch` and the drift check (`drift/data.py`, which keeps
its own threaded streaming reads) all go through it. Local paths and every URI that
`pyarrow.fs.FileSystem.from_uri` accepts share one code path; remote stores' failures (missing
bucket or key, refused credentials, an unreachable endpoint, an unknown scheme) become a
`DataError` that names the URI and what to do.

Everything streams as pyarrow record batches, so memory stays bounded by the batch size for
checks over large data. CSV columns named by the contract (and the target) are read as text and
converted by `feature_values`, so one parser serves CSV, parquet and serving requests alike and
a bad value is reported with its row instead of failing the whole read.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlc.runtime.errors import MlcRuntimeError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

BATCH_ROWS = 65_536
_GLOB_CHARS = set("*?[")
# File name suffix (lower case) -> format; `.tsv` files are CSV with a tab delimiter.
FORMAT_SUFFIXES = (
    (".parquet", "parquet"),
    (".pq", "parquet"),
    (".parq", "parquet"),
    (".csv", "csv"),
    (".csv.gz", "csv"),
    (".tsv", "csv"),
    (".tsv.gz", "csv"),
)
# What `FileSystem.from_uri` opens (besides local paths), for the unknown-scheme error.
KNOWN_SCHEMES = "s3://, gs:// (gcs://), hdfs://, file://"
_BUCKET_SCHEMES = ("s3", "gs", "gcs")


class DataError(MlcRuntimeError):
    """A dataset cannot be found or read."""


@dataclass(frozen=True)
class DataFiles:
    """The files of one dataset, sorted, on one filesystem."""

    uri: str
    format: str
    filesystem: pafs.FileSystem
    paths: tuple[str, ...]

    def location(self, path: str) -> str:
        """`path` as users wrote it: local paths as they are, remote ones with their scheme."""
        return location(self.uri, path)


def location(uri: str, path: str) -> str:
    """A filesystem path of `uri`'s store shown with the URI's scheme (s3://bucket/key); a local
    file under the working directory relative to it, as the spec names it (data/batch-in/a.csv)."""
    scheme, separator, _ = uri.partition("://")
    if separator and scheme != "file":
        return f"{scheme}://{path}"
    return _relative_to_working_directory(path)


def _relative_to_working_directory(path: str) -> str:
    here = os.getcwd()
    if os.path.isabs(path) and os.path.commonpath([here, path]) == here:
        return os.path.relpath(path, here)
    return path


def is_remote(uri: str) -> bool:
    """Whether `uri` names an object store or another non-local filesystem."""
    scheme, separator, _ = uri.partition("://")
    return bool(separator) and scheme != "file"


def open_filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem of a local path or URI, and the path on it (relative paths: from the working directory)."""
    import pyarrow.fs as pafs

    if "://" in uri:
        # A URI cannot hold `[` (and `?` starts its query): open the folder above a glob and
        # append the pattern to the path, so s3://bucket/part-[0-4].parquet works like a local glob.
        address, question, query = uri.partition("?")
        scheme_end = address.index("://") + 3
        first = min((address.index(c, scheme_end) for c in "*[" if c in address[scheme_end:]), default=-1)
        cut = address.rfind("/", scheme_end, first) if first > 0 else -1
        head, pattern = (address[:cut], address[cut:]) if cut > 0 else (address, "")
        if address[: scheme_end - 3] in _GCS_SCHEMES and "retry_limit_seconds=" not in query:
            query = "&".join(filter(None, [query, f"retry_limit_seconds={GCS_RETRY_LIMIT_SECONDS}"]))
            question = "?"
        try:
            filesystem, path = pafs.FileSystem.from_uri(head + question + query)
        except Exception as error:  # pyarrow raises several types for unknown schemes and bad URIs
            raise DataError(_open_error(uri, error)) from None
        return filesystem, path.rstrip("/") + pattern if pattern else path
    # Relative local paths are relative to the working directory: the spec's folder.
    return pafs.LocalFileSystem(), os.path.abspath(uri)


def _open_error(uri: str, error: BaseException) -> str:
    text = _first_line(error)
    scheme = uri.partition("://")[0]
    if "Unrecognized filesystem type" in text:
        return f"{uri}: unsupported URI scheme '{scheme}://' (this pyarrow opens {KNOWN_SCHEMES} and local paths)"
    if "libjvm" in text or "libhdfs" in text:
        return f"{uri}: cannot open hdfs:// here: pyarrow needs a Java runtime and libhdfs ({text})"
    return store_error(uri, error, "cannot open")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# What a remote store's error text says -> what to tell the user: S3's words, then Google Cloud
# Storage's status codes. `{endpoint}` and `{credentials}` name the store's own settings.
_STORE_HINTS = (
    (
        (
            "ACCESS_DENIED",
            "AccessDenied",
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "HTTP status 403",
            "PERMISSION_DENIED",
            "UNAUTHENTICATED",
        ),
        "access denied: check the credentials the process gets ({credentials}) and that they may use this bucket",
    ),
    (
        # The last: S3's region lookup, when from_uri meets a bucket that is not there.
        ("NO_SUCH_BUCKET", "NoSuchBucket", "bucket does not exist", "' not found"),
        "the bucket does not exist: check the bucket name (and {endpoint})",
    ),
    (
        (
            "NETWORK_CONNECTION",
            "Couldn't connect",
            "Could not resolve host",
            "curlCode",
            "Connection refused",
            "UNAVAILABLE",
        ),
        "cannot reach the object store: check the network and the endpoint ({endpoint})",
    ),
)
_GCS_SCHEMES = ("gs", "gcs")
# A Google Cloud Storage call retries for 15 minutes by default: an unreachable store would hold
# a drift or feedback job that long. `?retry_limit_seconds=` in the URI overrides this.
GCS_RETRY_LIMIT_SECONDS = 60


def _store_settings(uri: str) -> dict[str, str]:
    """The settings a user checks for the store of `uri`: its endpoint and its credentials."""
    if uri.partition("://")[0] in _GCS_SCHEMES:
        return {
            "endpoint": "CLOUD_STORAGE_EMULATOR_ENDPOINT, or ?endpoint_override= in the URI, for a GCS emulator",
            "credentials": "GOOGLE_APPLICATION_CREDENTIALS, or the pod's workload identity",
        }
    return {
        "endpoint": "AWS_ENDPOINT_URL, or ?endpoint_override= in the URI, for an S3-compatible store",
        "credentials": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the pod's IAM role",
    }


def store_error(uri: str, error: BaseException, action: str = "cannot read") -> str:
    """One line for an error pyarrow raised while reaching `uri`: what failed and what to do."""
    text = _first_line(error)
    if not is_remote(uri):
        return f"{uri}: {action}: {text}"
    for needles, hint in _STORE_HINTS:
        if any(needle in text for needle in needles):
            return f"{uri}: {action}: {hint.format(**_store_settings(uri))} ({text})"
    return f"{uri}: {action}: {text}"


def format_of(path: str, declared: str | None = None) -> str | None:
    """The declared format, else the one the file name's suffix says (csv | parquet), else None."""
    if declared:
        return declared
    lower = path.lower()
    for suffix, name in FORMAT_SUFFIXES:
        if lower.endswith(suffix):
            return name
    return None


def csv_delimiter(path: str) -> str:
    """Tab for `.tsv` files, else a comma."""
    return "\t" if path.lower().endswith((".tsv", ".tsv.gz")) else ","


def _hidden(relative: str) -> bool:
    """Bookkeeping files of the tools that write data folders: `_SUCCESS`, `_temporary/`, `.crc`, temporaries."""
    return any(part.startswith((".", "_")) for part in relative.split("/"))


def locate_data_files(uri: str, declared_format: str | None = None, modified_since: float | None = None) -> DataFiles:
    """The data files a URI names: the file, the directory's files (recursively), or the glob's matches.

    A directory's files are those with a data suffix (`FORMAT_SUFFIXES`). Directories and
    globs leave out anything under a name that starts with `.` or `_` (`_SUCCESS`,
    `_temporary/`, `.part-0.crc`, partial writes) unless the glob itself names such a file.
    `modified_since` (Unix time) keeps, of a directory's or a glob's files, only those written
    since then: the window of recent data in a folder new files land in
    (`monitor.drift.current.window`); a URI that names one file is that file, whatever its age.
    Raises `DataError` naming the URI when nothing is there or the store refuses.
    """
    import pyarrow.fs as pafs

    filesystem, path = open_filesystem(uri)
    if _GLOB_CHARS & set(path):
        base = path[: min(path.index(c) for c in _GLOB_CHARS if c in path)].rsplit("/", 1)[0] or "/"
        candidates = _listing(filesystem, base, uri)
        root = base.rstrip("/") + "/"
        # Like a shell's `*` and dot files: bookkeeping names match only a pattern that names them.
        hidden_ok = _hidden(path[len(root) :])
        found = [
            i
            for i in candidates
            if fnmatch.fnmatchcase(i.path, path) and (hidden_ok or not _hidden(i.path[len(root) :]))
        ]
    else:
        info = _file_info(filesystem, path, uri)
        if info.type == pafs.FileType.File:
            found, modified_since = [info], None  # named explicitly: the current data
        elif info.type == pafs.FileType.Directory:
            root = path.rstrip("/") + "/"
            found = [
                i
                for i in _listing(filesystem, path, uri)
                if format_of(i.path)
                and not _hidden(i.path[len(root) :] if i.path.startswith(root) else i.path.rsplit("/", 1)[-1])
            ]
        else:
            raise DataError(_not_found(filesystem, path, uri))
    if not found:
        raise DataError(f"{uri}: matches no data files (.parquet, .pq, .csv, .csv.gz, .tsv)")
    if modified_since is not None:
        found = [i for i in found if i.mtime_ns is None or i.mtime_ns >= modified_since * 1e9]
        if not found:
            raise DataError(f"{uri}: no data file was written in the window (monitor.drift.current.window)")
    paths = [info.path for info in found]
    fmt = format_of(paths[0], declared_format)
    if fmt is None:
        raise DataError(f"{uri}: cannot tell the format from the file name; set data.<name>.format: csv | parquet")
    return DataFiles(uri=uri, format=fmt, filesystem=filesystem, paths=tuple(sorted(paths)))


def _file_info(filesystem: pafs.FileSystem, path: str, uri: str) -> pafs.FileInfo:
    try:
        return filesystem.get_file_info(path)
    except OSError as error:
        raise DataError(store_error(uri, error)) from None


def _not_found(filesystem: pafs.FileSystem, path: str, uri: str) -> str:
    """What is missing: for a remote URI, the bucket or the key in it."""
    if uri.partition("://")[0] not in _BUCKET_SCHEMES:
        return f"{uri}: no such file or directory"
    bucket = path.split("/", 1)[0]
    return _missing_bucket(filesystem, path, uri) or (
        f"{uri}: no such key or prefix in bucket '{bucket}': check the path (was the data written yet?)"
    )


def _missing_bucket(filesystem: pafs.FileSystem, path: str, uri: str) -> str | None:
    """The error line when the bucket of an object-store URI does not exist, else None."""
    if uri.partition("://")[0] not in _BUCKET_SCHEMES:
        return None
    import pyarrow.fs as pafs

    bucket = path.split("/", 1)[0]
    try:
        if filesystem.get_file_info(bucket).type != pafs.FileType.NotFound:
            return None
    except OSError:
        return None  # a courtesy check: the caller reports its own error then
    return (
        f"{uri}: bucket '{bucket}' does not exist (or these credentials cannot see it): check the bucket "
        f"name, and {_store_settings(uri)['endpoint']}"
    )


def _file_infos(
    filesystem: pafs.FileSystem, base: str, uri: str, recursive: bool, missing_ok: bool = False
) -> list[pafs.FileInfo]:
    """Everything under `base`; `DataError` naming the URI when it is missing (unless `missing_ok`:
    nothing) or the store refuses."""
    import pyarrow.fs as pafs

    try:
        return filesystem.get_file_info(pafs.FileSelector(base, recursive=recursive, allow_not_found=missing_ok))
    except FileNotFoundError:
        raise DataError(_not_found(filesystem, base, uri)) from None
    except OSError as error:
        listing = f"cannot list {location(uri, base)}"
        raise DataError(_missing_bucket(filesystem, base, uri) or store_error(uri, error, listing)) from None


def _listing(filesystem: pafs.FileSystem, base: str, uri: str) -> list[pafs.FileInfo]:
    import pyarrow.fs as pafs

    return [info for info in _file_infos(filesystem, base, uri, recursive=True) if info.type == pafs.FileType.File]


def unique_columns(names: list[str], where: str) -> None:
    """A DataError naming the first column that appears more than once in a file's header or schema.

    pyarrow keeps both copies (and `include_columns` silently takes the first), so which
    values a check, a model or a drift test saw would depend on the reader."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(
                f"{where}: column {name!r} appears {names.count(name)} times in the header: "
                "every column needs its own name (rename or drop the copies)"
            )
        seen.add(name)


def csv_header(files: DataFiles, path: str) -> list[str]:
    """The column names of one CSV file (its first block only)."""
    import pyarrow.csv as pacsv

    compression = "gzip" if path.endswith(".gz") else None
    with files.filesystem.open_input_stream(path, compression=compression) as stream:
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(block_size=1 << 20),
            parse_options=pacsv.ParseOptions(delimiter=csv_delimiter(path)),
        )
        return reader.schema.names


def list_entries(
    filesystem: pafs.FileSystem, base: str, uri: str, recursive: bool, missing_ok: bool = False
) -> list[pafs.FileInfo]:
    """Files and folders under `base` (of `uri`'s store), visible ones only; `DataError` naming
    the URI when it is missing (unless `missing_ok`: none) or the store refuses."""
    infos = _file_infos(filesystem, base, uri, recursive, missing_ok)
    root = base.rstrip("/") + "/"
    return [info for info in infos if not _hidden(info.path[len(root) :] if info.path.startswith(root) else info.path)]


def read_record_batches(
    files: DataFiles, text_columns: Iterable[str] = (), limit: int | None = None
) -> Iterator[pa.RecordBatch]:
    """The dataset's rows as record batches, file after file, at most `limit` rows.

    `text_columns`: CSV columns to read as text (the contract's columns); parquet keeps its types.
    """
    import pyarrow as pa

    remaining = limit
    for path in files.paths:
        try:
            for batch in _file_batches(files, path, tuple(text_columns)):
                if remaining is not None:
                    if remaining <= 0:
                        return
                    batch = batch.slice(0, remaining)
                    remaining -= batch.num_rows
                yield batch
        except (pa.ArrowException, OSError) as error:
            raise DataError(store_error(files.location(path), error, f"cannot read {files.format}")) from None


def _file_batches(files: DataFiles, path: str, text_columns: tuple[str, ...]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa

    if files.format == "parquet":
        import pyarrow.parquet as pq

        with files.filesystem.open_input_file(path) as handle:
            parquet = pq.ParquetFile(handle)
            unique_columns(parquet.schema_arrow.names, files.location(path))
            yield from parquet.iter_batches(batch_size=BATCH_ROWS)
        return
    import pyarrow.csv as pacsv

    compression = "gzip" if path.endswith(".gz") else None
    read_options = pacsv.ReadOptions(block_size=1 << 22)
    parse_options = pacsv.ParseOptions(delimiter=csv_delimiter(path))
    header = csv_header(files, path)
    unique_columns(header, files.location(path))
    include: list[str] | None = None
    if text_columns:
        # Only the contract's columns: other columns' types are guessed from the first block
        # and a later surprise in a column nobody uses must not fail the read.
        include = [name for name in header if name in text_columns]
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in text_columns},
        include_columns=include,
        strings_can_be_null=True,  # an empty field is a null, not ""
    )
    with files.filesystem.open_input_stream(path, compression=compression) as stream:
        yield from pacsv.open_csv(
            stream, read_options=read_options, parse_options=parse_options, convert_options=convert
        )


def read_table(files: DataFiles, text_columns: Iterable[str] = (), limit: int | None = None) -> pa.Table:
    """The whole dataset (or its first `limit` rows) as one table."""
    import pyarrow as pa

    batches = list(read_record_batches(files, text_columns, limit))
    if not batches:
        raise DataError(f"{files.uri}: no rows")
    try:
        return pa.Table.from_batches(batches).combine_chunks()
    except pa.ArrowInvalid as error:  # files of one dataset with different columns or types
        raise DataError(f"{files.uri}: files do not share one schema: {error}") from None


def data_digest(files: DataFiles) -> str:
    """sha256 over every file's full bytes, in path order: the training data's lineage."""
    digest = hashlib.sha256()
    for path in files.paths:
        try:
            with files.filesystem.open_input_stream(path) as stream:
                while chunk := stream.read(1 << 20):
                    digest.update(chunk)
        except OSError as error:
            raise DataError(store_error(files.location(path), error)) from None
    return f"sha256:{digest.hexdigest()}"
