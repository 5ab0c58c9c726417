#!/usr/bin/env bash
# The main job end to end on embedded defaults: no cluster, no servers, MLflow on sqlite.
# Works on a copy of examples/churn under .mlc/demo/, a git repository of its own, so the
# example in the source tree is never modified. Each step prints what it does.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$root/.mlc/demo/churn"

step() { printf '\n==> %s\n' "$*"; }

step "fresh copy of examples/churn in ${work#"$root"/}"
rm -rf "$work"
mkdir -p "$(dirname "$work")"
cp -R "$root/examples/churn" "$work"
cd "$work"
git init -q -b main .
git -c user.name=demo -c user.email=demo@example.com add -A
git -c user.name=demo -c user.email=demo@example.com commit -qm "churn example"

step "mlc validate: load, validate and resolve every environment"
mlc validate

step "mlc schema: the JSON Schema editors use ($(mlc schema | wc -c) bytes)"
