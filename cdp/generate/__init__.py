"""Synthetic omnichannel traffic: a seeded population of retail customers, their
touchpoints across web, app, store, newsletter, loyalty and service, realistic mess,
and the ground truth of who is who (see docs/generate.md)."""

from cdp.generate.catalog import JUNK_VALUES, KIOSK_IDS
from cdp.generate.core import DEFAULT_START, Generated, generate
from cdp.generate.emission import Stats

__all__ = ["DEFAULT_START", "JUNK_VALUES", "KIOSK_IDS", "Generated", "Stats", "generate"]
