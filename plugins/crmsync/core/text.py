"""Text PostgreSQL can hold (pure, no imports of crmsync): the lowest layer, below the model.

PostgreSQL text and jsonb cannot store NUL characters, and a lone UTF-16 surrogate (half an
emoji, as a server that cuts text by UTF-16 length sends it) has no UTF-8 form. Whatever
reads text off the wire makes it storable here first.
"""

from __future__ import annotations

import re

MAX_ID_LENGTH = 100  # SUMIT ids are numbers; a longer "id" is garbage, and too big for the unique index
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` without what PostgreSQL cannot hold: NUL characters and lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if not text.isascii() and _SURROGATE.search(text):
        # A valid pair becomes its character again; a lone half becomes U+FFFD.
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def storable_id(value: str | None) -> str | None:
    """An id read from a record that failed to decode, fit to key an error row; None when unusable."""
    if value is None:
        return None
    text = storable(value).strip()
    return text if text and len(text) <= MAX_ID_LENGTH else None
