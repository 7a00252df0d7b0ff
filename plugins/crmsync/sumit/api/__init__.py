"""SUMIT API profiles: one adapter per contract, chosen by the connection's ``api_profile``."""

from __future__ import annotations

from crmsync.sumit.api.base import ApiProfile
from crmsync.sumit.api.guide import GuideProfile
from crmsync.sumit.api.rest import RestProfile
from crmsync.sumit.connection import SumitSettings


def get_profile(settings: SumitSettings) -> ApiProfile:
    if settings.api_profile == "rest":
        return RestProfile(customers_folder=settings.customers_folder, property_fields=settings.property_fields)
    return GuideProfile()
