"""Fixtures of the dev-loop tests (defined in devloop_support.py)."""

from devloop_support import chart_values, kind_config, lock_pins, skaffold_config, skaffold_schema

__all__ = ["chart_values", "kind_config", "lock_pins", "skaffold_config", "skaffold_schema"]
