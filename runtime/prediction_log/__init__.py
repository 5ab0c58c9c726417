"""The prediction log: a sample of what the model answered, as Parquet partitioned by hour.

`serve` and `batch` write it (`writer.py`, off the request path); `drift` reads its window as
current data and `feedback` joins it with ground-truth labels (`reader.py`). Its columns and its
layout are the contract's (`contract.LOG_*`); `records.py` turns logged requests into tables.
"""
