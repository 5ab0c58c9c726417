"""Where a cluster's jobs find their data: every data and output location they use must exist there.

A job pod's working directory is the image's code folder (`code.source`, nothing else of the
repository) under a read-only root filesystem, so a relative path such as `data/train.csv`
names a file the pod does not have, and an output folder such as `checkpoints/` one it cannot
write. In an environment that runs in a cluster, each location the jobs read or write must be
remote (`s3://`, `gs://`, `abfs://`, `hdfs://`) or under a folder a declared volume holds
(`volumes:`, a PersistentVolumeClaim the compiled pods mount over that folder). `mlc run`
keeps local paths: it runs in the spec's folder, where they are.

Which views run in a cluster is what the spec says (`runs_in_cluster`): every environment under
`environments:` (the base, which they overlay, is then what `mlc run` uses, named `local`); a
spec without environments compiles one `default` environment that is also the local one, and
runs in a cluster when GitOps deploys it (`gitops.engine` argocd or flux). A spec without either
is a local project so far: its manifests are written, but nothing says where they run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from mlc.compiler.diagnostics import Finding
from mlc.compiler.load.document import FieldPath
from mlc.compiler.load.spec import MLProject, Volume
from mlc.compiler.load.values import is_remote_uri

_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class JobLocation:
    """A data location a compiled job reads or writes."""

    path: FieldPath  # where the spec sets it
    value: str
    writes: bool  # a job writes there (checkpoints, batch output)


def job_locations(spec: MLProject) -> Iterator[JobLocation]:
    """Every location the environment's jobs read or write, as written in the spec."""
    if spec.train is not None:
        # `ctx.load_dataset(name)` may read any dataset; the gate reads evaluate.dataset.
        for name, dataset in spec.data.datasets().items():
            yield JobLocation(("data", name, "uri"), dataset.uri, writes=False)
        if spec.train.checkpoint.uri is not None:
            yield JobLocation(("train", "checkpoint", "uri"), spec.train.checkpoint.uri, writes=True)
    monitor = spec.monitor
    if monitor is not None and monitor.prediction_log is not None:
        # The server and batch write it; the drift and feedback jobs read it.
        yield JobLocation(("monitor", "prediction_log", "uri"), monitor.prediction_log.uri, writes=True)
    if monitor is not None and monitor.drift is not None and monitor.drift.current.uri is not None:
        yield JobLocation(("monitor", "drift", "current", "uri"), monitor.drift.current.uri, writes=False)
    if monitor is not None and monitor.feedback is not None:
        yield JobLocation(("monitor", "feedback", "labels", "uri"), monitor.feedback.labels.uri, writes=False)
    if spec.serve is not None and spec.serve.batch is not None and spec.serve.engine == "runtime":
        yield JobLocation(("serve", "batch", "input"), spec.serve.batch.input, writes=False)
        yield JobLocation(("serve", "batch", "output"), spec.serve.batch.output, writes=True)


def folder_parts(path: str) -> tuple[str, ...]:
    """A relative path's components, normalised (`./data//x/` -> ('data', 'x')); a glob's fixed folder."""
    fixed = _GLOB.split(path, 1)[0]
    if _GLOB.search(path):
        fixed = fixed.rsplit("/", 1)[0] if "/" in fixed else ""
    return tuple(part for part in PurePosixPath(fixed.replace("\\", "/")).parts if part not in (".", ""))


def _inside(path: tuple[str, ...], folder: tuple[str, ...]) -> bool:
    return bool(folder) and path[: len(folder)] == folder


def covering_volume(spec: MLProject, value: str) -> tuple[str, Volume] | None:
    """The declared volume whose folder holds the local path `value`, if any."""
    parts = folder_parts(value)
    for name, volume in spec.volumes.items():
        if _inside(parts, folder_parts(volume.path)):
            return name, volume
    return None


def runs_in_cluster(spec: MLProject, environment: str | None, has_environments: bool) -> bool:
    """Whether a validated view's jobs run in a cluster: a named environment, or the one
    environment of a spec without environments when GitOps deploys it."""
    if has_environments:
        return environment is not None
    return spec.gitops.engine != "none"


def job_data_rules(spec: MLProject, environment: str | None, has_environments: bool) -> Iterator[Finding]:
    """Local locations a cluster's jobs could not reach, and volumes that cannot be mounted."""
    yield from _volume_rules(spec)
    if not runs_in_cluster(spec, environment, has_environments):
        return
    if environment is not None:
        where = "this environment's jobs run in a cluster"
    else:
        where = f"{spec.gitops.engine} deploys the compiled jobs ({spec.gitops.path.rstrip('/')}/default/) to a cluster"
    source = spec.code.source.rstrip("/") or "."
    for location in job_locations(spec):
        if is_remote_uri(location.value):
            continue
        found = covering_volume(spec, location.value)
        if found is not None:
            name, volume = found
            if location.writes and volume.read_only:
                yield Finding(
                    location.path,
                    f"jobs write to '{location.value}', but volume '{name}' holding it is mounted read-only",
                    f"set `volumes.{name}.read_only: false`, or write to a remote URI",
                )
            continue
        action = "write" if location.writes else "read"
        yield Finding(
            location.path,
            f"'{location.value}' is a local path, but {where}, where a job's working directory holds only "
            f"the image's code ('{source}/'), read-only: it cannot {action} it there",
            _hint(location, environment),
        )


def _hint(location: JobLocation, environment: str | None) -> str:
    field = ".".join(str(p) for p in location.path)
    parts = folder_parts(location.value)
    folder = (parts[0] if parts else "data") + "/"
    remote = f"s3://<bucket>/{location.value.lstrip('./')}"
    volume = f"`volumes: {{{_volume_name(folder)}: {{claim: <pvc>, path: {folder}}}}}`"
    if environment is not None:
        return (
            f"give this environment a remote URI, e.g. `environments.{environment}.{field}: {remote}` "
            f"(`mlc run` keeps the local path of the base), or mount a PersistentVolumeClaim over the folder: {volume}"
        )
    return (
        f"keep the local path for `mlc run` and set a remote URI in an environment (`environments: "
        f"{{production: {{...{field}: {remote}}}}}`), or mount a PersistentVolumeClaim over the folder: {volume}"
    )


def _volume_name(folder: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", folder.lower()).strip("-")
    return name or "data"


def _volume_rules(spec: MLProject) -> Iterator[Finding]:
    """A volume holds a folder, and no two volumes hold the same one."""
    seen: list[tuple[str, tuple[str, ...]]] = []
    for name, volume in spec.volumes.items():
        parts = folder_parts(volume.path)
        path: FieldPath = ("volumes", name, "path")
        if not parts:
            yield Finding(path, "a volume holds a folder beside the code, not the whole project", "e.g. `path: data/`")
            continue
        for other, other_parts in seen:
            if _inside(parts, other_parts) or _inside(other_parts, parts):
                yield Finding(path, f"'{volume.path}' overlaps the folder of volume '{other}'")
        seen.append((name, parts))
