"""Deterministic sample customers in the guide's shape: the mix an Israeli CRM really holds.

Why this mix: the sync must survive Hebrew text with geresh (׳ or ') and gershayim (״ or ")
in names and addresses, one city spelled in two languages, phones in every spelling, 9-digit
tax ids whose leading zeros must stay, empty strings, duplicate emails and custom fields.
Records are copies of a few thousand templates built at import, so a million cost seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

_HEBREW_COMPANY_WORDS = ("אלפא", "השכונה", "הגליל", "כרמל", "הנגב", "גרשיים", "הצפון", "ירושלים", "אורן",
                         "שקד", "דקל", "רימון", "תמר")
_HEBREW_COMPANY_FORMS = ('חברת {} בע"מ', "מאפיית {}", "{} ייבוא ושיווק בע״מ", "סטודיו {}", 'מוסך {} בע"מ',
                         "{} ושות׳", 'משרד עו"ד {}')
_HEBREW_FIRST_NAMES = ("דנה", "יוסי", "מיכל", "אבי", "נועה", "משה", "שירה", "איתי", "רחל", "עומר", "תמר")
_HEBREW_LAST_NAMES = ("לוי", "כהן", "מזרחי", "בן־דוד", "פרץ", "ביטון", "אברהם", "פרידמן", "שפירא", "ג׳רבי")
_ENGLISH_NAMES = ("Galil Software Ltd", "Negev Solar", "Carmel Logistics", "Yarkon Bikes", "Dead Sea Cosmetics",
                  "Jaffa Port Coffee", "Arava Agritech", "Golan Heights Winery Shop", "Sharon Dental Clinic")
_STREETS = ("רח׳ הרצל", "שד׳ רוטשילד", "דרך מנחם בגין", "רחוב יפו", "רח' ז'בוטינסקי", "Derech Ha'Atzmaut",
            "HaNassi Blvd", "שדרות בן גוריון", "רחוב הנביאים")
_CITIES = (("תל אביב", "6100001"), ("Tel Aviv", "6100001"), ("חיפה", "3100001"), ("Haifa", "3100001"),
           ("ירושלים", "9100001"), ("Jerusalem", "9100001"), ("באר שבע", "8400001"), ("נתניה", "4200001"),
           ("ראשון לציון", "7500001"), ("Petah Tikva", "4900001"))
_MOBILE_PREFIXES = ("50", "52", "53", "54", "55", "58")
_SOURCES = ("אתר", "הפניה", "תערוכה", "Facebook")
_BATCH = 10_000_000  # seed k starts at index k * _BATCH: batches never share emails


# Everything but the email, the phone digits and the TaxID repeats every _PERIOD records, so a
# record costs a template copy and three formatted strings. A multiple of 50: "every 50th
# shares an email" then holds for any index.
_PERIOD = 4200


def _name(j: int) -> tuple[str, str]:
    """(Name, CompanyName): half Hebrew companies, some Hebrew people (no company), some English."""
    kind = j % 10
    if kind < 5:
        name = _HEBREW_COMPANY_FORMS[j % 7].format(_HEBREW_COMPANY_WORDS[j // 7 % 13])
        return name, name if j % 3 else ""
    if kind < 8:
        return f"{_HEBREW_FIRST_NAMES[j % 11]} {_HEBREW_LAST_NAMES[j // 11 % 10]}", ""
    name = _ENGLISH_NAMES[j // 10 % 9]
    return name, name


def _phone_prefix(j: int) -> str | None:
    """The start of a mobile number in one of the three spellings people type; None: no phone."""
    mobile = _MOBILE_PREFIXES[j % 6]
    style = j % 4
    if style == 0:
        return f"0{mobile}-"  # 050-1234567
    if style == 1:
        return f"+972{mobile}"  # +972501234567
    return None if j % 8 == 7 else f"0{mobile}"  # 0501234567


def _template(j: int) -> tuple[dict[str, Any], str | None, str, int | None]:
    """(record with the repeating fields, phone prefix, first TaxID digit, email back-offset).

    The back-offset is 1 for every 50th customer, who shares the previous one's email, and
    None for the customers with an empty email."""
    name, company = _name(j)
    city, zip_code = _CITIES[j % 10]
    record: dict[str, Any] = {
        "Name": name,
        "Email": "",
        "Phone": "",
        "CompanyName": company,
        "TaxID": "",
        "Address": f"{_STREETS[j % 9]} {j % 150 + 1}",
        "City": city,
        "State": "",
        "ZipCode": zip_code if j % 13 else "",
    }
    if j % 7 != 3:
        record["Country"] = "IL"
    if j % 5 == 0:
        record["Segment"] = "VIP" if j % 10 == 0 else "Regular"
    if j % 6 == 0:
        record["מקור"] = _SOURCES[j // 6 % 4]
    email_back = None if j % 17 == 16 else int(j % 50 == 1)
    return record, _phone_prefix(j), "5" if j % 2 == 0 else "0", email_back


_TEMPLATES = [_template(j) for j in range(_PERIOD)]


def demo_customers(n: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Yield ``n`` guide-shaped records without CustomerID, lazily; the same ``n`` and ``seed``
    give the same records. Every 50th customer shares the previous one's email, one in seven
    has no Country, half the TaxIDs start with 0, and some records carry the custom fields
    ``Segment`` and ``מקור``."""
    for i in range(seed * _BATCH, seed * _BATCH + n):
        template, phone_prefix, tax_lead, email_back = _TEMPLATES[i % _PERIOD]
        record = template.copy()
        if email_back is not None:
            record["Email"] = f"customer{i - email_back}@example.co.il"
        if phone_prefix is not None:
            record["Phone"] = f"{phone_prefix}{(i * 7919 + 1_234_567) % 10_000_000:07d}"
        record["TaxID"] = f"{tax_lead}{(i * 7_654_321 + 12_345) % 100_000_000:08d}"
        yield record
