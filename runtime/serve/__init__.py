"""Serving: the model server (`app.py`), batch scoring (`batch_scoring.py`) and the KServe
storage initializer (`model_fetch.py`)."""
