"""`.github/workflows/mlc-main.yaml`: on a push to `gitops.branch`, build, pin, commit.

Builds and pushes the training and serving images from the Docker backend's Dockerfiles (with a
registry cache and provenance), then `mlc apply --image NAME=REF@sha256:... --commit` pins their
digests into the rendered manifests and the commit is pushed (pinned again on the branch's new
tip when it moved meanwhile); Argo CD or Flux deploy from there. A push made with the
workflow's own token starts no new run, so this does not loop.

For a spec in a subfolder (`_location`), only a push that changes the project's folder (or
this workflow) releases it, and the images are built with the folder as their context.
"""

from __future__ import annotations

from mlc.compiler.backends.ci._location import ProjectLocation
from mlc.compiler.backends.ci._pins import pinned_action
from mlc.compiler.backends.ci._steps import (
    BOT_IDENTITY,
    Job,
    Step,
    build_job,
    checkout_step,
    documented,
    guard_expression,
    install_mlc_step,
    setup_python_step,
)
from mlc.compiler.resolve.resolved import ResolvedSpec

KIND = "main"
PATH = ".github/workflows/mlc-main.yaml"  # at the top; in a folder: ProjectLocation.workflow_path
WORKFLOW_NAME = "mlc main"
GITHUB_REGISTRY = "ghcr.io"
# A registry other than ghcr.io logs in with these entries of the spec's `secrets` (their
# `github:` names); ghcr.io uses the workflow's own token.
REGISTRY_USERNAME_SECRET = "REGISTRY_USERNAME"
REGISTRY_PASSWORD_SECRET = "REGISTRY_PASSWORD"
CACHE_TAG = "buildcache"
PUSH_ATTEMPTS = 3

# The branch may have moved since the checkout: another project's release in a monorepo (each
# runs in its own concurrency group), or a later merge. The pins are then applied again on
# its new tip rather than rebased (a later release of this project changes the same lines).
# `{apply}` is the `mlc apply` command, which reads its values as "$VAR" like the rest.
PIN_AND_PUSH_SCRIPT = (
    "for attempt in "
    + " ".join(str(n) for n in range(1, PUSH_ATTEMPTS + 1))
    + """; do
  {apply}
  if git push origin "HEAD:$GITHUB_REF"; then
    exit 0
  fi
  echo "attempt $attempt: the branch moved since the checkout; pinning again on its new tip" >&2
  git fetch --depth 1 origin "$GITHUB_REF"
  git reset --hard FETCH_HEAD
done
exit 1
"""
)


def emit_main_workflow(resolved: ResolvedSpec) -> dict[str, object]:
    """The main-branch workflow as data: one job that builds, pins and commits."""
    location = ProjectLocation.of(resolved)
    push = {"branches": [resolved.spec.gitops.branch]}
    return {
        "name": location.title(WORKFLOW_NAME),
        "on": location.trigger("push", push, [location.workflow_path(KIND)]),
        "permissions": {},
        # Queued, never cancelled: a half-done release would leave images without manifests.
        "concurrency": {"group": location.concurrency_group(KIND), "cancel-in-progress": False},
        "defaults": {"run": {"shell": "bash"}},
        "jobs": {"release": location.place_job(_release_job(resolved))},
    }


def built_images(resolved: ResolvedSpec) -> dict[str, str]:
    """Image role (`train`, `serve`) -> repository, for the images this project builds."""
    images = {"train": resolved.train_image, "serve": resolved.serve_image}
    return {role: image for role, image in images.items() if image is not None}


def _release_job(resolved: ResolvedSpec) -> Job:
    images = built_images(resolved)
    permissions: dict[str, object] = {
        "contents": documented("write", "commit the pinned manifests and push them"),
    }
    steps: list[Step] = [
        checkout_step(persist_credentials=True),
        setup_python_step(resolved.spec.code.python),
        install_mlc_step(resolved.compiler_requirement),
    ]
    if images:
        registry_host = next(iter(images.values())).split("/", 1)[0]
        if registry_host == GITHUB_REGISTRY:
            permissions["packages"] = documented("write", "push the images to ghcr.io")
        steps.append({"name": "Set up Docker Buildx", "uses": pinned_action("docker/setup-buildx-action")})
        login = _login_step(resolved, registry_host)
        if login is not None:
            steps.append(login)
        for role, image in images.items():
            steps.extend(_build_steps(resolved, role, image))
    steps.append(_pin_and_push_step(images))
    return build_job("release", permissions, steps, timeout_minutes=60, runs_on=resolved.ci_runs_on)  # type: ignore[arg-type]


def _login_step(resolved: ResolvedSpec, registry_host: str) -> Step | None:
    if registry_host == GITHUB_REGISTRY:
        username, password = "${{ github.actor }}", "${{ secrets.GITHUB_TOKEN }}"
    else:
        secrets = resolved.spec.secrets
        user_ref, password_ref = (
            secrets.get(REGISTRY_USERNAME_SECRET),
            secrets.get(REGISTRY_PASSWORD_SECRET),
        )
        if user_ref is None or password_ref is None or not (user_ref.github and password_ref.github):
            return None  # nothing to log in with: the runner's own credentials, if any
        username = f"${{{{ secrets.{user_ref.github} }}}}"
        password = f"${{{{ secrets.{password_ref.github} }}}}"
    return {
        "name": "Log in to the registry",
        "uses": pinned_action("docker/login-action"),
        "with": {
            "registry": guard_expression(registry_host),
            "username": username,
            "password": password,
        },
    }


def _build_steps(resolved: ResolvedSpec, role: str, image: str) -> list[Step]:
    cache = guard_expression(f"type=registry,ref={image}:{CACHE_TAG}")
    location = ProjectLocation.of(resolved)
    # The Dockerfiles' build context is the spec's folder (the docker backend's paths are
    # relative to it); `uses:` steps run at the top, so both name the folder.
    build = resolved.images.train if role == "train" else resolved.images.serve
    assert build is not None  # `built_images` lists only the images the project builds
    dockerfile = build.dockerfile
    return [
        {
            "name": f"Tag the {role} image",
            "id": f"meta-{role}",
            "uses": pinned_action("docker/metadata-action"),
            "with": {"images": guard_expression(image), "tags": "type=sha,format=long"},
        },
        {
            "name": f"Build and push the {role} image",
            "id": f"build-{role}",
            "uses": pinned_action("docker/build-push-action"),
            "with": {
                "context": location.file("."),
                "file": location.file(dockerfile),
                "push": True,
                "tags": f"${{{{ steps.meta-{role}.outputs.tags }}}}",
                "labels": f"${{{{ steps.meta-{role}.outputs.labels }}}}",
                "cache-from": cache,
                "cache-to": f"{cache},mode=max",
                "provenance": "mode=max",
            },
        },
    ]


def _pin_and_push_step(images: dict[str, str]) -> Step:
    env = dict(BOT_IDENTITY)
    arguments = []
    for role, image in images.items():
        variable = role.upper()
        env[f"MLC_{variable}_IMAGE"] = guard_expression(image)
        env[f"MLC_{variable}_DIGEST"] = f"${{{{ steps.build-{role}.outputs.digest }}}}"
        arguments.append(f'--image "{role}=$MLC_{variable}_IMAGE@$MLC_{variable}_DIGEST"')
    return {
        "name": "Pin the image digests, commit and push",
        "env": env,
        "run": PIN_AND_PUSH_SCRIPT.format(apply=" ".join(["mlc apply", *arguments, "--commit"])),
    }
