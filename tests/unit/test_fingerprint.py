from hypothesis import given, settings
from hypothesis import strategies as st

from crmsync.core.fingerprint import custom_fingerprint, fields_fingerprint, fingerprint_values


def test_fingerprint_tells_null_from_empty_and_is_unambiguous():
    assert fingerprint_values([None]) != fingerprint_values([""])
    assert fingerprint_values(["a|b", None]) != fingerprint_values(["a", "b"])
    assert fingerprint_values(["1:a"]) != fingerprint_values(["a"])


def test_fingerprint_changes_with_any_synced_field():
    fields = {"name": "Alpha", "email": "a@x.il", "country": "IL"}
    base = fields_fingerprint(fields)
    assert fields_fingerprint(dict(fields)) == base
    for key in ("name", "email", "phone", "zip_code"):
        assert fields_fingerprint({**fields, key: "changed"}) != base


def test_fingerprint_ignores_keys_that_are_not_synced():
    fields = {"name": "Alpha"}
    assert fields_fingerprint({**fields, "metadata": {"x": 1}}) == fields_fingerprint(fields)


def test_custom_fingerprint_ignores_key_order_but_not_values():
    assert custom_fingerprint({"a": 1, "b": "ב"}) == custom_fingerprint({"b": "ב", "a": 1})
    assert custom_fingerprint({"a": 1}) != custom_fingerprint({"a": "1"})


# The definition the stored fingerprints were made with; custom_fingerprint's fast path for
# text-only dicts must write exactly this text, or every row would look changed after an upgrade.
def _reference_custom_fingerprint(custom):
    import hashlib
    import json

    text = json.dumps(custom, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.md5(text.encode("utf-8")).hexdigest()


_ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["", "\x00", "\x1f\x7f", "\u2028\u2029", "\ufeff", 'בע"מ', "a\\b", "😀", "\U0010ffff", "\n\r\t\b\f"])
_ANY_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | _ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_ANY_TEXT, inner, max_size=3), max_leaves=6)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_ANY_TEXT, _ANY_TEXT, max_size=5))
def test_custom_fingerprint_of_text_fields_is_the_reference_json(custom):
    assert custom_fingerprint(custom) == _reference_custom_fingerprint(custom)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_ANY_TEXT, _ANY_VALUE, max_size=4))
def test_custom_fingerprint_of_any_json_is_the_reference_json(custom):
    assert custom_fingerprint(custom) == _reference_custom_fingerprint(custom)


def test_fields_fingerprint_reads_fields_by_name_not_by_order():
    from crmsync.core.model import SYNCED_COLUMNS

    fields = {column: f"{column}-value" for column in SYNCED_COLUMNS}
    reversed_fields = dict(reversed(list(fields.items())))
    assert fields_fingerprint(reversed_fields) == fields_fingerprint(fields)
    assert fields_fingerprint(fields) == fingerprint_values([fields[c] for c in SYNCED_COLUMNS])
