"""The BFSI Customer 360 demo data: one seeded generator, five renderings of the same rows.

:func:`rows` builds every row once, in memory, from a fixed seed: core-banking ``customers``,
``accounts`` and ``transactions`` and a CRM export. :func:`generate` renders those rows as a
T-SQL script (SQL Server), a PostgreSQL script, a MySQL/MariaDB script, an SQLite database
and ``crm_customers.csv`` — so every output holds the same values, and tests and the demo can
compute expected answers from :func:`rows` without reading any output. :func:`apply_changes`
is the demo's second act: one customer changes e-mail and one transaction arrives, both with
a ``modified_date`` later than anything generated, in the SQLite copy.

The data is realistic on purpose, dirt included. Every kind of dirt has an exact count per
scale unit (:data:`DIRT`, :data:`PHONE_FORMATS`, :data:`ACCOUNT_STATUSES`), placed at random
positions but never left to chance in number; demo-data/README.md documents the same numbers
and a test keeps the two in step. Money is :class:`~decimal.Decimal` with two places from
start to finish (floats only ever pick a random number of cents). Every generated date and
``modified_date`` lies before :data:`AS_OF`; the second act happens at :data:`SECOND_ACT_AT`.

Each table draws from its own random stream (``Random("<seed>/<table>")``, hashed with
SHA-512, so independent of ``PYTHONHASHSEED``), so a change to one table's generator leaves
the others' rows as they were.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import sqlite3
import sys
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import NamedTuple

DEFAULT_SEED = 20240601
AS_OF = datetime(2024, 6, 1)  # every generated date and modified_date is earlier
SECOND_ACT_AT = datetime(2024, 6, 2, 9, 30, 15, 123457)  # what apply_changes stamps
INSERT_BATCH = 1000  # SQL Server refuses more than 1000 rows in one VALUES list

BASE_COUNTS = {"customers": 500, "accounts": 750, "transactions": 5000, "crm_customers": 500}

# The deliberate dirt, per scale unit (multiplied by --scale). README.md repeats these.
DIRT = {
    "customers_messy_names_emails": 10,  # odd casing + surrounding whitespace, names and email
    "customers_null_email": 12,
    "customers_null_phone": 8,
    "credit_accounts_null_limit": 3,
    "closed_accounts_with_balance": 2,
    "crm_duplicate_rows": 6,  # a second CRM row for a customer, casing/whitespace differing
    "crm_unknown_customers": 6,  # customer_ids that core banking does not have
    "crm_never_contacted": 9,  # empty last_contact_date
}
# Phone numbers of the non-null rows, per format (area code 212 as the example).
PHONE_FORMATS = {
    "(212) 555-0147": 200,
    "212-555-0147": 150,
    "212.555.0147": 60,
    "+1 212 555 0147": 40,
    "2125550147": 42,
}
ACCOUNT_STATUSES = {"active": 660, "dormant": 40, "closed": 38, "frozen": 12}

CUSTOMER_ID_BASE, ACCOUNT_ID_BASE, TRANSACTION_ID_BASE = 10_000, 200_000, 5_000_000
EMAIL_DOMAINS = ("example.com", "example.net", "mail.example.com", "inbox.example.net")
NEW_EMAIL_DOMAIN = "example.org"  # never generated: the second act's address is always new


class DemoDataError(Exception):
    """A demo-data file is missing or not in the state the operation needs."""


# --- the rows ------------------------------------------------------------------------------


class Customer(NamedTuple):
    customer_id: int
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    dob: date
    ssn_last4: str
    address: str
    city: str
    state: str
    zip: str
    account_open_date: date
    customer_segment: str
    modified_date: datetime


class Account(NamedTuple):
    account_id: int
    customer_id: int
    account_type: str
    balance: Decimal
    credit_limit: Decimal | None
    open_date: date
    status: str
    modified_date: datetime


class Transaction(NamedTuple):
    transaction_id: int
    account_id: int
    amount: Decimal
    transaction_date: datetime
    type: str
    merchant: str | None
    category: str
    status: str
    modified_date: datetime


class CrmCustomer(NamedTuple):
    customer_id: int
    crm_id: str
    preferred_contact_method: str
    marketing_opt_in: bool
    loyalty_tier: str
    lifetime_value: Decimal
    last_contact_date: date | None
    assigned_rep: str


@dataclass(frozen=True)
class DemoRows:
    """Every row of the demo data set, as generated; outputs are renderings of these."""

    scale: int
    seed: int
    customers: tuple[Customer, ...]
    accounts: tuple[Account, ...]
    transactions: tuple[Transaction, ...]
    crm: tuple[CrmCustomer, ...]

    def counts(self) -> dict[str, int]:
        return {
            "customers": len(self.customers),
            "accounts": len(self.accounts),
            "transactions": len(self.transactions),
            "crm_customers": len(self.crm),
        }


@dataclass(frozen=True)
class GeneratedFiles:
    """The files :func:`generate` wrote and how many rows each table has."""

    out_dir: Path
    tsql: Path
    postgres: Path
    mysql: Path
    sqlite: Path
    crm_csv: Path
    counts: dict[str, int]

    def paths(self) -> tuple[Path, ...]:
        return (self.tsql, self.postgres, self.mysql, self.sqlite, self.crm_csv)


@dataclass(frozen=True)
class ChangeSet:
    """What :func:`apply_changes` changed: one customer's e-mail, one new transaction."""

    customer_id: int
    old_email: str | None
    new_email: str
    customer_modified_date: datetime
    transaction: Transaction


# --- vocabularies --------------------------------------------------------------------------

