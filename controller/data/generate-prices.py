#!/usr/bin/env python3
"""Builds controller/data/aws-prices.csv, the embedded price book, from

- controller/data/curated-prices.csv: rows read by hand from cited public documents
  (each row names its source and date), and
- controller/data/sources/*.json.xz: verbatim copies of public AWS price files listed,
  with their origin and digests, in controller/data/sources/MANIFEST.tsv.

Deterministic: the same inputs give the same bytes (rows sorted by service, region, key;
no clock, no network). Standard library only.

    python3 controller/data/generate-prices.py            # rewrite aws-prices.csv
    python3 controller/data/generate-prices.py --check    # exit 1 if it is stale

A generated row replaces a curated row with the same service, region and key: the
generated table is complete for the dimensions it covers, and mixing sources of
different dates for one dimension would make the book inconsistent.
"""

import csv
import decimal
import hashlib
import io
import json
import lzma
import re
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent
SOURCES = DATA / "sources"
CURATED = DATA / "curated-prices.csv"
BOOK = DATA / "aws-prices.csv"
VERSION = "2026-12-03.1"
HEADER = ["service", "region", "key", "unit", "usd", "source", "observed"]

# The commercial AWS regions, by the location names AWS's price files use. Local Zones,
# Wavelength Zones, GovCloud and China are not regions a provider `region` can name for
# these prices, so their columns in the files are not taken.
REGIONS = {
    "US East (N. Virginia)": "us-east-1",
    "US East (Ohio)": "us-east-2",
    "US West (N. California)": "us-west-1",
    "US West (Oregon)": "us-west-2",
    "Africa (Cape Town)": "af-south-1",
    "Asia Pacific (Hong Kong)": "ap-east-1",
    "Asia Pacific (Taipei)": "ap-east-2",
    "Asia Pacific (Mumbai)": "ap-south-1",
    "Asia Pacific (Hyderabad)": "ap-south-2",
    "Asia Pacific (Tokyo)": "ap-northeast-1",
    "Asia Pacific (Seoul)": "ap-northeast-2",
    "Asia Pacific (Osaka)": "ap-northeast-3",
    "Asia Pacific (Singapore)": "ap-southeast-1",
    "Asia Pacific (Sydney)": "ap-southeast-2",
    "Asia Pacific (Jakarta)": "ap-southeast-3",
    "Asia Pacific (Melbourne)": "ap-southeast-4",
    "Asia Pacific (Malaysia)": "ap-southeast-5",
    "Asia Pacific (New Zealand)": "ap-southeast-6",
    "Asia Pacific (Thailand)": "ap-southeast-7",
    "Canada (Central)": "ca-central-1",
    "Canada West (Calgary)": "ca-west-1",
    "EU (Frankfurt)": "eu-central-1",
    "EU (Zurich)": "eu-central-2",
    "EU (Ireland)": "eu-west-1",
    "EU (London)": "eu-west-2",
    "EU (Paris)": "eu-west-3",
    "EU (Milan)": "eu-south-1",
    "EU (Spain)": "eu-south-2",
    "EU (Stockholm)": "eu-north-1",
    "Israel (Tel Aviv)": "il-central-1",
    "Mexico (Central)": "mx-central-1",
    "Middle East (Bahrain)": "me-south-1",
    "Middle East (UAE)": "me-central-1",
    "South America (Sao Paulo)": "sa-east-1",
}

