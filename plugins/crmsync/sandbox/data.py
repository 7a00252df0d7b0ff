"""Deterministic sample customers in the guide's shape: the mix an Israeli CRM really holds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

_NAMES = ['חברת אלפא בע"מ', "מאפיית השכונה", "Galil Software Ltd", 'י. כהן ושות\' עו"ד', "Negev Solar",
          "סטודיו גרשיים", "Carmel Logistics", "דנה לוי", "Yarkon Bikes", 'מוסך הצפון בע"מ']
_CITIES = [("תל אביב", "6100001"), ("Haifa", "3100001"), ("ירושלים", "9100001"), ("באר שבע", "8400001"),
           ("Netanya", "4200001")]
_STREETS = ["רחוב הרצל", "Derech Ha'Atzmaut", "שדרות רוטשילד", "רחוב יפו", "HaNassi Blvd"]


def _phone(i: int) -> str:
    digits = f"05{i % 10}{1000000 + i * 7919 % 9000000:07d}"
    style = i % 3
    if style == 0:
        return f"{digits[:3]}-{digits[3:]}"
    if style == 1:
        return "+972" + digits[1:]
    return digits


def demo_customers(n: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """``n`` guide-shaped records without CustomerID, cheap enough for a million."""
    for k in range(n):
        i = k + seed
        city, zip_code = _CITIES[i % len(_CITIES)]
        record: dict[str, Any] = {
            "Name": f"{_NAMES[i % len(_NAMES)]} {i}",
            # every 50th pair of customers shares an email, as real data does
            "Email": f"customer{i - (i % 50 == 1)}@example.co.il",
            "Phone": _phone(i),
            "CompanyName": _NAMES[(i + 3) % len(_NAMES)] if i % 4 else "",
            "TaxID": f"{i * 37 % 1_000_000_000:09d}",  # 9 digits, leading zeros kept as text
            "Address": f"{_STREETS[i % len(_STREETS)]} {i % 120 + 1}",
            "City": city,
            "State": "",
            "ZipCode": zip_code,
        }
        if i % 7:
            record["Country"] = "IL"  # sometimes missing: the sync defaults it
        if i % 5 == 0:
            record["Segment"] = "VIP" if i % 10 == 0 else "Regular"
        if i % 6 == 0:
            record["מקור"] = "אתר"
        yield record
