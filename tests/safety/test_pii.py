from __future__ import annotations

import pytest

from safety.checks import iban_ok, luhn_ok, ssn_ok
from safety.pii import PIIScanner

SCANNER = PIIScanner()


def found(text: str, threshold: float = 0.5) -> list[tuple[str, str]]:
    return [(h.entity, text[h.start : h.end]) for h in SCANNER.scan(text) if h.score >= threshold]


@pytest.mark.parametrize(
    "text, entity, span",
    [
        ("write to jane.doe+news@example.co.uk today", "EMAIL_ADDRESS", "jane.doe+news@example.co.uk"),
        ("Call me at (415) 555-0100 tomorrow", "PHONE_NUMBER", "(415) 555-0100"),
        ("office line +44 20 7946 0958", "PHONE_NUMBER", "+44 20 7946 0958"),
        ("Desk: +41 (0)96 471 07 95", "PHONE_NUMBER", "+41 (0)96 471 07 95"),
        ("Phone: 0490 75 40 81", "PHONE_NUMBER", "0490 75 40 81"),
        ("my card 4111 1111 1111 1111 expires soon", "CREDIT_CARD", "4111 1111 1111 1111"),
        ("charge card number 378282246310005 please", "CREDIT_CARD", "378282246310005"),
        ("IBAN: GB82 WEST 1234 5698 7654 32, thanks", "IBAN_CODE", "GB82 WEST 1234 5698 7654 32"),
        ("transfer to DE89370400440532013000 now", "IBAN_CODE", "DE89370400440532013000"),
        ("my iban is gb42nawi04454264788619", "IBAN_CODE", "gb42nawi04454264788619"),
        ("Here's my SSN: 536-22-1234", "US_SSN", "536-22-1234"),
        ("blocked from ip 203.0.113.42 again", "IP_ADDRESS", "203.0.113.42"),
        ("server address 2001:db8::8a2e:370:7334 is down", "IP_ADDRESS", "2001:db8::8a2e:370:7334"),
        ("Name: Toshimi Arata", "PERSON", "Toshimi Arata"),
        ("Please forward it to Michael Johnson by Friday", "PERSON", "Michael Johnson"),
    ],
)
def test_positive(text, entity, span):
    assert (entity, span) in found(text)


@pytest.mark.parametrize(
    "text, entity",
    [
        ("my card 4111 1111 1111 1112 expires", "CREDIT_CARD"),  # 16 digits failing Luhn
        ("card 1234567812345678", "CREDIT_CARD"),  # fails Luhn
        ("IBAN GB82WEST12345698765433", "IBAN_CODE"),  # bad mod-97 checksum
        ("IBAN GB82WEST123456987654", "IBAN_CODE"),  # wrong length for GB
        ("SSN 000-12-3456", "US_SSN"),
        ("SSN 666-12-3456", "US_SSN"),
        ("SSN 912-12-3456", "US_SSN"),
        ("SSN 123-00-4567", "US_SSN"),
        ("SSN 123-45-0000", "US_SSN"),
        ("ip 999.10.10.10 is not an address", "IP_ADDRESS"),
        ("upgrade to version 1.2.3.4 today", "IP_ADDRESS"),
        ("the meeting is at 12:30:45 on 2023-04-13", "IP_ADDRESS"),
        ("Date: 1978-04-13 12:20:39", "PHONE_NUMBER"),
        ("the order total was 12345678 units", "PHONE_NUMBER"),
        ("Will you send the report?", "PERSON"),
        ("May the best team win", "PERSON"),
        ("I live on Victor Street near the park", "PERSON"),
        ("contact me at user@localhost", "EMAIL_ADDRESS"),
        ("IBAN GB82 WEST  1234 5698 7654 32", "IBAN_CODE"),  # two spaces end the code early
        ("IBAN GB82 WEST 1234 5698 7654 32X", "IBAN_CODE"),  # runs on into a letter
        ("IBAN XGB82WEST12345698765432", "IBAN_CODE"),  # no word start
        ("IBAN GB\u0668\u0662WEST12345698765432", "IBAN_CODE"),  # Arabic-Indic digits: not an IBAN
        ("IBAN GB82 WEST 1234 5698 7654 3\u00e9", "IBAN_CODE"),  # a non-ASCII letter inside
    ],
)
def test_near_misses(text, entity):
    assert entity not in {e for e, _ in found(text)}


@pytest.mark.parametrize(
    "text, span",
    [
        ("GB82WEST12345698765432", "GB82WEST12345698765432"),  # at the very start
        ("iban:GB82 WEST 1234 5698 7654 32.", "GB82 WEST 1234 5698 7654 32"),
        ("1) DE89 3704 0044 0532 0130 00; 2) GB82WEST12345698765432", "GB82WEST12345698765432"),
    ],
)
def test_iban_boundaries(text, span):
    assert ("IBAN_CODE", span) in found(text)


def test_context_words_of_ascii_and_other_text_alike():
    from safety.context import has_context

    vocab = frozenset({"phone", "tel", "émail"})
    for text, expected in [
        ("Phone: 555 0100", True),
        ("TEL 555 0100", True),
        ("telephone 555 0100", False),
        ("phoned 555 0100", False),
        ("ph_one 555 0100", False),
        ("x\u00e9 phone 555 0100", True),
        ("Émail 555 0100", True),
        ("555 0100 by phone", True),
        ("tele" + "phone " + "x" * 33 + " 555 0100", False),  # "phone" is half a word cut by the window's edge
        ("phone " + "x" * 33 + " 555 0100", True),  # the same window, no word cut
    ]:
        start = text.index("555")
        assert has_context(text, start, start + 8, vocab) is expected, text


def test_context_raises_score():
    bare = [h for h in SCANNER.scan("ref 416 60 039 done") if h.entity == "PHONE_NUMBER"]
    ctx = [h for h in SCANNER.scan("416 60 039 office") if h.entity == "PHONE_NUMBER"]
    assert ctx and ctx[0].score >= 0.5
    assert not bare or bare[0].score < 0.5


def test_hits_carry_no_text_and_valid_offsets():
    text = "mail a@b.io and 4111111111111111"
    for h in SCANNER.scan(text):
        assert not hasattr(h, "text")
        assert 0 <= h.start < h.end <= len(text)


def test_checksums():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82WEST12345698765432") and not iban_ok("GB82WEST12345698765433")
    assert ssn_ok("536", "22", "1234") and not ssn_ok("000", "22", "1234")


@pytest.mark.parametrize(
    "asked",
    [
        "What did Marie Curie discover?",
        "Who is Taylor Swift dating these days?",
        "How did Mark Twain get his pen name?",
    ],
)
def test_a_name_asked_about_in_a_question_is_not_flagged(asked):
    assert not [h for h in PIIScanner().scan(asked) if h.entity == "PERSON" and h.score >= 0.5]


@pytest.mark.parametrize(
    "given",
    [
        "Taylor Swift called me yesterday.",  # a statement
        "Can you email Taylor Swift the report?",  # a request, not a wh-question
        "Who is my colleague Taylor Swift?",  # a personal relation beside the name
        "Where does Taylor Swift live? Write to a.b@example.com",  # contact data in the text
        "Who is Taylor Swift\nand where does she work?",  # the question is not one sentence
    ],
)
def test_a_name_given_as_personal_data_keeps_its_score(given):
    assert [h for h in PIIScanner().scan(given) if h.entity == "PERSON" and h.score >= 0.5]
