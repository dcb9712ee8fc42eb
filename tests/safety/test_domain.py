from __future__ import annotations

from safety.domain import domain


def test_english_prose_is_in_distribution():
    assert domain("How do I bake sourdough bread at home without a starter?") is None
    assert domain("Write a short story about a lighthouse keeper.", tokens=12) is None


def test_other_languages_are_out():
    assert domain("Помоги исправить ошибку в запросе") == "non_english"
    assert domain("请帮我把这段话翻译成英文") == "non_english"
    # Latin script, but not English: told by the share of English function words
    assert domain("Kannst du mir erklären, wie ein Hashtable intern funktioniert?") == "non_english"
    assert domain("Peux-tu résumer ce paragraphe en trois phrases pour une présentation client ?") == "non_english"


def test_code_and_structured_data_are_out():
    assert domain('{"service": {"name": "api", "replicas": 3, "ports": [80, 443]}}') == "code_or_data"
    code = (
        "def merge(a, b):\n    out = []\n    while a and b:\n        out.append(a.pop(0))\n    return out\n"
        "Explain the complexity."
    )
    assert domain(code) == "code_or_data"
    csv = "date,region,units\n2024-01-01,north,120\n2024-01-02,south,80\nWhich region sold more?"
    assert domain(csv) == "code_or_data"


def test_long_input_is_out_only_with_its_token_count():
    text = "Tell me about the history of the city and its harbour. " * 30
    assert domain(text) is None
    assert domain(text, tokens=400, max_tokens=128) == "long"