FIRST_NAMES = (
    "James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara "
    "Richard Susan Joseph Jessica Thomas Sarah Christopher Karen Charles Lisa Daniel Nancy "
    "Matthew Betty Anthony Sandra Mark Ashley Steven Kimberly Andrew Emily Joshua Donna Kevin "
    "Michelle Brian Carol Emma Olivia Liam Noah Sophia Ava Mia Ethan Isabella Lucas José Sofía "
    "Zoë Renée Chloé André Wei Priya Aisha Mohammed Hiroshi Mei Raj Fatima DeShawn Keisha "
    "Jamal Aaliyah Jean-Luc Siobhan Bjørn"
).split()
LAST_NAMES = (
    "Smith|Johnson|Williams|Brown|Jones|Garcia|Miller|Davis|Rodriguez|Martinez|Hernandez|Lopez|"
    "Gonzalez|Wilson|Anderson|Thomas|Taylor|Moore|Jackson|Martin|Lee|Perez|Thompson|White|"
    "Harris|Sanchez|Clark|Ramirez|Lewis|Robinson|Walker|Young|Allen|King|Wright|Scott|Torres|"
    "Nguyen|Hill|Flores|Green|Adams|Nelson|Baker|Hall|Rivera|Campbell|Mitchell|Carter|Roberts|"
    "O'Brien|O'Connor|D'Angelo|McDonald|MacLeod|Van der Berg|De la Cruz|Núñez|Peña|Müller|"
    "Kowalski|Patel|Shah|Kim|Park|Chen|Wang|Singh|Okafor|Johansson|Smith-Jones|St. John"
).split("|")
# (city, state, ZIP codes, area codes): real places, real ZIPs, real area codes.
CITIES = (
    ("New York", "NY", ("10001", "10011", "10025"), ("212", "646", "917")),
    ("Brooklyn", "NY", ("11201", "11215"), ("718", "347")),
    ("Boston", "MA", ("02108", "02116", "02134"), ("617", "857")),
    ("Cambridge", "MA", ("02138", "02139"), ("617",)),
    ("Philadelphia", "PA", ("19103", "19104"), ("215", "267")),
    ("Pittsburgh", "PA", ("15213", "15222"), ("412",)),
    ("Newark", "NJ", ("07102", "07105"), ("973",)),
    ("Jersey City", "NJ", ("07302", "07306"), ("201",)),
    ("Hartford", "CT", ("06103",), ("860",)),
    ("Providence", "RI", ("02903",), ("401",)),
    ("Baltimore", "MD", ("21201", "21230"), ("410", "443")),
    ("Washington", "DC", ("20001", "20009"), ("202",)),
    ("Richmond", "VA", ("23219",), ("804",)),
    ("Charlotte", "NC", ("28202", "28205"), ("704", "980")),
    ("Raleigh", "NC", ("27601", "27606"), ("919",)),
    ("Atlanta", "GA", ("30303", "30309"), ("404", "470", "678")),
    ("Miami", "FL", ("33130", "33131"), ("305", "786")),
    ("Tampa", "FL", ("33602", "33606"), ("813",)),
    ("Orlando", "FL", ("32801",), ("407",)),
    ("Nashville", "TN", ("37203",), ("615",)),
    ("Chicago", "IL", ("60601", "60614", "60657"), ("312", "773", "872")),
    ("Detroit", "MI", ("48201", "48226"), ("313",)),
    ("Columbus", "OH", ("43215",), ("614",)),
    ("Cleveland", "OH", ("44113",), ("216",)),
    ("Minneapolis", "MN", ("55401", "55408"), ("612",)),
    ("St. Louis", "MO", ("63101",), ("314",)),
    ("Kansas City", "MO", ("64105",), ("816",)),
    ("Milwaukee", "WI", ("53202",), ("414",)),
    ("Dallas", "TX", ("75201", "75204"), ("214", "469", "972")),
    ("Houston", "TX", ("77002", "77006"), ("713", "281", "832")),
    ("Austin", "TX", ("78701", "78704"), ("512", "737")),
    ("San Antonio", "TX", ("78205",), ("210",)),
    ("Denver", "CO", ("80202", "80205"), ("303", "720")),
    ("Phoenix", "AZ", ("85004", "85016"), ("602", "480")),
    ("Salt Lake City", "UT", ("84101",), ("801",)),
    ("Las Vegas", "NV", ("89101",), ("702",)),
    ("Los Angeles", "CA", ("90012", "90026"), ("213", "323")),
    ("San Francisco", "CA", ("94103", "94110"), ("415", "628")),
    ("San Diego", "CA", ("92101",), ("619", "858")),
    ("San Jose", "CA", ("95112",), ("408", "669")),
    ("Sacramento", "CA", ("95814",), ("916",)),
    ("Seattle", "WA", ("98101", "98122"), ("206",)),
    ("Portland", "OR", ("97205", "97209"), ("503", "971")),
    ("Honolulu", "HI", ("96813",), ("808",)),
    ("Anchorage", "AK", ("99501",), ("907",)),
    ("Albuquerque", "NM", ("87102",), ("505",)),
    ("New Orleans", "LA", ("70112", "70130"), ("504",)),
    ("Coeur d'Alene", "ID", ("83814",), ("208",)),
)
STREETS = (
    "Main|Oak|Maple|Cedar|Elm|Pine|Washington|Lake|Hill|Park|Sunset|Lincoln|Jefferson|Madison|"
    "Franklin|Highland|Church|River|Spring|Ridge|Chestnut|Walnut|Willow|Meadow|Forest|"
    "Martin Luther King Jr|O'Farrell|Peachtree|Broadway|Market"
).split("|")
STREET_SUFFIXES = ("St", "Ave", "Blvd", "Rd", "Ln", "Dr", "Ct", "Way", "Pl", "Ter")
SEGMENTS = {"Retail": 70, "Premier": 18, "Small Business": 8, "Private Banking": 4}
SEGMENT_WEALTH = {"Retail": 1, "Premier": 4, "Small Business": 3, "Private Banking": 20}
LOYALTY_TIERS = {  # tier weights per segment
    "Retail": {"Bronze": 50, "Silver": 35, "Gold": 13, "Platinum": 2},
    "Premier": {"Silver": 30, "Gold": 50, "Platinum": 20},
    "Small Business": {"Bronze": 30, "Silver": 40, "Gold": 25, "Platinum": 5},
    "Private Banking": {"Gold": 30, "Platinum": 70},
}
LIFETIME_VALUE_CENTS = {  # (low, high) per segment
    "Retail": (200_00, 15_000_00),
    "Premier": (10_000_00, 80_000_00),
    "Small Business": (5_000_00, 120_000_00),
    "Private Banking": (100_000_00, 900_000_00),
}
CONTACT_METHODS = {"Email": 45, "Phone": 25, "SMS": 20, "Mail": 10}
REPS = (
    "Maria Lopez|James O'Neill|Priya Raman|David Chen|Ashley Brooks|Marcus Johnson|"
    "Elena Petrova|Kevin Walsh|Tanya Brooks-Miller|Samuel Adeyemi|Grace Kim|Luis Ortega"
).split("|")
# (merchant, category, lowest and highest amount in cents)
MERCHANTS = (
    ("Whole Foods Market", "groceries", 12_00, 280_00),
    ("Trader Joe's", "groceries", 8_00, 160_00),
    ("Kroger", "groceries", 5_00, 220_00),
    ("Safeway", "groceries", 5_00, 200_00),
    ("Costco Wholesale", "groceries", 25_00, 600_00),
    ("Shell", "fuel", 20_00, 110_00),
    ("Chevron", "fuel", 20_00, 110_00),
    ("ExxonMobil", "fuel", 20_00, 110_00),
    ("Starbucks", "dining", 3_50, 28_00),
    ("Chipotle Mexican Grill", "dining", 9_00, 45_00),
    ("McDonald's", "dining", 4_00, 30_00),
    ("The Cheesecake Factory", "dining", 25_00, 180_00),
    ("Café Du Monde", "dining", 6_00, 35_00),
    ("Amazon.com", "online_shopping", 5_99, 450_00),
    ("AMZN Mktp US*2K4LM0", "online_shopping", 5_99, 250_00),
    ("eBay", "online_shopping", 4_99, 600_00),
    ("Target", "retail", 5_00, 250_00),
    ("Walmart Supercenter", "retail", 5_00, 300_00),
    ("Macy's", "retail", 15_00, 400_00),
    ("Best Buy", "electronics", 19_99, 2_200_00),
    ("Apple Store", "electronics", 99, 2_500_00),
    ("The Home Depot", "home_improvement", 8_00, 1_500_00),
    ("Lowe's", "home_improvement", 8_00, 1_200_00),
    ("Delta Air Lines", "travel", 89_00, 1_800_00),
    ("United Airlines", "travel", 89_00, 1_800_00),
    ("Marriott Hotels", "travel", 120_00, 950_00),
    ("Hilton", "travel", 110_00, 900_00),
    ("Uber", "transportation", 7_00, 85_00),
    ("Lyft", "transportation", 7_00, 80_00),
    ("Netflix", "subscriptions", 6_99, 22_99),
    ("Spotify", "subscriptions", 10_99, 16_99),
    ("Comcast Xfinity", "utilities", 45_00, 250_00),
    ("Con Edison", "utilities", 30_00, 300_00),
    ("Verizon Wireless", "utilities", 35_00, 280_00),
    ("CVS Pharmacy", "healthcare", 4_00, 90_00),
    ("Walgreens", "healthcare", 4_00, 90_00),
    ("Planet Fitness", "fitness", 10_00, 25_00),
)
# Transaction types per account type, with weights; and the category of non-merchant types.
TRANSACTION_TYPES = {
    "checking": {"purchase": 60, "withdrawal": 10, "deposit": 15, "transfer": 10, "fee": 5},
    "savings": {"deposit": 45, "transfer": 35, "withdrawal": 10, "interest": 10},
    "credit": {"purchase": 80, "payment": 10, "refund": 5, "fee": 3, "interest": 2},
}
NON_MERCHANT_CATEGORY = {
    "withdrawal": "cash",
    "deposit": "income",
    "transfer": "transfer",
    "fee": "fees",
    "interest": "interest",
    "payment": "payment",
}
TRANSACTION_STATUSES = {"posted": 92, "pending": 4, "declined": 3, "reversed": 1}


