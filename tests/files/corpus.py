"""Awkward CSV files for the detection tests, generated (deterministic, small, fast).

Each generator writes one file into ``directory`` and returns its path. The content is
built in code rather than checked in, so a reader of a test sees exactly what the file holds.
"""

from __future__ import annotations

import random
from pathlib import Path


def write(directory: Path, name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = directory / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def semicolon_decimal_comma(directory: Path) -> Path:
    """A European export: ';' delimiter, decimal commas, '.' thousands, a euro column."""
    lines = ["id;product;price;weight_kg;total"]
    for i in range(1, 41):
        price = f"{i * 1234 // 10:,}".replace(",", ".") + f",{i % 100:02d}"
        lines.append(f"{i};Produit {i};{price};{i % 7},{i % 10};{i * 3},5 €")
    return write(directory, "semicolon.csv", "\n".join(lines) + "\n")


def cp1252_accented(directory: Path) -> Path:
    """A Windows export in cp1252: accented names and a euro sign (byte 0x80)."""
    rows = [
        ("1", "José", "Müller", "Málaga"),
        ("2", "Zoë", "Ångström", "Besançon"),
        ("3", "François", "Ñúñez", "Köln"),
    ]
    text = "id,first_name,last_name,city,note\r\n" + "".join(
        f"{a},{b},{c},{d},€ {a}0\r\n" for a, b, c, d in rows
    )
    return write(directory, "cp1252.csv", text, "cp1252")


def utf8_bom(directory: Path) -> Path:
    return write(directory, "bom.csv", "\ufeffid,name,score\n1,Ana,3.5\n2,Bo,4.25\n3,Cy,1\n")


def utf16(directory: Path, byte_order: str) -> Path:
    """UTF-16 with a byte-order mark, ``byte_order`` 'le' or 'be'."""
    text = "\ufeffid,name,joined\n1,Ana,2024-01-05\n2,Zoë,2024-02-10\n3,Bo,2024-03-15\n"
    return write(directory, f"utf16{byte_order}.csv", text, f"utf-16-{byte_order}")


def quoted_newlines(directory: Path, rows: int = 3000) -> Path:
    """Values with embedded delimiters, quotes and line breaks, CRLF line endings, and enough
    rows that mid-file chunks start inside multi-line values."""
    lines = ["id,comment,amount,created"]
    for i in range(1, rows + 1):
        comment = f'"line one of {i}, with a comma\nline two ""quoted""\nline, three"'
        lines.append(f"{i},{comment},{i}.{i % 100:02d},2024-01-{i % 28 + 1:02d}")
    return write(directory, "quoted.csv", "\r\n".join(lines) + "\r\n")


def header_only(directory: Path) -> Path:
    return write(directory, "header_only.csv", "id,name,amount\n")


def empty(directory: Path) -> Path:
    return write(directory, "empty.csv", b"")


def blank_lines(directory: Path) -> Path:
    return write(directory, "blank.csv", "\n\n\r\n")


def binary_renamed(directory: Path) -> Path:
    """A PNG (NUL bytes in its header) renamed .csv."""
    random.seed(7)
    body = bytes(random.randrange(256) for _ in range(2000))
    return write(directory, "image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + body)


def binary_without_nul(directory: Path) -> Path:
    """Random bytes with no NUL: decodes as latin-1, but is mostly control characters."""
    random.seed(11)
    return write(directory, "noise.csv", bytes(random.randrange(1, 256) for _ in range(4000)))


def ragged(directory: Path) -> Path:
    text = "id,name,amount\n1,Ana,10\n2,Bo\n3,Cy,30\n4,Di,40,extra\n5,Ed,50\n"
    return write(directory, "ragged.csv", text)


def wide(directory: Path, columns: int = 1000, rows: int = 20) -> Path:
    header = ",".join(f"c{j}" for j in range(columns))
    body = "\n".join(",".join(str(i * columns + j) for j in range(columns)) for i in range(rows))
    return write(directory, "wide.csv", header + "\n" + body + "\n")


def all_null_column(directory: Path) -> Path:
    lines = ["id,nothing,value"] + [f"{i},{'' if i % 2 else 'NULL'},{i * 2}" for i in range(1, 21)]
    return write(directory, "all_null.csv", "\n".join(lines) + "\n")


def three_date_formats(directory: Path) -> Path:
    """ISO, dd/mm/yyyy (a day > 12 decides) and mm/dd/yyyy (a day > 12 in 2nd place)."""
    lines = ["id,iso,day_first,month_first"]
    for i in range(1, 31):
        day, month = i, (i % 12) + 1
        lines.append(
            f"{i},2024-{month:02d}-{day:02d},{day:02d}/{month:02d}/2024,{month}/{day}/2024"
        )
    return write(directory, "dates.csv", "\n".join(lines) + "\n")


def ambiguous_dates(directory: Path) -> Path:
    lines = ["id,event_date"] + [f"{i},{i:02d}/{13 - i:02d}/2024" for i in range(1, 13)]
    return write(directory, "ambiguous.csv", "\n".join(lines) + "\n")


def currency_amounts(directory: Path) -> Path:
    """Dollars with thousands separators, euros written the European way (quoted, since they
    hold a comma), pounds, and an integer count with thousands separators."""
    lines = ["id,usd,eur,gbp,visitors"]
    for i in range(1, 21):
        usd = f"${i * 1234.5:,.2f}" if i % 3 else f"-${i * 10:,.2f}"
        eur = f"{i * 1234.5:,.2f}".replace(",", " ").replace(".", ",").replace(" ", ".") + " €"
        lines.append(f'{i},"{usd}","{eur}",£{i}.{i:02d},"{i * 1_234_567:,}"')
    return write(directory, "currency.csv", "\n".join(lines) + "\n")


def head_integers_tail_decimals(directory: Path, rows: int = 100_000) -> Path:
    """``amount`` is an integer for all but the last 500 rows, which have decimals (the file
    is larger than the reader's first 1 MiB block, from which it infers types)."""
    lines = ["id,amount,label"]
    for i in range(1, rows + 1):
        amount = f"{i % 1000}.{i % 10}5" if i > rows - 500 else str(i % 1000)
        lines.append(f"{i},{amount},label-{i % 97}")
    return write(directory, "head_tail.csv", "\n".join(lines) + "\n")


def people(directory: Path) -> Path:
    """PII of every kind the heuristic tags (all synthetic: example.com, 555 numbers, test
    card numbers that pass the Luhn check)."""
    cards = ["4111111111111111", "5500005555555559", "4012888888881881", "378282246310005"]
    states = ["CA", "NY", "TX", "WA", "OR", "FL"]
    lines = [
        "customer_id,first_name,last_name,email,phone,ssn,card,account_number,zip,state,"
        "country,date_of_birth,balance,is_active,ssn_last4"
    ]
    for i in range(1, 25):
        lines.append(
            f"{1000 + i},Name{i},Surname{i},user{i}@example.com,(555) 010-{i:04d},"
            f"{100 + i:03d}-{10 + i:02d}-{1000 + i:04d},{cards[i % 4]},{90000000 + i},"
            f"{10000 + i * 37:05d},{states[i % 6]},{['US', 'FR', 'DE', 'GB', 'ES'][i % 5]},"
            f"19{50 + i}-0{i % 9 + 1}-1{i % 9},{i * 10}.50,{i % 2},{1000 + i}"
        )
    return write(directory, "people.csv", "\n".join(lines) + "\n")


def escaped_quotes(directory: Path) -> Path:
    """MySQL-style: quotes escaped with a backslash, never doubled."""
    text = 'id,quote\n1,"He said \\"hi\\" to me"\n2,"plain"\n3,"a \\"b\\", c"\n'
    return write(directory, "escaped.csv", text)


def tab_delimited(directory: Path) -> Path:
    text = "id\tcity\tpopulation\n1\tParis, FR\t2100000\n2\tRome\t2800000\n3\tOslo\t700000\n"
    return write(directory, "tabs.tsv", text)


def pipe_delimited_cr(directory: Path) -> Path:
    """'|' delimiter and old-Mac CR line endings."""
    return write(directory, "pipes.csv", "id|flag|t\r1|true|x\r2|false|y\r3|true|z\r")


def headerless(directory: Path) -> Path:
    return write(
        directory, "headerless.csv", "1,2024-01-05,10.5\n2,2024-01-06,11\n3,2024-01-07,9.25\n"
    )


def mostly_integers(directory: Path) -> Path:
    """A count column with one stray text value, and 'NA'/'-' used as nulls elsewhere."""
    lines = ["id,quantity,score"]
    for i in range(1, 41):
        quantity = "unknown" if i == 17 else str(i)
        score = "NA" if i % 10 == 0 else ("-" if i % 7 == 0 else str(i * 2))
        lines.append(f"{i},{quantity},{score}")
    return write(directory, "mostly.csv", "\n".join(lines) + "\n")


def timestamps(directory: Path) -> Path:
    lines = ["id,created_at,updated_at,logged"]
    for i in range(1, 21):
        lines.append(
            f"{i},2024-03-{i:02d} 10:{i:02d}:05,2024-03-{i:02d}T10:00:00.{i:03d}+02:00,"
            f"{i:02d}/03/2024 1{i % 10}:30"
        )
    return write(directory, "timestamps.csv", "\n".join(lines) + "\n")


def injection(directory: Path) -> Path:
    text = 'id,formula\n1,=1+2\n2,+SUM(A1)\n3,-5\n4,@cmd\n5,"=HYPERLINK(""http://x"")"\n'
    return write(directory, "injection.csv", text)
