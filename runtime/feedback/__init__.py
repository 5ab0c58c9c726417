"""The feedback job: ground-truth labels joined to logged predictions, the model's quality live.

`labels.py` reads the labels, `quality.py` joins them with the prediction log's window and
computes `evaluate.metrics` with the gate's metric code (pure), `push.py` exports the result to
the Pushgateway for the compiled live-quality alerts. `mlc-runtime feedback` (in `cli.py`) runs
them, and with `on_degrade: retrain` starts the retraining drift starts (`retraining.py`).
"""