# --- generation ----------------------------------------------------------------------------


def rows(scale: int = 1, seed: int = DEFAULT_SEED) -> DemoRows:
    """Every row of the data set for ``scale`` (row counts and dirt multiplied) and ``seed``.

    The same arguments give the same rows on every machine and every run."""
    _check_scale(scale)
    customers = _customers(random.Random(f"{seed}/customers"), scale)
    accounts = _accounts(random.Random(f"{seed}/accounts"), customers, scale)
    transactions = _transactions(random.Random(f"{seed}/transactions"), accounts, scale)
    crm = _crm(random.Random(f"{seed}/crm"), customers, scale)
    return DemoRows(scale, seed, customers, accounts, transactions, crm)


def _check_scale(scale: int) -> None:
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be a whole number of at least 1, not {scale!r}")


def _weighted(rng: random.Random, weights: dict[str, int]) -> str:
    return rng.choices(tuple(weights), tuple(weights.values()))[0]


def _cents(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2)  # exactly two places: 100 -> 1.00


def _skewed_cents(rng: random.Random, low: int, high: int) -> Decimal:
    # Squaring a uniform number favours small amounts, as real spending does.
    return _cents(low + int((high - low) * rng.random() ** 2))


def _random_date(rng: random.Random, first: date, last: date) -> date:
    return first + timedelta(days=rng.randint(0, max(0, (last - first).days)))


def _random_moment(rng: random.Random, first: datetime, last: datetime) -> datetime:
    """A moment in [first, last) with microseconds, so cursors must keep sub-second digits."""
    seconds = max(1, int((last - first).total_seconds()))
    return first + timedelta(seconds=rng.randrange(seconds), microseconds=rng.randrange(10**6))


