"""SUMIT API profiles: one adapter per contract, chosen by the connection's ``api_profile``."""

from __future__ import annotations

from crmsync.api.base import ApiProfile
from crmsync.api.guide import GuideProfile

_PROFILES: dict[str, type[ApiProfile]] = {"guide": GuideProfile}


def get_profile(name: str) -> ApiProfile:
    return _PROFILES[name]()