# "<location> (<attribute>: <value>, …)": the price-watcher's processing appends the
# item's attributes to the location name.
LOCATION = re.compile(r"^(?P<location>.+?\))(?: \((?P<attributes>.*)\))?$")
INSTANCE_ATTRIBUTE = re.compile(r"(?:^|, )Instance Type: (?P<type>[a-z0-9.\-]+)")
EC2_ITEM = re.compile(r"^OnDemand Linux-instancetype-(?P<type>[a-z0-9\-]+\.[a-z0-9\-]+)$")
RDS_ITEM = re.compile(
    r"^(?:\[[^\]]*\] )?Database Instance (?P<engine>MySQL|PostgreSQL|MariaDB|Aurora MySQL|Aurora PostgreSQL)"
    r" No license required(?P<io> Aurora IO Optimization Mode)? db (?P<class>[a-z0-9\-]+\.[a-z0-9\-]+)"
    r"(?: [^;]*?)? (?P<deployment>Single-AZ|Multi-AZ readable standbys|Multi-AZ)"
    r" (?:Current|Previous) Generation(?:;.*)?$"
)
CACHE_ITEM = re.compile(
    r"^\[OnDemand Cache Instance [^\]]*\] OnDemand Cache Instance .*? cache (?P<type>[a-z0-9\-]+\.[a-z0-9\-]+)"
    r" (?P<engine>Redis|Valkey|Memcached) (?:Current|Previous) Generation$"
)
RDS_ENGINES = {
    "MySQL": "mysql",
    "PostgreSQL": "postgres",
    "MariaDB": "mariadb",
    "Aurora MySQL": "aurora-mysql",
    "Aurora PostgreSQL": "aurora-postgresql",
}
# Items priced by name: (file, item) -> (service, key, unit, multiplier from AWS's unit).
NAMED_ITEMS = {
    ".raw.dynamodb.": {
        "Provisioned Write Units": ("dynamodb", "wcu", "WCU-hour", 1),
        "Provisioned Read Units": ("dynamodb", "rcu", "RCU-hour", 1),
        "Provisioned Replicated Write Units": ("dynamodb", "replicated-wcu", "rWCU-hour", 1),
        "PayPerRequest Write Request Units": ("dynamodb", "wru", "1M write request units", 1000000),
        "PayPerRequest Read Request Units": ("dynamodb", "rru", "1M read request units", 1000000),
        "PayPerRequest Replicated Write Request Units": (
            "dynamodb",
            "replicated-wru",
            "1M replicated write request units",
            1000000,
        ),
        "Data Storage Indexed GB-Mo": ("dynamodb", "storage", "GB-month", 1),
    },
    ".processed.eks.": {
        "Compute per Hours": ("eks", "cluster:hour", "hour", 1),
        "Compute ExtendedSupport per Hours": ("eks", "cluster-extended-support:hour", "hour", 1),
    },
    ".processed.ecs.": {
        "perCPU per hour": ("fargate", "vcpu-hour:x86_64", "vCPU-hour", 1),
        "perGB per hour": ("fargate", "gb-hour:x86_64", "GB-hour", 1),
        "ARM perCPU per hour": ("fargate", "vcpu-hour:arm64", "vCPU-hour", 1),
        "ARM perGB per hour": ("fargate", "gb-hour:arm64", "GB-hour", 1),
        "perCPU per hour Windows": ("fargate", "vcpu-hour:windows", "vCPU-hour", 1),
        "perGB per hour Windows": ("fargate", "gb-hour:windows", "GB-hour", 1),
        "perCPU OS License Fee per hour Windows": ("fargate", "windows-license:vcpu-hour", "vCPU-hour", 1),
    },
}
# Redis OSS and Memcached nodes are one price (`node:`), Valkey another (`valkey-node:`).
CACHE_PREFIX = {"Redis": "node", "Memcached": "memcached-node", "Valkey": "valkey-node"}


class GeneratorError(Exception):
    pass