def _plus_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year without one
        return day.replace(year=day.year + years, day=28)


def _ascii_fold(text: str) -> str:
    """'Núñez' -> 'nunez', "O'Brien" -> 'obrien': what people type into e-mail addresses."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(char for char in plain.lower() if char.isalnum())


def _email(rng: random.Random, first: str, last: str) -> str:
    first, last = _ascii_fold(first), _ascii_fold(last)
    local = rng.choice(
        (
            f"{first}.{last}",
            f"{first}{last}",
            f"{first[0]}.{last}",
            f"{first}_{last}",
            f"{first}.{last}{rng.randint(1, 99)}",
            f"{last}.{first}",
        )
    )
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def _phone(rng: random.Random, area_code: str, example_format: str) -> str:
    line = f"{rng.randint(100, 199):04d}"  # 555-0100..0199: reserved for fiction
    return example_format.replace("212", area_code, 1).replace("0147", line, 1)


def _shuffled(rng: random.Random, counts: dict[str, int], scale: int) -> list[str]:
    """Exactly ``count * scale`` of each value, in random order."""
    values = [value for value, count in counts.items() for _ in range(count * scale)]
    rng.shuffle(values)
    return values


def _messy(rng: random.Random, text: str) -> str:
    """The same text as a careless channel enters it: odd casing, stray whitespace."""
    return rng.choice(
        (f"  {text.upper()}", f"{text.lower()} ", f" {text.upper()} ", f"{text.lower()}  ")
    )


def _customers(rng: random.Random, scale: int) -> tuple[Customer, ...]:
    n = BASE_COUNTS["customers"] * scale
    messy_count = DIRT["customers_messy_names_emails"] * scale
    null_email_count = DIRT["customers_null_email"] * scale
    picked = rng.sample(range(n), messy_count + null_email_count)
    messy, null_email = set(picked[:messy_count]), set(picked[messy_count:])
    phone_formats: list[str | None] = list(_shuffled(rng, PHONE_FORMATS, scale))
    phone_formats += [None] * (DIRT["customers_null_phone"] * scale)
    rng.shuffle(phone_formats)
    assert len(phone_formats) == n, "PHONE_FORMATS and the null phones must add up to customers"

    customers = []
    for index in range(n):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        city, state, zips, area_codes = rng.choice(CITIES)
        dob = AS_OF.date() - timedelta(days=rng.randint(18 * 365 + 30, 88 * 365))
        earliest_open = max(date(2005, 1, 1), _plus_years(dob, 18))
        opened = _random_date(rng, earliest_open, AS_OF.date() - timedelta(days=60))
        email = _email(rng, first, last)
        fmt = phone_formats[index]
        phone = None if fmt is None else _phone(rng, rng.choice(area_codes), fmt)
        street = f"{rng.randint(1, 9899)} {rng.choice(STREETS)} {rng.choice(STREET_SUFFIXES)}"
        if rng.random() < 0.2:
            street += f", Apt {rng.randint(1, 30)}{rng.choice('ABCDEF')}"
        if index in messy:
            first, last = _messy(rng, first), _messy(rng, last)
            email = _messy(rng, email)
        elif index in null_email:
            email = None
        customers.append(
            Customer(
                customer_id=CUSTOMER_ID_BASE + index + 1,
                first_name=first,
                last_name=last,
                email=email,
                phone=phone,
                dob=dob,
                ssn_last4=f"{rng.randint(0, 9999):04d}",
                address=street,
                city=city,
                state=state,
                zip=rng.choice(zips),
                account_open_date=opened,
                customer_segment=_weighted(rng, SEGMENTS),
                modified_date=_random_moment(
                    rng, datetime.combine(opened, datetime.min.time()), AS_OF
                ),
            )
        )
    return tuple(customers)


def _accounts(rng: random.Random, customers: Sequence[Customer], scale: int) -> tuple[Account, ...]:
    n = BASE_COUNTS["accounts"] * scale
    # Every customer has a first account opened the day the relationship began; the rest
    # are second and third accounts of random customers, opened later.
    owners = list(customers) + [rng.choice(customers) for _ in range(n - len(customers))]
    statuses = _shuffled(rng, ACCOUNT_STATUSES, scale)
    assert len(statuses) == n, "ACCOUNT_STATUSES must add up to the accounts"
    drafts = []
    for index, owner in enumerate(owners):
        first_account = index < len(customers)
        if first_account:
            kind = _weighted(rng, {"checking": 70, "savings": 15, "credit": 15})
            opened = owner.account_open_date
        else:
            kind = _weighted(rng, {"checking": 15, "savings": 45, "credit": 40})
            opened = _random_date(rng, owner.account_open_date, AS_OF.date() - timedelta(days=30))
        drafts.append((opened, owner, kind, statuses[index]))
    # Account numbers are handed out in the order accounts were opened.
    drafts.sort(key=lambda draft: (draft[0], draft[1].customer_id))

    accounts = []
    for index, (opened, owner, kind, status) in enumerate(drafts):
        wealth = SEGMENT_WEALTH[owner.customer_segment]
        credit_limit = None
        if kind == "credit":
            credit_limit = _cents(rng.choice(range(500, 25_001, 500)) * 100 * min(wealth, 4))
            balance = _cents(int(rng.random() * 0.6 * int(credit_limit * 100)))
        elif kind == "checking":
            balance = _cents(int(rng.lognormvariate(7.6, 1.0) * 100 * wealth))
        else:
            balance = _cents(int(rng.lognormvariate(9.2, 1.1) * 100 * wealth))
        if status == "closed":
            balance = _cents(0)
        accounts.append(
            Account(
                account_id=ACCOUNT_ID_BASE + index + 1,
                customer_id=owner.customer_id,
                account_type=kind,
                balance=balance,
                credit_limit=credit_limit,
                open_date=opened,
                status=status,
                modified_date=_random_moment(
                    rng, datetime.combine(opened, datetime.min.time()), AS_OF
                ),
            )
        )
    return _account_dirt(rng, accounts, scale)


def _account_dirt(rng: random.Random, accounts: list[Account], scale: int) -> tuple[Account, ...]:
    credit = [i for i, account in enumerate(accounts) if account.account_type == "credit"]
    closed = [i for i, account in enumerate(accounts) if account.status == "closed"]
    for i in rng.sample(credit, DIRT["credit_accounts_null_limit"] * scale):
        accounts[i] = accounts[i]._replace(credit_limit=None)
    for i in rng.sample(closed, DIRT["closed_accounts_with_balance"] * scale):
        accounts[i] = accounts[i]._replace(balance=_cents(rng.randint(12_47, 850_00)))
    return tuple(accounts)


def _transactions(
    rng: random.Random, accounts: Sequence[Account], scale: int
) -> tuple[Transaction, ...]:
    n = BASE_COUNTS["transactions"] * scale
    weights = [{"active": 20, "frozen": 2, "dormant": 1, "closed": 1}[a.status] for a in accounts]
    window_start = AS_OF - timedelta(days=365)
    last_moment = AS_OF - timedelta(days=4)  # leaves room to post before AS_OF
    drafts = []
    for account in rng.choices(accounts, weights, k=n):
        opened = datetime.combine(account.open_date, datetime.min.time())
        when = _random_moment(rng, max(opened, window_start), last_moment).replace(microsecond=0)
        kind = _weighted(rng, TRANSACTION_TYPES[account.account_type])
        merchant = None
        if kind in ("purchase", "refund"):
            merchant, category, low, high = rng.choice(MERCHANTS)
            amount = _skewed_cents(rng, low, high)
        else:
            category = NON_MERCHANT_CATEGORY[kind]
            amount = _non_merchant_amount(rng, kind)
        status = _weighted(rng, TRANSACTION_STATUSES)
        # Posting (or declining) happens up to three days after the transaction.
        modified = when + timedelta(
            seconds=rng.randint(1, 3 * 86400), microseconds=rng.randrange(10**6)
        )
        drafts.append(
            (when, account.account_id, amount, kind, merchant, category, status, modified)
        )
    drafts.sort(key=lambda draft: (draft[0], draft[1]))
    return tuple(
        Transaction(TRANSACTION_ID_BASE + index + 1, account_id, amount, when, *rest)
        for index, (when, account_id, amount, *rest) in enumerate(drafts)
    )


def _non_merchant_amount(rng: random.Random, kind: str) -> Decimal:
    if kind == "withdrawal":
        return _cents(rng.randint(1, 40) * 20_00)  # ATMs hand out twenties
    if kind == "fee":
        return _cents(rng.choice((2_50, 3_00, 12_00, 35_00)))
    if kind == "interest":
        return _skewed_cents(rng, 1, 85_00)
    if kind == "deposit":
        return _skewed_cents(rng, 50_00, 6_000_00)
    return _skewed_cents(rng, 25_00, 5_000_00)  # transfer, payment


def _crm(rng: random.Random, customers: Sequence[Customer], scale: int) -> tuple[CrmCustomer, ...]:
    duplicates = DIRT["crm_duplicate_rows"] * scale
    unknown = DIRT["crm_unknown_customers"] * scale
    known = BASE_COUNTS["crm_customers"] * scale - duplicates - unknown
    covered = rng.sample(customers, known)  # the rest of the customers have no CRM record
    records = [_crm_record(rng, customer.customer_id, customer) for customer in covered]
    picked = rng.sample(range(known), DIRT["crm_never_contacted"] * scale + duplicates)
    never, twice = picked[: len(picked) - duplicates], picked[len(picked) - duplicates :]
    for i in never:
        records[i] = records[i]._replace(last_contact_date=None)
    records += [_crm_duplicate(rng, records[i]) for i in twice]
    # Prospects the CRM knows before core banking does: ids beyond every customer's.
    first_unknown = CUSTOMER_ID_BASE + len(customers) + 1000
    records += [_crm_record(rng, first_unknown + k, None) for k in range(unknown)]
    rng.shuffle(records)  # duplicates are not next to their originals in a real export
    return tuple(
        record._replace(crm_id=f"CRM-{index + 1:07d}") for index, record in enumerate(records)
    )


def _crm_record(rng: random.Random, customer_id: int, customer: Customer | None) -> CrmCustomer:
    segment = customer.customer_segment if customer else _weighted(rng, SEGMENTS)
    since = customer.account_open_date if customer else AS_OF.date() - timedelta(days=120)
    method = _weighted(rng, CONTACT_METHODS)
    if customer is not None and customer.email is None and method == "Email":
        method = "Phone"
    return CrmCustomer(
        customer_id=customer_id,
        crm_id="",  # numbered once the export order is known
        preferred_contact_method=method,
        marketing_opt_in=rng.random() < 0.55,
        loyalty_tier=_weighted(rng, LOYALTY_TIERS[segment]),
        lifetime_value=_skewed_cents(rng, *LIFETIME_VALUE_CENTS[segment]),
        last_contact_date=_random_date(rng, since, AS_OF.date() - timedelta(days=1)),
        assigned_rep=rng.choice(REPS),
    )


def _crm_duplicate(rng: random.Random, original: CrmCustomer) -> CrmCustomer:
    """The same customer entered again later: same facts, careless casing and whitespace."""
    assert original.last_contact_date is not None
    later = min(
        original.last_contact_date + timedelta(days=rng.randint(1, 90)),
        AS_OF.date() - timedelta(days=1),
    )
    rep_first, rep_last = original.assigned_rep.split(" ", 1)
    return original._replace(
        preferred_contact_method=_messy(rng, original.preferred_contact_method),
        loyalty_tier=_messy(rng, original.loyalty_tier),
        assigned_rep=rng.choice(
            (f"{rep_first}  {rep_last}".upper(), f" {original.assigned_rep.lower()}")
        ),
        last_contact_date=later,
    )


# --- rendering: SQL scripts ----------------------------------------------------------------


class Column(NamedTuple):
    name: str
    kind: str  # int | text | char | date | timestamp | decimal
    size: int = 0  # text/char length, fractional-second digits of a timestamp
    nullable: bool = False


class Table(NamedTuple):
    name: str
    columns: tuple[Column, ...]
    foreign_key: tuple[str, str, str] | None  # (column, referenced table, referenced column)


TABLES = (
    Table(
        "customers",
        (
            Column("customer_id", "int"),
            Column("first_name", "text", 100),
            Column("last_name", "text", 100),
            Column("email", "text", 255, nullable=True),
            Column("phone", "text", 30, nullable=True),
            Column("dob", "date"),
            Column("ssn_last4", "char", 4),
            Column("address", "text", 200),
            Column("city", "text", 100),
            Column("state", "char", 2),
            Column("zip", "text", 10),
            Column("account_open_date", "date"),
            Column("customer_segment", "text", 50),
            Column("modified_date", "timestamp", 6),
        ),
        None,
    ),
    Table(
        "accounts",
        (
            Column("account_id", "int"),
            Column("customer_id", "int"),
            Column("account_type", "text", 20),
            Column("balance", "decimal"),
            Column("credit_limit", "decimal", nullable=True),
            Column("open_date", "date"),
            Column("status", "text", 20),
            Column("modified_date", "timestamp", 6),
        ),
        ("customer_id", "customers", "customer_id"),
    ),
    Table(
        "transactions",
        (
            Column("transaction_id", "int"),
            Column("account_id", "int"),
            Column("amount", "decimal"),
            Column("transaction_date", "timestamp", 0),
            Column("type", "text", 20),
            Column("merchant", "text", 100, nullable=True),
            Column("category", "text", 50),
            Column("status", "text", 20),
            Column("modified_date", "timestamp", 6),
        ),
        ("account_id", "accounts", "account_id"),
    ),
)
for _table, _row_type in zip(TABLES, (Customer, Account, Transaction), strict=True):
    assert tuple(c.name for c in _table.columns) == _row_type._fields, _table.name


def _table_rows(data: DemoRows, table: Table) -> Sequence[tuple]:
    return getattr(data, table.name)


def quote_text(text: str, dialect: str) -> str:
    """``text`` as a string literal of ``dialect`` (tsql, postgres, mysql, sqlite).

    T-SQL gets ``N'...'`` (Unicode) and PostgreSQL/SQLite standard literals, all with quotes
    doubled. MySQL also treats backslash as an escape character (unless NO_BACKSLASH_ESCAPES,
    which the script switches off), so backslashes and control characters are escaped too."""
    if dialect == "mysql":
        escaped = (
            text.replace("\\", "\\\\")
            .replace("'", "''")
            .replace("\0", "\\0")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
            .replace("\x1a", "\\Z")
        )
        return f"'{escaped}'"
    if "\0" in text:
        raise ValueError(f"{dialect} text cannot hold a NUL character: {text!r}")
    literal = "'" + text.replace("'", "''") + "'"
    return "N" + literal if dialect == "tsql" else literal


def _literal(value: object, column: Column, dialect: str) -> str:
    if value is None:
        return "NULL"
    if column.kind == "int":
        return str(int(value))  # type: ignore[call-overload]
    if column.kind == "decimal":
        return format(value, "f")
    if column.kind == "date":
        return f"'{value.isoformat()}'"  # type: ignore[attr-defined]
    if column.kind == "timestamp":
        return f"'{_timestamp_text(value, column, dialect)}'"  # type: ignore[arg-type]
    if column.kind == "char" and dialect == "tsql":
        return "'" + str(value).replace("'", "''") + "'"  # CHAR is not Unicode: no N prefix
    return quote_text(str(value), dialect)


def _timestamp_text(value: datetime, column: Column, dialect: str) -> str:
    if column.size == 0:
        text = value.isoformat(sep=" ", timespec="seconds")
    else:
        text = value.isoformat(sep=" ", timespec="microseconds")
    if dialect == "tsql":
        # ISO 8601 with a T is read the same under every SET LANGUAGE / DATEFORMAT, and
        # datetime2(7) takes a seventh fractional digit.
        text = text.replace(" ", "T") + ("0" if column.size else "")
    return text


def _column_type(column: Column, dialect: str) -> str:
    size = column.size
    if dialect == "tsql":
        types = {
            "int": "INT",
            "text": f"NVARCHAR({size})",
            "char": f"CHAR({size})",
            "date": "DATE",
            "timestamp": "DATETIME2(7)" if size else "DATETIME2(0)",
            "decimal": "DECIMAL(18,2)",
        }
    elif dialect == "postgres":
        types = {
            "int": "integer",
            "text": f"varchar({size})",
            "char": f"char({size})",
            "date": "date",
            "timestamp": f"timestamp({size})",
            "decimal": "numeric(18,2)",
        }
    elif dialect == "mysql":
        types = {
            "int": "INT",
            "text": f"VARCHAR({size})",
            "char": f"CHAR({size})",
            "date": "DATE",
            "timestamp": f"DATETIME({size})",
            "decimal": "DECIMAL(18,2)",
        }
    else:  # sqlite: names whose affinity and meaning FlowForge's SQLite reader knows
        types = {
            "int": "INTEGER",
            "text": f"VARCHAR({size})",
            "char": f"CHAR({size})",
            "date": "DATE",
            "timestamp": "DATETIME",
            "decimal": "DECIMAL(18,2)",
        }
    return types[column.kind]


def _qualified(name: str, dialect: str) -> str:
    return f"dbo.{name}" if dialect == "tsql" else name


def _create_table(table: Table, dialect: str) -> str:
    lines = [
        f"    {c.name} {_column_type(c, dialect)} {'NULL' if c.nullable else 'NOT NULL'}"
        for c in table.columns
    ]
    key = table.columns[0].name
    lines.append(f"    CONSTRAINT pk_{table.name} PRIMARY KEY ({key})")
    if table.foreign_key:
        column, parent, parent_column = table.foreign_key
        lines.append(
            f"    CONSTRAINT fk_{table.name}_{parent} FOREIGN KEY ({column}) "
            f"REFERENCES {_qualified(parent, dialect)} ({parent_column})"
        )
    suffix = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" if dialect == "mysql" else ""
    return (
        f"CREATE TABLE {_qualified(table.name, dialect)} (\n" + ",\n".join(lines) + f"\n){suffix};"
    )


def _create_indexes(table: Table, dialect: str) -> list[str]:
    # Incremental loads filter on modified_date; foreign keys are joined on.
    columns = ["modified_date"] + ([table.foreign_key[0]] if table.foreign_key else [])
    return [
        f"CREATE INDEX ix_{table.name}_{column} ON {_qualified(table.name, dialect)} ({column});"
        for column in columns
    ]


def _inserts(table: Table, table_rows: Sequence[tuple], dialect: str) -> Iterable[str]:
    names = ", ".join(c.name for c in table.columns)
    head = f"INSERT INTO {_qualified(table.name, dialect)} ({names}) VALUES\n"
    for start in range(0, len(table_rows), INSERT_BATCH):
        batch = table_rows[start : start + INSERT_BATCH]
        values = ",\n".join(
            "("
            + ", ".join(_literal(v, c, dialect) for v, c in zip(row, table.columns, strict=True))
            + ")"
            for row in batch
        )
        yield head + values + ";"


SCRIPT_FRAMES = {
    "tsql": (
        ["SET NOCOUNT ON;", "SET XACT_ABORT ON;", "BEGIN TRANSACTION;"],
        ["COMMIT TRANSACTION;"],
    ),
    "postgres": (
        ["SET client_encoding = 'UTF8';", "SET standard_conforming_strings = on;", "BEGIN;"],
        ["COMMIT;"],
    ),
    "mysql": (
        [
            "SET NAMES utf8mb4;",
            # Our own mode for the load (strict, and backslash escapes on, which the
            # literals rely on); the caller's mode comes back at the end.
            "SET @flowforge_old_sql_mode = @@SESSION.sql_mode;",
            "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
            "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION';",
            "START TRANSACTION;",
        ],
        ["COMMIT;", "SET SESSION sql_mode = @flowforge_old_sql_mode;"],
    ),
}
DIALECT_TITLES = {"tsql": "SQL Server (T-SQL)", "postgres": "PostgreSQL", "mysql": "MySQL/MariaDB"}


def render_script(data: DemoRows, dialect: str) -> str:
    """The whole load script for ``dialect`` (tsql, postgres, mysql): drop, create, insert."""
    opening, closing = SCRIPT_FRAMES[dialect]
    parts = [
        f"-- BFSI Customer 360 demo data for {DIALECT_TITLES[dialect]}: seed {data.seed}, "
        f"scale {data.scale}.",
        "-- Generated by flowforge.demo_data; regenerate with demo-data/generate.py "
        "instead of editing.",
        *opening,
    ]
    drop_if_exists = "DROP TABLE IF EXISTS"
    parts += [f"{drop_if_exists} {_qualified(t.name, dialect)};" for t in reversed(TABLES)]
    for table in TABLES:
        parts.append(_create_table(table, dialect))
        parts.extend(_create_indexes(table, dialect))
    for table in TABLES:
        parts.extend(_inserts(table, _table_rows(data, table), dialect))
    parts += closing
    return "\n".join(parts) + "\n"


# --- rendering: SQLite and CSV -------------------------------------------------------------


def _sqlite_value(value: object, column: Column) -> object:
    # sqlite3 has no Decimal or (non-deprecated) date adapters: bind the exact text. A
    # DECIMAL column's NUMERIC affinity stores "12.30" as 12.3, exact to the cent on reading.
    if value is None or column.kind == "int":
        return value
    if column.kind == "timestamp":
        return _timestamp_text(value, column, "sqlite")  # type: ignore[arg-type]
    if column.kind == "date":
        return value.isoformat()  # type: ignore[attr-defined]
    return format(value, "f") if column.kind == "decimal" else value


def _write_sqlite(path: Path, data: DemoRows) -> None:
    connection = sqlite3.connect(path)
    try:
        with connection:
            for table in TABLES:
                connection.execute(_create_table(table, "sqlite").rstrip(";"))
                for statement in _create_indexes(table, "sqlite"):
                    connection.execute(statement.rstrip(";"))
            for table in TABLES:
                marks = ", ".join("?" for _ in table.columns)
                connection.executemany(
                    f"INSERT INTO {table.name} VALUES ({marks})",  # noqa: S608 (our own names)
                    (
                        tuple(_sqlite_value(v, c) for v, c in zip(row, table.columns, strict=True))
                        for row in _table_rows(data, table)
                    ),
                )
    finally:
        connection.close()


CRM_COLUMNS = CrmCustomer._fields


def render_crm_csv(data: DemoRows) -> str:
    """The CRM export: UTF-8, a header row, empty fields for nulls, ``true``/``false``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CRM_COLUMNS)
    for record in data.crm:
        writer.writerow(
            [
                record.customer_id,
                record.crm_id,
                record.preferred_contact_method,
                "true" if record.marketing_opt_in else "false",
                record.loyalty_tier,
                format(record.lifetime_value, "f"),
                record.last_contact_date.isoformat() if record.last_contact_date else "",
                record.assigned_rep,
            ]
        )
    return buffer.getvalue()


