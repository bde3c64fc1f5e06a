"""What a column means: semantic tags (and so PII), snake_case names, primary-key candidates.

Tags come from the column name, the values, or both, in this order (first match wins):

- from the name: ``ssn_last4`` (ssn + last4, four digits), ``date_of_birth`` (dob,
  birth_date, ... on a date), ``person_name`` (first/last/full/customer... name),
  ``account_number`` (account/acct number, iban), ``postal_code`` (zip, postcode, ...);
- from the values (90 % of the distinct values sampled): ``email``, ``ssn``
  (``123-45-6789``), ``card_number`` (13-19 digits passing the Luhn check), ``phone``
  (or a phone/mobile/tel name);
- codes: ``country_code`` (ISO 3166 alpha-2) and ``state_code`` (US states, Canadian
  provinces), by name, or by values when they fit one list and not the other;
- ``currency_amount``: a decimal written with a currency symbol, or a number named like an
  amount (amount, price, total, balance, ...).

PII tags are listed in :data:`~flowforge_rules.csv.columns.PII_TYPES`.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from flowforge_rules.csv.inference import TypeGuess

_SHARE = 0.9
_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_SSN = re.compile(r"^\d{3}-\d{2}-\d{4}$")
_PHONE = re.compile(r"^(?=(?:\D*\d){7,15}\D*$)\+?[\d\s().-]*[\s().+-][\d\s().-]*\d$")
_CARD = re.compile(r"^\d(?:[ -]?\d){12,18}$")
_US_ZIP = re.compile(r"^\d{5}(-\d{4})?$")
_POSTCODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]{1,8}[A-Za-z0-9]$")
_ACCOUNT_VALUE = re.compile(r"^(?=.*\d)[A-Za-z0-9 -]{4,34}$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

COUNTRY_CODES = frozenset(
    """AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO
    BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK
    DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR
    GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM
    KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP
    MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL
    PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST
    SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UK UM US UY UZ VA VC VE
    VG VI VN VU WF WS YE YT ZA ZM ZW""".split()
)
STATE_CODES = frozenset(
    """AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH
    NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR GU VI AS MP AB BC MB
    NB NL NS NT NU ON PE QC SK YT""".split()
)

_FIRST_NAME = {"first_name", "firstname", "given_name", "fname", "forename"}
_LAST_NAME = {"last_name", "lastname", "surname", "family_name", "lname"}
_PERSON_PREFIXES = {
    "full",
    "customer",
    "contact",
    "person",
    "employee",
    "client",
    "patient",
    "member",
    "owner",
    "holder",
    "cardholder",
    "account_holder",
    "user",
    "display",
}
_BIRTH = {"dob", "date_of_birth", "birth_date", "birthdate", "birthday", "dateofbirth", "born_on"}
_ACCOUNT = {
    "account_number",
    "account_no",
    "account_num",
    "acct_number",
    "acct_no",
    "acct_num",
    "acct",
    "iban",
    "bank_account",
    "bank_account_number",
    "account",
}
_POSTAL = {"zip", "zipcode", "zip_code", "postal_code", "postcode", "post_code", "postal", "zip5"}
_PHONE_WORDS = {"phone", "mobile", "tel", "telephone", "fax", "cell", "msisdn"}
_AMOUNT_WORDS = {
    "amount",
    "amt",
    "price",
    "cost",
    "total",
    "subtotal",
    "balance",
    "salary",
    "revenue",
    "fee",
    "fees",
    "payment",
    "charge",
    "tax",
    "discount",
    "spend",
    "income",
}
_STRONG_AMOUNT_WORDS = {"amount", "amt", "price", "cost", "salary", "balance", "fee", "payment"}
_KEY_SUFFIXES = ("id", "uuid", "guid", "key")
_CODE_SUFFIXES = ("code", "number", "no", "num", "ref", "reference")


@dataclass(frozen=True)
class KeyCandidate:
    name: str
    type: str
    scale: int | None
    unique: bool
    non_null: bool
    rows: int


_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")
_NOT_SNAKE = re.compile(r"[^0-9a-z]+")


@functools.lru_cache(maxsize=1 << 16)  # each name is asked twice (semantics, suggested name)
def snake_case(name: str) -> str:
    """``Customer Name`` -> ``customer_name``, ``customerId`` -> ``customer_id``,
    ``Prénom`` -> ``prenom``; a name starting with a digit gets a ``col_`` prefix."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    folded = _CAMEL.sub(r"\1_\2", folded.strip())
    folded = _ACRONYM.sub(r"\1_\2", folded)
    result = _NOT_SNAKE.sub("_", folded.lower()).strip("_")
    if result and result[0].isdigit():
        result = "col_" + result
    return result[:128]


def suggested_names(names: Sequence[str]) -> list[str | None]:
    """For each column, the snake_case name to load it as, or None when its name already is
    one. Collisions get ``_2``, ``_3``..."""
    taken: set[str] = set()
    next_suffix: dict[str, int] = {}  # resume where the last collision of a base stopped
    result: list[str | None] = []
    for index, name in enumerate(names, 1):
        base = snake_case(name) or f"column_{index}"
        candidate = base
        if candidate in taken:
            suffix = next_suffix.get(base, 2)
            candidate = f"{base}_{suffix}"
            while candidate in taken:
                suffix += 1
                candidate = f"{base}_{suffix}"
            next_suffix[base] = suffix + 1
        taken.add(candidate)
        result.append(None if candidate == name else candidate)
    return result


