#!/usr/bin/env bash
# The main job end to end on embedded defaults: no cluster, no servers, MLflow on sqlite.
# Works on a copy of examples/churn under .mlc/demo/, a git repository of its own, so the
# example in the source tree is never modified. Each step prints what it does. The gate is shown
# passing a model and blocking a worse one, the drift check quiet on healthy data and firing on
# shifted data, and the monitoring loop: served requests logged by id, labels joined later, live
# f1 judged against its gate. The server it starts is stopped at the end (and on any failure), so
# nothing is left running.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$root/.mlc/demo/churn"

# MLflow's usage telemetry would call out from this machine; the demo talks to 127.0.0.1 only.
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true

step() { printf '\n==> %s\n' "$*"; }
git_demo() { git -c user.name=demo -c user.email=demo@example.com "$@"; }

step "fresh copy of examples/churn in ${work#"$root"/}, as a git repository"
rm -rf "$work"
mkdir -p "$(dirname "$work")"
cp -R "$root/examples/churn" "$work"
cd "$work"
git init -q -b main .
git_demo add -A
git_demo commit -qm "churn example"

step "mlc validate: load, validate and resolve every environment"
mlc validate

step "mlc plan --out: what apply would write, saved for review (exit 2 = changes, with --detailed-exitcode)"
set +e
mlc plan --detailed-exitcode --out .mlc/churn.plan | tail -n 12
code=${PIPESTATUS[0]}
set -e
echo "(plan exit code: $code)"

step "mlc apply .mlc/churn.plan --commit: write exactly the reviewed plan atomically, commit those files"
mlc apply .mlc/churn.plan --commit | tail -n 3
git log --oneline -n 2
echo "files in the commit: $(git show --name-only --format= HEAD | wc -l)"

step "mlc plan again: nothing left to do"
mlc plan --detailed-exitcode

step "a hand edit is caught: plan shows a conflict, apply refuses it"
echo "# edited by hand" >> deploy/production/kustomization.yaml
set +e
mlc plan | grep -E '^\s*!' || true
mlc apply >/dev/null 2>&1
echo "(apply exit code: $?, nothing written)"
set -e
git checkout -q -- deploy/production/kustomization.yaml

step "generated artifacts (deploy/ and .github/workflows/)"
find deploy .github -type f | sort | sed 's/^/  /' | head -n 12
echo "  ... $(find deploy .github -type f | wc -l) files in all"

step "mlc-runtime validate-data: the training set against the data contract"
mlc run validate-data --dataset train 2>&1 | tail -n 8

step "mlc run train: the churn model trained on CPU, logged and registered in MLflow (sqlite under .mlc/)"
mlc run train 2>&1 | grep -E '^(epoch|registered|see the run)'

step "mlc run gate --promote: challenger vs champion on the eval set; the first model becomes champion"
mlc run gate --report .mlc/gate.md --promote 2>&1 | tail -n 1
sed 's/^/  /' .mlc/gate.md | head -n 8

step "a worse model: the learning rate cut 1000x for one run (-p, no edit), and the gate blocks it (exit 1, champion unchanged)"
mlc run train -p lr=0.00005 2>&1 | grep -E '^registered'
set +e
mlc run gate --report .mlc/gate-blocked.md --promote >/dev/null 2>&1
code=$?
set -e
sed 's/^/  /' .mlc/gate-blocked.md | head -n 8
echo "(gate exit code: $code; nothing promoted)"
[ "$code" -eq 1 ] || { echo "demo: expected the gate to block the worse model (exit 1), got $code" >&2; exit 1; }

step "mlc run drift on healthy live data: the champion's reference profile vs data from the same distribution (exit 0)"
mlc run drift --on-drift none --data data/live-healthy.csv 2>&1 | grep '^dataset:'
echo "(drift exit code: ${PIPESTATUS[0]})"

step "mlc run drift on today's live data (monitor.drift.current.uri), shifted in monthly_charges and region (exit 1 = drift)"
# In a cluster, on_drift: retrain starts the retraining Job; here there is no cluster to ask.
set +e
mlc run drift --on-drift none --report .mlc/drift.html 2>/dev/null
code=$?
set -e
echo "(drift exit code: $code)"
[ "$code" -eq 1 ] || { echo "demo: expected drift on the shifted data (exit 1), got $code" >&2; exit 1; }
echo "report: ${work#"$root"/}/.mlc/drift.html"

