"""OpenAI-assisted detection against a local fake of the chat-completions API: the real
``openai`` client sends the request; the tests read what the server received and check how
each kind of answer (good, HTTP 500, slow, malformed, off-schema) is merged or survived."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from flowforge_catalog.files.detection import (
    AiSettings,
    LocalFileSource,
    ai_settings_from_env,
    detect,
)
from flowforge_catalog.files.detection.ai import column_limit, mask
from tests.files import corpus

ORDERS = (
    "order_id,cust_nm,email,Order Date,amount,ssn\n"
    "1001,Jane Doe,jane.doe@example.com,2024-01-05,12.50,123-45-6789\n"
    "1002,John Roe,john.roe@example.com,2024-01-06,7.25,987-65-4321\n"
    "1003,Ann Poe,ann.poe@example.com,2024-01-07,3.00,555-44-3333\n"
)


def good_answer(**overrides) -> dict:
    columns = {
        "order_id": ("The order's identifier.", None, "order_id"),
        "cust_nm": ("The customer's full name.", "person_name", "customer_name"),
        # The heuristic proved email; the model's "phone" must not replace it.
        "email": ("Where the customer is reached.", "phone", "contact_email"),
        "Order Date": ("When the order was placed.", None, "placed_on"),
        "amount": ("Order total in dollars.", "currency_amount", "total_amount"),
        "ssn": ("US social security number.", "ssn", "ssn"),
    }
    answer = {
        "columns": [
            {"name": name, "description": d, "semanticType": s, "suggestedName": n}
            for name, (d, s, n) in columns.items()
        ],
        "suggestedPrimaryKey": "order_id",
    }
    return answer | overrides


@pytest.fixture
def orders(corpus_dir: Path) -> Path:
    return corpus.write(corpus_dir, "orders.csv", ORDERS)


def settings(fake, **options) -> AiSettings:
    return AiSettings(
        api_key=SecretStr("sk-test-canary"), base_url=fake.base_url, **({"timeout": 5} | options)
    )


def column(detection, name):
    return next(c for c in detection.columns if c.name == name)


def test_good_answer_is_merged_with_heuristic_precedence(fake_openai, orders):
    fake_openai.answer(good_answer())
    detection = detect(LocalFileSource(orders), ai=settings(fake_openai))

    [request] = fake_openai.received
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test-canary"
    body = request.body
    assert body["model"] == "gpt-4o-mini"
    assert body["max_completion_tokens"] == 2000
    schema = body["response_format"]
    assert schema["type"] == "json_schema"
    assert schema["json_schema"]["strict"] is True
    assert schema["json_schema"]["schema"]["required"] == ["columns", "suggestedPrimaryKey"]

    name = column(detection, "cust_nm")  # the heuristic had nothing: the model fills all
    assert (name.semantic_type, name.pii, name.suggested_name) == (
        "person_name",
        True,
        "customer_name",
    )
    assert name.description == "The customer's full name."
    assert name.source == "ai"
    assert name.provenance == {
        "description": "ai",
        "semanticType": "ai",
        "pii": "ai",
        "suggestedName": "ai",
    }
    email = column(detection, "email")  # the heuristic's tag and type stand
    assert (email.type, email.semantic_type, email.pii) == ("string", "email", True)
    assert email.provenance["semanticType"] == "heuristic"
    assert email.provenance["description"] == "ai"
    assert email.suggested_name == "contact_email"
    order_date = column(detection, "Order Date")  # a heuristic name is kept
    assert (order_date.type, order_date.suggested_name) == ("date", "order_date")
    assert order_date.provenance["suggestedName"] == "heuristic"
    amount = column(detection, "amount")
    assert (amount.type, amount.precision, amount.scale) == ("decimal", 4, 2)
    assert detection.suggested_primary_key == "order_id"
    assert not any("AI" in w for w in detection.warnings)


def test_by_default_no_raw_value_is_sent(fake_openai, orders):
    fake_openai.answer(good_answer())
    detect(LocalFileSource(orders), ai=settings(fake_openai))
    [request] = fake_openai.received
    sent = json.dumps(request.body)
    for raw in ("jane.doe@example.com", "Jane Doe", "123-45-6789", "2024-01-05", "12.50"):
        assert raw not in sent
    payload = request.payload
    assert payload["examplesAreRaw"] is False
    by_name = {c["name"]: c for c in payload["columns"]}
    assert by_name["email"]["examples"][0] == "xxxx.xxx@xxxxxxx.xxx"
    assert by_name["ssn"]["examples"][0] == "999-99-9999"
    assert by_name["ssn"]["semanticType"] == "ssn"
    assert by_name["Order Date"]["type"] == "date"
    assert set(by_name) == {"order_id", "cust_nm", "email", "Order Date", "amount", "ssn"}


def test_raw_examples_are_sent_only_when_allowed(fake_openai, orders):
    fake_openai.answer(good_answer())
    detect(LocalFileSource(orders), ai=settings(fake_openai), allow_sample_values=True)
    [request] = fake_openai.received
    assert request.payload["examplesAreRaw"] is True
    sent = json.dumps(request.body)
    assert "jane.doe@example.com" in sent and "123-45-6789" in sent


def test_primary_key_outside_the_candidates_is_refused_with_a_reason(fake_openai, orders):
    fake_openai.answer(good_answer(suggestedPrimaryKey="amount"))
    detection = detect(LocalFileSource(orders), ai=settings(fake_openai))
    assert detection.suggested_primary_key == "order_id"
    assert detection.suggested_primary_key_source == "heuristic"
    assert any("suggested 'amount' as primary key" in w for w in detection.warnings)


def test_primary_key_among_the_candidates_is_taken(fake_openai, corpus_dir):
    text = "line_no,order_ref,qty\n1,A-1,5\n2,A-2,6\n3,A-3,7\n"
    path = corpus.write(corpus_dir, "lines.csv", text)
    fake_openai.answer(
        {
            "columns": [
                {
                    "name": "order_ref",
                    "description": "d",
                    "semanticType": None,
                    "suggestedName": "x",
                }
            ],
            "suggestedPrimaryKey": "order_ref",
        }
    )
    detection = detect(LocalFileSource(path), ai=settings(fake_openai))
    assert detection.candidate_primary_keys[:2] == ["line_no", "order_ref"]
    assert (detection.suggested_primary_key, detection.suggested_primary_key_source) == (
        "order_ref",
        "ai",
    )


def _assert_heuristic_only(detection, reason: str) -> None:
    assert all(c.description is None for c in detection.columns)
    assert all(c.source == "heuristic" for c in detection.columns)
    assert column(detection, "email").semantic_type == "email"
    [warning] = [w for w in detection.warnings if "AI-assisted detection was skipped" in w]
    assert reason in warning


def test_http_500_is_retried_once_then_warned(fake_openai, orders):
    fake_openai.fail(500, times=2)
    detection = detect(LocalFileSource(orders), ai=settings(fake_openai))
    assert len(fake_openai.received) == 2  # the request and one retry
    _assert_heuristic_only(detection, "answered HTTP 500")


def test_a_slow_answer_times_out(fake_openai, orders):
    fake_openai.slow(2.0, times=2)
    detection = detect(LocalFileSource(orders), ai=settings(fake_openai, timeout=0.3))
    _assert_heuristic_only(detection, "did not answer within 0.3 s")


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (lambda fake: fake.answer("{not json"), "not valid JSON"),
        (lambda fake: fake.raw(b"<html>bad gateway</html>"), "the AI call failed"),
        (
            lambda fake: fake.answer({"columns": []}),  # suggestedPrimaryKey missing
            "does not follow the schema (suggestedPrimaryKey",
        ),
        (
            lambda fake: fake.answer(
                good_answer(columns=[{"name": "email", "description": 3, "semanticType": None}])
            ),
            "does not follow the schema",
        ),
        (
            lambda fake: fake.answer(good_answer(), finish_reason="length"),
            "cut at the token budget",
        ),
        (lambda fake: fake.answer("", refusal="no"), "refused"),
    ],
    ids=["bad-json", "not-json-body", "missing-key", "wrong-types", "truncated", "refusal"],
)
def test_unusable_answers_leave_the_heuristic_result(fake_openai, orders, script, reason):
    script(fake_openai)
    detection = detect(LocalFileSource(orders), ai=settings(fake_openai))
    _assert_heuristic_only(detection, reason)


def test_unreachable_service_is_a_warning(orders):
    closed = AiSettings(api_key=SecretStr("k"), base_url="http://127.0.0.1:9/v1", timeout=2)
    detection = detect(LocalFileSource(orders), ai=closed)
    _assert_heuristic_only(detection, "could not be reached")


def test_columns_sent_are_capped_with_a_warning(fake_openai, corpus_dir):
    path = corpus.wide(corpus_dir, columns=250, rows=3)
    fake_openai.answer({"columns": [], "suggestedPrimaryKey": None})
    detection = detect(LocalFileSource(path), ai=settings(fake_openai, max_tokens=20_000))
    [request] = fake_openai.received
    assert len(request.payload["columns"]) == 200
    assert any("only the first 200 of 250 columns" in w for w in detection.warnings)
    assert column_limit(settings(fake_openai)) == 50  # the default 2,000-token budget


def test_answers_about_unknown_columns_and_bad_names_are_ignored(fake_openai, orders):
    answer = good_answer()
    answer["columns"][1]["suggestedName"] = "Customer Name!"  # not snake_case
    answer["columns"].append(
        {"name": "password", "description": "x", "semanticType": None, "suggestedName": "pw"}
    )
    fake_openai.answer(answer)
    detection = detect(LocalFileSource(orders), ai=settings(fake_openai))
    assert column(detection, "cust_nm").suggested_name is None
    assert column(detection, "cust_nm").semantic_type == "person_name"
    assert any("columns that were not sent ('password')" in w for w in detection.warnings)


def test_without_settings_nothing_is_sent(fake_openai, orders):
    assert ai_settings_from_env({}) is None
    assert ai_settings_from_env({"OPENAI_API_KEY": "  "}) is None
    detection = detect(LocalFileSource(orders), ai=ai_settings_from_env({}))
    assert fake_openai.received == []
    assert all(c.source == "heuristic" for c in detection.columns)


def test_settings_from_the_environment_keep_the_key_secret():
    found = ai_settings_from_env(
        {
            "OPENAI_API_KEY": "sk-canary-123",
            "FLOWFORGE_OPENAI_BASE_URL": "http://llm.internal/v1",
            "FLOWFORGE_OPENAI_MODEL": "gpt-4.1-mini",
        }
    )
    assert found is not None
    assert (found.base_url, found.model, found.timeout, found.max_tokens) == (
        "http://llm.internal/v1",
        "gpt-4.1-mini",
        20,
        2000,
    )
    assert found.api_key.get_secret_value() == "sk-canary-123"
    assert "sk-canary-123" not in repr(found)


def test_mask_keeps_only_the_shape():
    assert mask("Jane.Doe@corp.com") == "Xxxx.Xxx@xxxx.xxx"
    assert mask("+1 (555) 010-0001") == "+9 (999) 999-9999"
    assert len(mask("y" * 100)) == 40