def is_identifier(name: str) -> bool:
    return bool(_IDENTIFIER.match(name)) and len(name) <= 128


def semantic_type(name: str, guess: TypeGuess, values: Sequence[str]) -> str | None:
    """The semantic tag of a column named ``name`` of type ``guess`` with distinct
    non-null sample ``values``, or None."""
    snake = snake_case(name)
    words = set(snake.split("_"))
    column_type = guess.type
    if ("ssn" in words or "social" in words) and ({"last4", "l4"} & words or "last_4" in snake):
        if values and all(re.fullmatch(r"\d{4}", v) for v in values):
            return "ssn_last4"
    if (snake in _BIRTH or "birth" in words) and column_type in ("date", "timestamp", "string"):
        return "date_of_birth"
    if _is_person_name(snake):
        return "person_name"
    if (snake in _ACCOUNT and snake not in {"account", "acct"}) or (
        {"account", "acct"} & words and {"number", "no", "num"} & words
    ):
        return "account_number"
    if snake in {"account", "acct"} and _share(values, lambda v: bool(_ACCOUNT_VALUE.match(v))):
        return "account_number"  # a bare "account" may hold names: only when digits say so
    if (snake in _POSTAL or "zip" in words or "postcode" in words) and _share(
        values, lambda v: bool(_US_ZIP.match(v) or _POSTCODE.match(v))
    ):
        return "postal_code"
    if not values:
        return None
    if _share(values, lambda v: bool(_EMAIL.match(v))):
        return "email"
    if _share(values, lambda v: bool(_SSN.match(v))) or (
        snake in {"ssn", "social_security_number", "social_security_no"}
        and _share(values, lambda v: bool(re.fullmatch(r"\d{9}|\d{3}-\d{2}-\d{4}", v)))
    ):
        return "ssn"
    if _share(values, lambda v: bool(_CARD.match(v)) and _luhn(v)):
        return "card_number"
    if column_type in ("string", "integer") and (
        words & _PHONE_WORDS or _share(values, lambda v: bool(_PHONE.match(v)))
    ):
        return "phone"
    code = _code(words, values)
    if code:
        return code
    if guess.number_format is not None and guess.number_format.currency_symbol:
        return "currency_amount"
    if column_type in ("decimal", "float") and words & _AMOUNT_WORDS:
        return "currency_amount"
    if column_type == "integer" and words & _STRONG_AMOUNT_WORDS:
        return "currency_amount"
    return None


def primary_key_candidates(columns: Sequence[KeyCandidate]) -> tuple[list[str], str | None]:
    """(columns unique and non-null in the sample, best first; the one to suggest or None).

    Only integer, string and scale-0 decimal columns qualify; key-like names come first
    (``id``, then ``*_id``/``*_key``/``*_uuid``, then ``*_code``/``*_number``). A column
    is suggested only when its name says it is a key: uniqueness in a sample is weak
    evidence on its own.
    """
    ranked = [
        (_key_rank(column.name), index, column.name)
        for index, column in enumerate(columns)
        if column.unique
        and column.non_null
        and column.rows >= 2
        and column.type in _KEY_TYPES
        and not column.scale
    ]
    ranked.sort()
    names = [name for _, _, name in ranked]
    suggested = names[0] if ranked and ranked[0][0] < 3 else None
    return names, suggested


_KEY_TYPES = ("integer", "string", "decimal")


def _key_rank(name: str) -> int:
    snake = snake_case(name)
    words = snake.split("_")
    if snake == "id":
        return 0
    if words[-1] in _KEY_SUFFIXES or words[0] == "id":
        return 1
    if words[-1] in _CODE_SUFFIXES:
        return 2
    return 3


def _is_person_name(snake: str) -> bool:
    if snake in _FIRST_NAME or snake in _LAST_NAME or snake in {"full_name", "fullname"}:
        return True
    if snake.endswith("_name"):
        return snake.removesuffix("_name") in _PERSON_PREFIXES
    return False


def _code(words: set[str], values: Sequence[str]) -> str | None:
    upper = {v.strip().upper() for v in values}
    if not upper or any(len(v) != 2 or not v.isalpha() for v in upper):
        return None
    in_countries, in_states = upper <= COUNTRY_CODES, upper <= STATE_CODES
    if in_countries and "country" in words:
        return "country_code"
    if in_states and words & {"state", "province", "region", "st"}:
        return "state_code"
    if len(upper) >= 5:
        if in_countries and not in_states:
            return "country_code"
        if in_states and not in_countries:
            return "state_code"
    return None


def _share(values: Sequence[str], test) -> bool:
    if not values:
        return False
    return sum(1 for value in values if test(value)) >= _SHARE * len(values)


def _luhn(value: str) -> bool:
    digits = [int(char) for char in value if char.isdigit()]
    total = 0
    for index, digit in enumerate(reversed(digits)):
        if index % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0
