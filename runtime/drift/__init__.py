"""Drift checks: reference profiles, statistical tests, reports, metrics and retraining.

Public entry points:

- :func:`mlc.runtime.drift.profile.build_profile` builds a mergeable reference profile.
- :func:`mlc.runtime.drift.profile.merge_profiles` merges profile shards exactly.
- :func:`mlc.runtime.drift.check.run_check` compares current data with a profile.
"""