# --- files ---------------------------------------------------------------------------------

FILE_NAMES = {
    "tsql": "bfsi_sample_data.sql",
    "postgres": "bfsi_sample_data.postgres.sql",
    "mysql": "bfsi_sample_data.mysql.sql",
    "sqlite": "bfsi_core_banking.db",
    "crm_csv": "crm_customers.csv",
}


def _replace_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Write to a temporary name, then rename: a crash never leaves half a file behind."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def generate(out_dir: Path, scale: int = 1, seed: int = DEFAULT_SEED) -> GeneratedFiles:
    """Generate the rows once and write every rendering into ``out_dir`` (created if needed).

    Existing files of the same names are replaced; the same arguments always write the same
    bytes."""
    data = rows(scale, seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {key: out_dir / name for key, name in FILE_NAMES.items()}
    # T-SQL gets a byte-order mark: sqlcmd and SSMS read a file without one in the machine's
    # code page and would turn N'José' into N'JosÃ©'.
    encodings = {"tsql": "utf-8-sig", "postgres": "utf-8", "mysql": "utf-8"}
    for dialect, encoding in encodings.items():
        text = render_script(data, dialect)
        _replace_atomically(
            paths[dialect], lambda p, t=text, e=encoding: p.write_bytes(t.encode(e))
        )
    _replace_atomically(paths["sqlite"], lambda p: _write_sqlite(p, data))
    crm_text = render_crm_csv(data)
    _replace_atomically(paths["crm_csv"], lambda p: p.write_bytes(crm_text.encode("utf-8")))
    return GeneratedFiles(out_dir=out_dir, counts=data.counts(), **paths)


# --- the second act ------------------------------------------------------------------------


def apply_changes(sqlite_path: Path) -> ChangeSet:
    """Change the SQLite copy the way a day of business would, and say what changed.

    The lowest-numbered customer with a clean e-mail gets a new address and ``modified_date``
    :data:`SECOND_ACT_AT`; one purchase on that customer's first active account is inserted
    with the next ``transaction_id`` and a ``modified_date`` just after. Both happen in one
    transaction. Nothing else changes. A file already changed is refused, so the demo never
    counts a second act twice."""
    sqlite_path = Path(sqlite_path)
    if not sqlite_path.is_file():
        raise DemoDataError(
            f"no SQLite database at {sqlite_path}: generate the demo data first "
            "(python demo-data/generate.py --out DIR)"
        )
    connection = sqlite3.connect(sqlite_path)
    try:
        with connection:
            return _apply(connection, sqlite_path)
    except sqlite3.DatabaseError as error:
        raise DemoDataError(
            f"{sqlite_path} is not a demo core-banking database ({error}); generate it again"
        ) from None
    finally:
        connection.close()


def _apply(connection: sqlite3.Connection, sqlite_path: Path) -> ChangeSet:
    as_of = AS_OF.isoformat(sep=" ")
    already = connection.execute(
        "SELECT (SELECT count(*) FROM customers WHERE modified_date >= ?)"
        " + (SELECT count(*) FROM transactions WHERE modified_date >= ?)",
        (as_of, as_of),
    ).fetchone()[0]
    if already:
        raise DemoDataError(
            f"{sqlite_path} already has changes after {as_of} (the second act ran before); "
            "generate a fresh copy to run it again"
        )
    found = connection.execute(
        "SELECT c.customer_id, c.email, a.account_id FROM customers c"
        " JOIN accounts a ON a.customer_id = c.customer_id AND a.status = 'active'"
        " WHERE c.email IS NOT NULL AND c.email = lower(trim(c.email))"
        " ORDER BY c.customer_id, a.account_id LIMIT 1"
    ).fetchone()
    if found is None:
        raise DemoDataError(f"{sqlite_path} has no customer with an e-mail and an active account")
    customer_id, old_email, account_id = found
    new_email = f"{old_email.split('@')[0]}@{NEW_EMAIL_DOMAIN}"
    next_id = connection.execute("SELECT max(transaction_id) FROM transactions").fetchone()[0]
    transaction = Transaction(
        transaction_id=(next_id or TRANSACTION_ID_BASE) + 1,
        account_id=account_id,
        amount=Decimal("86.40"),
        transaction_date=SECOND_ACT_AT.replace(microsecond=0) - timedelta(minutes=42),
        type="purchase",
        merchant="Whole Foods Market",
        category="groceries",
        status="posted",
        modified_date=SECOND_ACT_AT + timedelta(milliseconds=250),
    )
    customers, transactions = TABLES[0], TABLES[2]
    modified = _sqlite_value(SECOND_ACT_AT, customers.columns[-1])
    connection.execute(
        "UPDATE customers SET email = ?, modified_date = ? WHERE customer_id = ?",
        (new_email, modified, customer_id),
    )
    marks = ", ".join("?" for _ in transactions.columns)
    connection.execute(
        f"INSERT INTO transactions VALUES ({marks})",  # noqa: S608 (no outside text)
        tuple(_sqlite_value(v, c) for v, c in zip(transaction, transactions.columns, strict=True)),
    )
    return ChangeSet(customer_id, old_email, new_email, SECOND_ACT_AT, transaction)


# --- command line --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, *, script: str | None = None) -> int:
    """``generate.py [--out DIR] [--scale N]``: write the files, print a summary.

    ``script`` is the wrapper's own path: ``--out`` then defaults to ``generated/`` beside
    it (demo-data/generated/, git-ignored) wherever the command is run from."""
    default_out = Path(script).resolve().parent / "generated" if script else Path("generated")
    parser = argparse.ArgumentParser(description="Write the BFSI Customer 360 demo data.")
    parser.add_argument("--out", type=Path, default=default_out, help=f"(default {default_out})")
    parser.add_argument("--scale", type=int, default=1, help="multiply every row count by N")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.scale < 1:
        parser.error(f"--scale must be at least 1, not {arguments.scale}")
    started = time.perf_counter()
    try:
        files = generate(arguments.out, arguments.scale, arguments.seed)
    except OSError as error:
        print(f"error: cannot write the demo data to {arguments.out}: {error}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{count:,} {name}" for name, count in files.counts.items())
    print(f"wrote {counts} in {time.perf_counter() - started:.1f}s:")
    for path in files.paths():
        print(f"  {path}")
    return 0
