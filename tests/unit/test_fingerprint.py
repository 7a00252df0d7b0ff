from crmsync.fingerprint import custom_fingerprint, fields_fingerprint, fingerprint_values


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