step "mlc run serve: the champion behind /invocations on 127.0.0.1 (contract-checked, metrics at /metrics)"
port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# `mlc run` becomes mlc-runtime (exec): this PID is the server, and stopping it stops the server.
mlc run serve --host 127.0.0.1 --port "$port" > .mlc/serve.log 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 1 120); do
  curl -fs "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { echo "the server exited:"; tail -n 5 .mlc/serve.log; exit 1; }
  sleep 0.5
done
echo "GET /ready -> $(curl -fsS "http://127.0.0.1:$port/ready")"
echo "(version 1 serves: the gate kept the worse version 2 out)"
row='{"dataframe_records": [{"tenure_months": 3, "monthly_charges": 95.5, "support_calls": 4, "plan": "basic", "region": "north"}]}'
echo "POST /invocations $row"
curl -fsS -H 'Content-Type: application/json' -d "$row" "http://127.0.0.1:$port/invocations"; echo
bad='{"dataframe_records": [{"tenure_months": -3, "monthly_charges": 95.5, "support_calls": 4, "plan": "gold", "region": "north"}]}'
echo "POST /invocations (breaks the contract) -> $(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$bad" "http://127.0.0.1:$port/invocations")"
curl -s -H 'Content-Type: application/json' -d "$bad" "http://127.0.0.1:$port/invocations" | head -c 400; echo
curl -fs "http://127.0.0.1:$port/metrics" | grep -E '^mlc_requests_total' | sed 's/^/  /'

step "300 customers scored, each request named by the caller (X-Request-ID), logged to the prediction log (monitor.prediction_log)"
python - "$port" <<'EOF'
import csv, json, sys, urllib.error, urllib.request
port, answered = sys.argv[1], 0
with open("data/live-healthy.csv") as f:
    rows = list(csv.DictReader(f))[:300]
for i, row in enumerate(rows):
    record = {k: None if v == "" else v if k in ("plan", "region") else float(v) for k, v in row.items() if k != "churned"}
    if record["support_calls"] is not None:
        record["support_calls"] = int(record["support_calls"])
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations",
        json.dumps({"dataframe_records": [record]}).encode(),
        {"Content-Type": "application/json", "X-Request-ID": f"customer-{i:04d}"},
    )
    try:
        urllib.request.urlopen(request).read()
        answered += 1
    except urllib.error.HTTPError:
        pass
print(f"{answered} of {len(rows)} requests answered, ids customer-0000 .. customer-{len(rows) - 1:04d}")
EOF

step "stop the server (SIGTERM): nothing the demo started is left running"
kill "$server"
wait "$server" 2>/dev/null || true
trap - EXIT
if pgrep -f -- "mlc-runtime serve .*--port $port" >/dev/null; then
  echo "error: a server is still running on port $port" >&2
  exit 1
fi
echo "no mlc-runtime process left on port $port"
echo "prediction log (written on shutdown at the latest): $(find predictions -name '*.parquet' | wc -l) Parquet file(s) under predictions/date=.../hour=.../"

# labels/labels.csv as a team's ETL would drop it: request_id, churned (the truth, or some of it flipped).
write_labels() {
  python - "$1" <<'EOF'
import csv, os, random, sys
wrong = float(sys.argv[1])
with open("data/live-healthy.csv") as f:
    rows = list(csv.DictReader(f))[:250]  # the last 50 customers have not decided yet
random.seed(0)
os.makedirs("labels", exist_ok=True)
with open("labels/labels.csv", "w") as out:
    out.write("request_id,churned\n")
    for i, row in enumerate(rows):
        label = int(row["churned"])
        out.write(f"customer-{i:04d},{1 - label if random.random() < wrong else label}\n")
EOF
}

step "mlc run feedback: 250 labels arrived; joined to the logged predictions by request id, f1 against its gate (exit 0)"
write_labels 0
set +e
mlc run feedback --on-degrade none 2>&1 | tail -n 7
code=${PIPESTATUS[0]}
set -e
echo "(feedback exit code: $code)"
# The demo proves the loop: a feedback job that cannot run is a failed demo, not a line of output.
[ "$code" -eq 0 ] || { echo "demo: expected feedback to pass (exit 0), got $code" >&2; exit 1; }

step "mlc run feedback again, the world changed (half the labels flipped at random): live f1 breaks its gate (exit 1; in a cluster: alert, and on_degrade: retrain)"
write_labels 0.5
set +e
mlc run feedback --on-degrade none 2>&1 | tail -n 7
code=${PIPESTATUS[0]}
set -e
echo "(feedback exit code: $code)"
[ "$code" -eq 1 ] || { echo "demo: expected feedback to find the model degraded (exit 1), got $code" >&2; exit 1; }

step "done: compiled, applied, trained, gated (and blocked a worse model), drift-checked, served, and judged live on embedded defaults"