def read_manifest():
    """Each line: file, origin repo@commit, path in that repo, git blob id, sha256 of
    the uncompressed bytes, date the file's version was committed, AWS file it copies."""
    entries = []
    for line in (SOURCES / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        name, origin, path, blob, sha256, observed, aws_file = line.split("\t")
        raw = lzma.decompress((SOURCES / name).read_bytes())
        if hashlib.sha256(raw).hexdigest() != sha256:
            raise GeneratorError(f"{name}: sha256 differs from MANIFEST.tsv; the input was changed")
        git_blob = hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest()
        if git_blob != blob:
            raise GeneratorError(f"{name}: git blob id differs from MANIFEST.tsv")
        entries.append(
            {
                "name": name,
                # Short, since it is on tens of thousands of rows; MANIFEST.tsv has the
                # full commit, the digests and the AWS file this is a copy of.
                "source": f"{origin.split('@')[0]}@{origin.split('@')[1][:12]} {path}",
                "observed": observed,
                "data": json.loads(raw),
            }
        )
    return entries


def items(data):
    """(item name, location, attributes, price) for every commercial-region price."""
    if "regions" in data:
        # A calculator file as AWS serves it: {"regions": {location: {item: {"price": …}}}}.
        for located in sorted(data["regions"]):
            if located not in REGIONS:
                continue
            for item, value in sorted(data["regions"][located].items()):
                yield item, REGIONS[located], "", value["price"]
        return
    for item in sorted(data):
        for located, price in sorted(data[item].items()):
            m = LOCATION.match(located)
            if not m or m.group("location") not in REGIONS:
                continue
            yield item, REGIONS[m.group("location")], m.group("attributes") or "", price


def instance_of(attributes, from_item):
    m = INSTANCE_ATTRIBUTE.search(attributes)
    return m.group("type") if m else from_item


def rows_of(entry):
    name = entry["name"]
    named = next((table for marker, table in NAMED_ITEMS.items() if marker in name), None)
    for item, region, attributes, price in items(entry["data"]):
        if named is not None:
            if item in named:
                service, key, unit, multiplier = named[item]
                yield (service, region, key, unit, scaled(price, multiplier))
        elif ".ec2." in name:
            m = EC2_ITEM.match(item)
            if m:
                yield ("ec2", region, f"instance:{m.group('type')}", "hour", price)
        elif ".rds-" in name:
            m = RDS_ITEM.match(item)
            if not m or m.group("deployment") == "Multi-AZ readable standbys":
                continue
            engine = RDS_ENGINES[m.group("engine")]
            if m.group("io"):
                engine += ":io-optimized"
            cls = instance_of(attributes, "db." + m.group("class"))
            kind = "instance" if m.group("deployment") == "Single-AZ" else "instance-multi-az"
            yield ("rds", region, f"{kind}:{engine}:{cls}", "hour", price)
        elif ".elasticache." in name:
            m = CACHE_ITEM.match(item)
            if m:
                node = instance_of(attributes, "cache." + m.group("type"))
                yield ("elasticache", region, f"{CACHE_PREFIX[m.group('engine')]}:{node}", "hour", price)


def scaled(price, multiplier):
    """AWS prices some units per request; the book per million. Exact decimal arithmetic."""
    if multiplier == 1:
        return price
    try:
        return format(decimal.Decimal(price) * multiplier, "f")
    except decimal.InvalidOperation:
        return price


def normalise(price):
    """AWS writes ten decimals (`0.0960000000`); the book keeps the value exactly, without
    the trailing zeros."""
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", price):
        return None
    if "." in price:
        price = price.rstrip("0").rstrip(".")
    return price


def generated():
    rows = {}
    conflicts = set()
    for entry in read_manifest():
        for service, region, key, unit, price in rows_of(entry):
            usd = normalise(price)
            if usd is None or usd == "0":
                continue
            slot = (service, region, key)
            if slot in conflicts:
                continue
            row = [service, region, key, unit, usd, entry["source"], entry["observed"]]
            if slot in rows and rows[slot][4] != usd:
                # Two items of AWS's file price the same dimension differently: take
                # neither rather than guess.
                del rows[slot]
                conflicts.add(slot)
                continue
            rows.setdefault(slot, row)
    return rows, conflicts


def field(value):
    return f'"{value}"' if "," in value else value


def build():
    rows, conflicts = generated()
    curated_text = CURATED.read_text(encoding="utf-8")
    curated = list(csv.reader(io.StringIO(curated_text)))
    comments = [r[0] for r in curated if r and r[0].startswith("#")]
    body = [r for r in curated if r and not r[0].startswith("#")]
    if body[0] != HEADER:
        raise GeneratorError(f"{CURATED.name}: the first row must be the header {','.join(HEADER)}")
    replaced = 0
    for r in body[1:]:
        slot = (r[0], r[1], r[2])
        if slot in rows or slot in conflicts:
            replaced += 1
            continue
        rows[slot] = r
    out = io.StringIO()
    out.write("# tollgate AWS price book: on-demand list prices in USD (Linux, shared tenancy, no free tier).\n")
    out.write("# GENERATED by controller/data/generate-prices.py from curated-prices.csv and sources/: do not edit.\n")
    for c in comments:
        if not c.startswith("# version:"):
            out.write(c + "\n")
    out.write(f"# version: {VERSION}\n")
    out.write(",".join(HEADER) + "\n")
    for slot in sorted(rows):
        out.write(",".join(field(v) for v in rows[slot]) + "\n")
    return out.getvalue(), len(rows), replaced, len(conflicts)


def main(argv):
    text, count, replaced, conflicts = build()
    if "--check" in argv:
        if BOOK.read_text(encoding="utf-8") != text:
            print(
                f"{BOOK} is not the generator's output: run python3 controller/data/generate-prices.py",
                file=sys.stderr,
            )
            return 1
        return 0
    BOOK.write_text(text, encoding="utf-8")
    print(
        f"{count} rows ({replaced} curated rows replaced by generated ones, "
        f"{conflicts} dimensions left out for conflicting prices)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except GeneratorError as e:
        print(f"generate-prices: {e}", file=sys.stderr)
        sys.exit(2)
