"""Field rules (crmsync.core.field_rules): reading and validating them, what they let in and out,
and the three-way merge under them, down to whole sync rounds against the sandbox with no
ping-pong. The rounds run the pull and push as the SQL does (include/sql/pull_page.sql,
update_pulled.sql, select_push_candidates.sql, mark_pushed.sql), in memory."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from crmsync.core import field_rules
from crmsync.core.errors import ConfigurationError
from crmsync.core.field_rules import FieldRules, parse
from crmsync.core.fingerprint import custom_fingerprint, customer_fingerprints, fields_fingerprint
from crmsync.core.merge import ConflictPolicy, Outcome, SyncState, plan_pull
from crmsync.core.model import SYNCED_COLUMNS, CrmCustomer, LocalCustomer, pulled_extras, restore_extras
from crmsync.sandbox import SandboxState
from crmsync.sumit.api.guide import GuideProfile
from crmsync.sumit.api.rest import RestProfile
from crmsync.sumit.connection import SumitSettings

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
SOURCE = "Airflow Variable 'crmsync_field_rules'"


def rules(**spec):
    return parse(json.dumps(spec), source="test")


# -- reading and validating -------------------------------------------------------------------


def test_no_rules_is_the_default_and_says_so():
    for text in (None, "", "  \n", "{}", '{"fields": {}, "exclude_metadata": []}', '{"fields": {"email": "both"}}'):
        assert parse(text, source="test").is_default, text
    assert FieldRules().describe() == "none"


def test_rules_read_both_forms_and_describe_themselves():
    r = parse('{"comment": "ops", "fields": {"email": "from_crm", "phone": {"direction": "to_crm"}, '
              '"city": {"keep_local_when_crm_empty": true, "comment": "x"}, "state": "none"}, '
              '"exclude_metadata": ["password*", "*_secret"]}', source=SOURCE)
    assert not r.is_default
    assert [r.direction(c) for c in ("email", "phone", "city", "state", "name")] == [
        "from_crm", "to_crm", "both", "none", "both"]
    assert r.not_taken == {"phone", "state"} and r.not_sent == {"email", "state"}
    line = r.describe()
    for words in ("email from_crm", "phone to_crm", "state none", "city keeps the local value", "password*", SOURCE):
        assert words in line


@pytest.mark.parametrize("text, entry, words", [
    ('{"fields": {"emial": "from_crm"}}', "fields.emial", "not a synced field (did you mean 'email'?)"),
    ('{"fields": {"Email": "from_crm"}}', "fields.Email", "did you mean 'email'?"),
    ('{"fields": {"email": "sideways"}}', "fields.email", "'sideways' is not a direction"),
    ('{"fields": {"email": {"direction": "fromcrm"}}}', "fields.email.direction", "did you mean 'from_crm'?"),
    ('{"fields": {"email": {"direction": "both", "keep_local": true}}}', "fields.email.keep_local", "unknown key"),
    ('{"fields": {"email": {"keep_local_when_crm_empty": "yes"}}}', "fields.email.keep_local_when_crm_empty",
     "must be true or false"),
    ('{"fields": {"phone": {"direction": "to_crm", "keep_local_when_crm_empty": true}}}',
     "fields.phone.keep_local_when_crm_empty", "only means something for a field taken from the CRM"),
    ('{"fields": {"country": {"keep_local_when_crm_empty": true}}}', "fields.country.keep_local_when_crm_empty",
     "read as IL"),
    ('{"fields": {"email": 3}}', "fields.email", "must be a direction"),
    ('{"fields": ["email"]}', "fields", "must be an object"),
    ('{"field": {}}', "field", "unknown key (did you mean 'fields'?)"),
    ('{"exclude_metadata": "password*"}', "exclude_metadata", "must be a list"),
    ('{"exclude_metadata": ["ok*", ""]}', "exclude_metadata[1]", "non-empty glob pattern"),
    ('{"fields": {"email": "none", "email": "both"}}', None, "'email' appears twice"),
    ('["email"]', None, "must be a JSON object"),
    ('{"fields": {"email": "from_crm",}}', None, "not valid JSON"),
])
def test_a_bad_rule_is_refused_naming_the_entry_and_where_it_came_from(text, entry, words):
    with pytest.raises(ConfigurationError) as info:
        parse(text, source=SOURCE)
    message = str(info.value)
    assert message.startswith(f"Bad field rules in {SOURCE}: ") and words in message
    if entry:
        assert f": {entry}: " in message


def test_the_variable_wins_over_the_file_and_the_file_over_nothing(tmp_path, monkeypatch):
    path = tmp_path / "rules.json"
    path.write_text('{"fields": {"email": "to_crm"}}', encoding="utf-8")
    monkeypatch.setenv(field_rules.FILE_ENV, str(path))
    from_file = field_rules.load(None)
    assert from_file.direction("email") == "to_crm" and str(path) in from_file.describe()
    assert field_rules.load("  ").direction("email") == "to_crm"  # a blank Variable counts as not set
    from_variable = field_rules.load('{"fields": {"email": "none"}}')
    assert from_variable.direction("email") == "none" and "Airflow Variable" in from_variable.describe()
    assert field_rules.load("{}").is_default  # an empty Variable object switches the file off
    path.write_text('{"fields": {"email": "up"}}', encoding="utf-8")
    with pytest.raises(ConfigurationError, match=f"Bad field rules in file {path}: fields.email: "):
        field_rules.load(None)
    monkeypatch.setenv(field_rules.FILE_ENV, str(tmp_path / "missing.json"))
    with pytest.raises(ConfigurationError, match="CRMSYNC_FIELD_RULES_FILE .* not a readable file"):
        field_rules.load(None)
    monkeypatch.delenv(field_rules.FILE_ENV)
    monkeypatch.setattr(field_rules, "DEFAULT_FILE", tmp_path / "field_rules.json")
    assert field_rules.load(None).is_default
    (tmp_path / "field_rules.json").write_text('{"exclude_metadata": ["x*"]}', encoding="utf-8")
    assert field_rules.load(None).exclude_metadata == ("x*",)


def test_the_example_file_is_valid():
    text = (field_rules.DEFAULT_FILE.parent / "field_rules.example.json").read_text(encoding="utf-8")
    assert not parse(text, source="example").is_default


# -- what the rules let in and out ---------------------------------------------------------------


def fields(**values):
    base = {column: None for column in SYNCED_COLUMNS}
    base.update(name="Alpha", email="a@x.il", phone="050-1", city="Haifa", tax_id="012345678", country="IL")
    base.update(values)
    return base


def crm(custom=None, **values):
    return CrmCustomer(sumit_id="100", fields=fields(**values), custom=custom or {})


def test_pulled_drops_excluded_metadata_whatever_its_case_and_prefix():
    r = rules(exclude_metadata=["password*", "*_secret", "ת.ז*"])
    customer = crm(custom={"Password": "x", "api_secret": "y", "ת.ז.": "1", "crm:password_hint": "z", "Segment": "VIP"})
    assert r.pulled(customer).custom == {"Segment": "VIP"}
    assert customer_fingerprints(r.pulled(customer))[1] == custom_fingerprint({"Segment": "VIP"})


def test_pulled_hides_what_is_not_taken_but_keeps_the_name_a_new_row_needs():
    r = rules(fields={"name": "to_crm", "phone": "none", "country": "to_crm", "email": "from_crm"})
    original = crm(name="CRM name", phone="050-9", country="US", email="crm@x.il")
    pulled = r.pulled(original)
    assert pulled.fields["phone"] is None and pulled.fields["country"] == "IL" and pulled.fields["email"] == "crm@x.il"
    assert pulled.fields["name"] == "CRM name"  # what a new row gets
    view = {**pulled.fields, "name": None}
    assert customer_fingerprints(pulled)[0] == fields_fingerprint(view)  # what the comparison sees
    assert pulled.row_fingerprint == fields_fingerprint(pulled.fields)
    assert pulled.original_fingerprint == fields_fingerprint(original.fields)
    # a CRM edit of a field not taken is no change at all
    assert customer_fingerprints(r.pulled(crm(name="Renamed", phone="03-1", country="FR", email="crm@x.il"))) \
        == customer_fingerprints(pulled)
    # a page's encoding carries what the merge needs of it (a held pull's listing)
    again = restore_extras(CrmCustomer("100", dict(pulled.fields)), json.loads(json.dumps(pulled_extras(pulled))))
    assert (again.row_fingerprint, again.original_fingerprint) == (pulled.row_fingerprint, pulled.original_fingerprint)
    assert pulled_extras(crm()) is None


def test_outgoing_leaves_out_what_is_not_sent_but_a_create_gives_sumit_its_first_values():
    r = rules(fields={"name": "none", "email": "none", "phone": "to_crm", "city": "from_crm"})
    update = LocalCustomer(id=1, sumit_id="100", fields=fields(), fingerprint="f")
    assert set(r.outgoing(update).fields) == set(SYNCED_COLUMNS) - {"name", "email", "city"}
    create = LocalCustomer(id=2, sumit_id=None, fields=fields(), fingerprint="f")
    assert set(r.outgoing(create).fields) == set(SYNCED_COLUMNS) - {"email"}  # a name and the from_crm city
    assert FieldRules().outgoing(update) is update


EXPECTED_GUIDE = {"Customer": {"CustomerID": "100", "Name": "Alpha", "Email": "a@x.il", "Phone": "050-1",
                               "CompanyName": "", "TaxID": "012345678", "Address": "", "City": "Haifa", "State": "",
                               "Country": "IL", "ZipCode": ""}}
EXPECTED_REST = {"Details": {"Name": "Alpha", "EmailAddress": "a@x.il", "Phone": "050-1", "CompanyNumber": "012345678",
                             "Address": "", "City": "Haifa", "ZipCode": "",
                             "Properties": {"CompanyName": "", "State": "", "Country": "IL"}, "ID": 100}}


def test_without_rules_the_request_bodies_are_as_before():
    local = LocalCustomer(id=1, sumit_id="100", fields=fields(), fingerprint="f")
    for profile, expected in ((GuideProfile(), EXPECTED_GUIDE), (RestProfile("customers"), EXPECTED_REST)):
        body = profile.push_request(FieldRules().outgoing(local))[1]
        assert json.dumps(body) == json.dumps(expected)  # same keys, same order


def test_the_adapters_leave_out_the_keys_of_fields_not_sent():
    local = LocalCustomer(id=1, sumit_id="100", fields=fields(), fingerprint="f")
    out = rules(fields={"email": "from_crm", "state": "none", "name": "none"}).outgoing(local)
    guide_body = GuideProfile().push_request(out)[1]["Customer"]
    assert "Email" not in guide_body and "State" not in guide_body and "Name" not in guide_body
    assert guide_body["Phone"] == "050-1"
    rest_body = RestProfile("customers").push_request(out)[1]["Details"]
    assert "EmailAddress" not in rest_body and "Name" not in rest_body
    assert rest_body["Properties"] == {"CompanyName": "", "Country": "IL"}


# -- the rest profile's properties (connection extra.property_fields) ----------------------------


def settings(extra):
    return SumitSettings.from_connection("sumit_default", host="http://127.0.0.1:9", login="1000", password="k",
                                         extra={"api_profile": "rest", "customers_folder": "customers", **extra})


def test_property_fields_default_and_override_one_by_one():
    assert settings({}).property_fields == {"company_name": "CompanyName", "state": "State", "country": "Country"}
    s = settings({"property_fields": {"state": None, "company_name": " שם חברה "}})
    assert s.property_fields == {"company_name": "שם חברה", "state": None, "country": "Country"}
    assert settings({"property_fields": json.dumps({"country": ""})}).property_fields["country"] is None


@pytest.mark.parametrize("value, words", [
    ({"city": "City"}, "extra.property_fields.city: only company_name, state, country"),
    ({"state": 3}, "extra.property_fields.state must be a property name or null"),
    ({"state": "Customers_City"}, "a property SUMIT already uses"),
    ({"state": "Region", "country": "Region"}, "the property 'Region' is named for two columns"),
    (["State"], "extra.property_fields must be an object"),
])
def test_bad_property_fields_are_refused_naming_the_key(value, words):
    with pytest.raises(ConfigurationError, match="Airflow connection 'sumit_default'") as info:
        settings({"property_fields": value})
    assert words in str(info.value)


def test_a_column_mapped_to_no_property_is_neither_read_nor_sent():
    profile = RestProfile("customers", property_fields={"state": None, "company_name": "שם חברה"})
    entity = {"ID": 100, "Customers_FullName": ["Alpha"], "State": ["North"], "שם חברה": ["אלפא"], "Country": ["IL"]}
    customer = profile.decode_customer(entity)
    assert customer.fields["state"] is None and customer.fields["company_name"] == "אלפא"
    assert customer.not_carried == {"state"} and customer.custom == {"State": "North"}
    local = LocalCustomer(id=1, sumit_id="100", fields=fields(state="Center", company_name="אלפא"), fingerprint="f")
    assert profile.push_request(local)[1]["Details"]["Properties"] == {"שם חברה": "אלפא", "Country": "IL"}
    # the pull keeps the local value of a column the profile does not carry, even without rules
    state = synced_state(local.fields)
    decision = plan_pull(profile.decode_customer({**entity, "Customers_EmailAddress": ["new@x.il"]}), state,
                         policy=ConflictPolicy.NEWER_WINS, pulled_at=NOW)
    assert decision.replace_fields and decision.customer.fields["state"] == "Center"
    assert decision.customer.fields["email"] == "new@x.il"
    assert decision.agreed_fingerprint == fields_fingerprint(decision.customer.fields) != decision.fingerprint


# -- the merge under rules ------------------------------------------------------------------------


def synced_state(agreed, local=None, updated_at=NOW - timedelta(days=1), crm_fp=None):
    return SyncState(id=1, fields=dict(local or agreed), synced_fingerprint=fields_fingerprint(agreed),
                     crm_fingerprint=crm_fp or fields_fingerprint(agreed), crm_custom_fingerprint=custom_fingerprint({}),
                     updated_at=updated_at)


def plan(r, customer, state, **kw):
    return plan_pull(r.pulled(customer), state, policy=kw.pop("policy", ConflictPolicy.NEWER_WINS), pulled_at=NOW,
                     rules=r, **kw)


def test_without_rules_the_merge_decides_as_before():
    cases = [(crm(), synced_state(fields())), (crm(email="n@x.il"), synced_state(fields())),
             (crm(email="n@x.il"), synced_state(fields(), local=fields(phone="9"))),
             (crm(email="same"), synced_state(fields(), local=fields(email="same"))),
             (crm(custom={"S": "1"}), synced_state(fields()))]
    for customer, state in cases:
        with_rules = plan_pull(customer, state, policy=ConflictPolicy.NEWER_WINS, pulled_at=NOW, rules=FieldRules())
        without = plan_pull(customer, state, policy=ConflictPolicy.NEWER_WINS, pulled_at=NOW)
        assert with_rules == without and with_rules.agreed_fingerprint == without.fingerprint


def test_keep_local_when_crm_empty_keeps_the_local_value_and_takes_the_rest():
    r = rules(fields={"tax_id": {"keep_local_when_crm_empty": True}})
    decision = plan(r, crm(tax_id=None, email="new@x.il"), synced_state(fields()))
    assert decision.replace_fields and decision.mark_agreed
    assert decision.customer.fields["tax_id"] == "012345678" and decision.customer.fields["email"] == "new@x.il"
    assert decision.agreed_fingerprint == fields_fingerprint(decision.customer.fields)
    assert decision.fingerprint == fields_fingerprint(fields(tax_id=None, email="new@x.il"))  # the CRM copy as seen
    without = plan_pull(crm(tax_id=None, email="new@x.il"), synced_state(fields()), policy=ConflictPolicy.NEWER_WINS,
                        pulled_at=NOW)
    assert without.customer.fields["tax_id"] is None  # what the rule prevents


def test_a_crm_edit_of_a_field_not_taken_is_no_change():
    r = rules(fields={"phone": "to_crm", "city": "none"})
    agreed = fields()
    state = synced_state(agreed, crm_fp=customer_fingerprints(r.pulled(crm()))[0])
    decision = plan(r, crm(phone="03-777", city="Eilat"), state)
    assert decision.outcome is Outcome.UNCHANGED and not decision.write


def test_a_local_edit_of_a_to_crm_field_is_never_marked_agreed_by_a_pull():
    r = rules(fields={"phone": "to_crm"})
    state = synced_state(fields(), local=fields(phone="052-2"), crm_fp=customer_fingerprints(r.pulled(crm()))[0])
    decision = plan(r, crm(custom={"Segment": "new"}), state)  # something moved in the CRM: the row is planned
    assert decision.write and not decision.mark_agreed and not decision.replace_fields


def test_a_rule_that_starts_hiding_a_field_turns_no_pending_edit_into_a_conflict():
    agreed = fields(phone="050-1")
    state = synced_state(agreed, local=fields(email="local@x.il"))  # crm_fingerprint: the whole copy, as before
    decision = plan(rules(fields={"phone": "to_crm"}), crm(), state, policy=ConflictPolicy.CRM_WINS)
    assert decision.conflict is None and not decision.replace_fields and not decision.mark_agreed
    assert decision.write and decision.outcome is Outcome.UNCHANGED  # only the CRM fingerprint is brought up to date


# -- whole rounds against the sandbox: no ping-pong -----------------------------------------------


KEY = "unit-key"


class Rounds:
    """A local table synced with an in-process sandbox as the DAGs do, in memory."""

    def __init__(self, rules: FieldRules, profile=None, **sandbox):
        self.state = SandboxState(api_key=KEY, **sandbox)
        self.rules, self.profile = rules, profile or GuideProfile()
        self.rows: dict[str, dict] = {}
        self.sent: list[dict] = []

    def call(self, endpoint, body):
        status, answer = self.state.answer(endpoint, {"Credentials": {"CompanyID": 1000, "APIKey": KEY}, **body})
        assert status == 200 and answer["Status"] in (0, "Success"), answer
        return answer

    def pull(self, policy=ConflictPolicy.NEWER_WINS):
        """(customers written, fields changed): pull_page.sql, then update_pulled.sql."""
        endpoint, body = self.profile.list_request(0, 1000)
        written, changed = [], []
        for record in self.profile.parse_list(self.call(endpoint, body), endpoint).records:
            raw = self.profile.decode_customer(record)
            c = raw if self.rules.is_default else self.rules.pulled(raw)
            fp, custom_fp = customer_fingerprints(c)
            row = self.rows.get(c.sumit_id)
            if row is None:
                self.rows[c.sumit_id] = {"fields": dict(c.fields), "metadata": dict(c.custom), "updated_at": NOW,
                                         "synced": c.row_fingerprint or fp, "crm": fp, "crm_custom": custom_fp}
                written.append(c.sumit_id)
                continue
            if row["crm"] == fp and row["crm_custom"] == custom_fp:
                continue
            state = SyncState(1, dict(row["fields"]), row["synced"], row["crm"], row["crm_custom"], row["updated_at"])
            d = plan_pull(c, state, policy=policy, pulled_at=NOW, rules=self.rules)
            if not d.write:
                continue
            written.append(c.sumit_id)
            if d.replace_fields and d.customer.fields != row["fields"]:
                row["fields"] = dict(d.customer.fields)
                changed.append(c.sumit_id)
            if d.merge_custom:
                row["metadata"].update(d.customer.custom)
            if d.mark_agreed:
                row["synced"] = d.agreed_fingerprint
            row["crm"], row["crm_custom"] = d.fingerprint, d.custom_fingerprint
        return written, changed

    def push(self):
        """Customers sent: select_push_candidates.sql (only changed), then mark_pushed.sql."""
        pushed = []
        for key, row in list(self.rows.items()):
            fp = fields_fingerprint(row["fields"])
            if row["synced"] == fp:
                continue
            sumit_id = None if key.startswith("local:") else key
            local = LocalCustomer(id=1, sumit_id=sumit_id, fields=dict(row["fields"]), fingerprint=fp)
            endpoint, body = self.profile.push_request(self.rules.outgoing(local))
            answer = self.call(endpoint, body)
            self.sent.append(body)
            row["synced"] = row["crm"] = fp
            row["crm_custom"] = row.get("crm_custom") or custom_fingerprint({})
            if sumit_id is None:
                sumit_id = str((answer.get("Data") or {}).get("CustomerID") or answer.get("CustomerID"))
                self.rows[sumit_id] = self.rows.pop(key)
            pushed.append(sumit_id)
        return pushed

    def add_local(self, **values):
        """A local-only customer (no CRM id): the next push creates it."""
        key = f"local:{len(self.rows)}"
        self.rows[key] = {"fields": {**{c: None for c in SYNCED_COLUMNS}, "country": "IL", **values},
                          "metadata": {}, "updated_at": NOW, "synced": None, "crm": None, "crm_custom": None}
        return key

    def sync(self):
        """One bidirectional run: (written by the pull, fields changed by the pull, pushed)."""
        written, changed = self.pull()
        return written, changed, self.push()

    def edit_local(self, sumit_id, **values):
        row = self.rows[sumit_id]
        row["fields"] = {**row["fields"], **values}
        row["updated_at"] = NOW - timedelta(minutes=5)

    def edit_crm(self, sumit_id, **values):
        self.state.add_customers([{**self.state.customers[sumit_id], **values}])

    def crm(self, sumit_id):
        return self.state.customers[sumit_id]

    def assert_settled(self):
        """The next run changes no field and pushes nothing; the one after writes nothing at all."""
        _, changed, pushed = self.sync()
        assert (changed, pushed) == ([], [])
        assert self.sync() == ([], [], [])


SEED = {"Name": "Alpha", "Email": "a@x.il", "Phone": "050-1", "City": "Haifa", "TaxID": "012345678", "Country": "IL",
        "Segment": "VIP"}


def started(r, profile=None, **sandbox):
    rounds = Rounds(r, profile, **sandbox)
    [sumit_id] = rounds.state.add_customers([SEED])
    assert rounds.sync()[2] == []  # a new customer is not pushed back
    assert rounds.sync() == ([], [], [])
    return rounds, sumit_id


def test_from_crm_takes_crm_edits_and_undoes_local_ones_without_ping_pong():
    rounds, cid = started(rules(fields={"email": "from_crm"}))
    rounds.edit_crm(cid, Email="crm@x.il")
    assert rounds.sync()[1:] == ([cid], [])
    assert rounds.rows[cid]["fields"]["email"] == "crm@x.il"
    rounds.assert_settled()

    rounds.edit_local(cid, email="local@x.il", phone="050-2")
    rounds.sync()
    assert rounds.crm(cid)["Email"] == "crm@x.il" and rounds.crm(cid)["Phone"] == "050-2"
    assert all("Email" not in body["Customer"] for body in rounds.sent)
    rounds.sync()
    assert rounds.rows[cid]["fields"]["email"] == "crm@x.il"  # the CRM's value is the truth
    rounds.assert_settled()


def test_a_local_customer_created_under_from_crm_gives_sumit_its_value_and_keeps_it():
    rounds = Rounds(rules(fields={"email": "from_crm", "city": "none"}))
    rounds.add_local(name="Local Ltd", email="local@x.il", city="Akko")
    [cid] = rounds.sync()[2]
    assert rounds.crm(cid)["Email"] == "local@x.il" and "City" not in rounds.crm(cid)
    rounds.sync()
    assert rounds.rows[cid]["fields"]["email"] == "local@x.il" and rounds.rows[cid]["fields"]["city"] == "Akko"
    rounds.assert_settled()


def test_to_crm_sends_local_edits_and_ignores_crm_ones_without_ping_pong():
    rounds, cid = started(rules(fields={"phone": "to_crm"}))
    assert rounds.rows[cid]["fields"]["phone"] is None  # a new row does not take the CRM's value either
    rounds.edit_crm(cid, Phone="03-999")
    assert rounds.sync() == ([], [], [])  # not even a bookkeeping write
    assert rounds.rows[cid]["fields"]["phone"] is None

    rounds.edit_local(cid, phone="052-2")
    assert rounds.sync()[2] == [cid]
    assert rounds.crm(cid)["Phone"] == "052-2"
    rounds.assert_settled()


def test_none_neither_takes_nor_sends_without_ping_pong():
    rounds, cid = started(rules(fields={"city": "none"}))
    rounds.edit_crm(cid, City="Eilat")
    assert rounds.sync() == ([], [], [])
    rounds.edit_local(cid, city="Akko", phone="050-3")
    rounds.sync()
    assert rounds.crm(cid)["City"] == "Eilat" and rounds.crm(cid)["Phone"] == "050-3"
    assert rounds.rows[cid]["fields"]["city"] == "Akko"
    rounds.assert_settled()
    assert all("City" not in body["Customer"] for body in rounds.sent)


def test_keep_local_when_crm_empty_survives_a_blanked_crm_field_for_good():
    rounds, cid = started(rules(fields={"tax_id": {"keep_local_when_crm_empty": True}}))
    rounds.edit_crm(cid, TaxID="", Email="new@x.il")
    assert rounds.sync()[1:] == ([cid], [])
    assert rounds.rows[cid]["fields"]["tax_id"] == "012345678" and rounds.rows[cid]["fields"]["email"] == "new@x.il"
    rounds.assert_settled()
    rounds.edit_crm(cid, TaxID="999999999")  # a value, not a blank: taken
    rounds.sync()
    assert rounds.rows[cid]["fields"]["tax_id"] == "999999999"
    rounds.assert_settled()


def test_a_name_not_taken_still_names_a_new_row_and_the_row_is_not_pushed_back():
    rounds, cid = started(rules(fields={"name": "to_crm"}))
    assert rounds.rows[cid]["fields"]["name"] == "Alpha" and rounds.sent == []
    rounds.edit_crm(cid, Name="Renamed in SUMIT")
    assert rounds.sync() == ([], [], [])
    rounds.edit_local(cid, name="Alpha Ltd")
    assert rounds.sync()[2] == [cid] and rounds.crm(cid)["Name"] == "Alpha Ltd"
    rounds.assert_settled()


def test_excluded_metadata_is_never_stored_and_its_changes_are_no_change():
    rounds = Rounds(rules(exclude_metadata=["password*", "*token"]))
    [cid] = rounds.state.add_customers([{**SEED, "Password": "hunter2", "api_token": "t", "Segment": "VIP"}])
    rounds.sync()
    assert rounds.rows[cid]["metadata"] == {"Segment": "VIP"}
    rounds.edit_crm(cid, Password="changed", api_token="t2")
    assert rounds.sync() == ([], [], [])
    rounds.edit_local(cid, phone="050-9")
    rounds.sync()
    sent = json.dumps(rounds.sent)
    assert rounds.sent and "hunter2" not in sent and "Password" not in sent and "api_token" not in sent
    rounds.assert_settled()


def test_rest_a_property_the_folder_lacks_is_refused_and_the_configured_mapping_works():
    folder = ["CompanyName", "Country", "מחוז"]
    refused = Rounds(FieldRules(), RestProfile("customers"), folder_properties=folder)
    [cid] = refused.state.add_customers([{**SEED, "מחוז": "North"}])
    refused.sync()
    refused.edit_local(cid, phone="050-7")
    with pytest.raises(AssertionError, match="Property 'State' does not exist in folder 'customers'"):
        refused.push()

    mapped = Rounds(FieldRules(), RestProfile("customers", {"state": "מחוז"}), folder_properties=folder)
    [cid] = mapped.state.add_customers([{**SEED, "מחוז": "North"}])
    mapped.sync()
    assert mapped.rows[cid]["fields"]["state"] == "North"
    mapped.edit_local(cid, state="South")
    assert mapped.sync()[2] == [cid] and mapped.crm(cid)["מחוז"] == "South"
    mapped.assert_settled()

    unmapped = Rounds(FieldRules(), RestProfile("customers", {"state": None}), folder_properties=folder)
    [cid] = unmapped.state.add_customers([SEED])
    unmapped.sync()
    unmapped.edit_local(cid, state="Center", phone="050-8")
    assert unmapped.sync()[2] == [cid]
    assert all("State" not in json.dumps(body, ensure_ascii=False) for body in unmapped.sent)
    assert unmapped.rows[cid]["fields"]["state"] == "Center"
    unmapped.assert_settled()


# -- the sandbox -------------------------------------------------------------------------------------


def test_sandbox_updates_keep_what_they_leave_out_but_creates_need_a_name():
    state = SandboxState(api_key=KEY)
    [cid] = state.add_customers([SEED])
    credentials = {"CompanyID": 1000, "APIKey": KEY}
    _, answer = state.answer("/website/customers/update/", {"Credentials": credentials,
                                                             "Customer": {"CustomerID": cid, "Phone": "9"}})
    assert answer["Status"] == "Success" and state.customers[cid]["Name"] == "Alpha" and state.customers[cid]["Phone"] == "9"
    _, answer = state.answer("/accounting/customers/update/", {"Credentials": credentials,
                                                               "Details": {"ID": int(cid), "City": "Akko"}})
    assert answer["Status"] == 0 and state.customers[cid]["Name"] == "Alpha" and state.customers[cid]["City"] == "Akko"
    for path, body in (("/website/customers/update/", {"Customer": {"CustomerID": cid, "Name": " "}}),
                       ("/website/customers/update/", {"Customer": {"Email": "x"}}),
                       ("/accounting/customers/create/", {"Details": {"Email": "x"}})):
        assert state.answer(path, {"Credentials": credentials, **body})[1]["UserErrorMessage"] == "Customer name is required"


def test_sandbox_folder_properties_limit_what_is_listed_and_accepted():
    state = SandboxState(api_key=KEY)
    [cid] = state.add_customers([{**SEED, "State": "North", "Property_7": "x"}])
    state.set_knobs({"folder_properties": ["Property_7"]})
    listed = state.list_entities({"Folder": "customers"})["Data"]["Entities"][0]
    assert "State" not in listed and listed["Property_7"] == ["x"] and listed["Customers_FullName"] == ["Alpha"]
    answer = state.save_details({"Details": {"ID": int(cid), "Properties": {"State": "S"}}}, create=False)
    assert answer["Status"] == 1 and answer["UserErrorMessage"] == "Property 'State' does not exist in folder 'customers'"
    assert state.customers[cid]["State"] == "North"
    state.set_knobs({"folder_properties": None})
    assert state.save_details({"Details": {"ID": int(cid), "Properties": {"State": "S"}}}, create=False)["Status"] == 0
