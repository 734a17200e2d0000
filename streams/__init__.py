"""Faust stream processors: thin adapters from Faust batches to cdp.pipeline processors."""
