"""What `stedi deploy aws` is asked for: a bucket, a prefix, a schedule and a region, each checked against
AWS's rules (S3's bucket names, IAM-safe prefixes, Glue's cron) before anything is written."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from stedi.errors import ConfigError

DEFAULT_SCHEDULE = "cron(0 2 * * ? *)"  # every day at 02:00 UTC


@dataclass(frozen=True)
class Deployment:
    """What `stedi deploy aws` was asked for, validated."""

    bucket: str
    prefix: str = ""  # without slashes at either end; "" is the bucket's top
    schedule: str = DEFAULT_SCHEDULE
    region: str | None = None
    existing_bucket: bool = False

    @property
    def home(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def uri(self, folder: str) -> str:
        """`s3://B/P/<folder>`: where a part of the layout lives."""
        return f"{self.home}/{folder}"

    @property
    def key_prefix(self) -> str:
        """The keys under the root start with this: "P/", or "" at the bucket's top."""
        return f"{self.prefix}/" if self.prefix else ""


def deployment(bucket: str, prefix: str = "", schedule: str | None = None, region: str | None = None,
               existing_bucket: bool = False) -> Deployment:
    """A validated Deployment; a ConfigError naming what is wrong otherwise."""
    return Deployment(check_bucket(bucket), check_prefix(prefix), check_schedule(schedule or DEFAULT_SCHEDULE),
                      check_region(region), existing_bucket)


# -- validation ---------------------------------------------------------------------------------------

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_RESERVED_BUCKET_STARTS = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_BUCKET_ENDS = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")


def check_bucket(name: str) -> str:
    """S3's rules for a general purpose bucket's name."""
    rules = "3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit"
    if name.startswith("s3://"):
        raise ConfigError(f"--bucket {name!r}: give the bucket's name alone (the prefix goes in --prefix)")
    if not _BUCKET.fullmatch(name):
        raise ConfigError(f"--bucket {name!r} is not a valid S3 bucket name: {rules}")
    if ".." in name or ".-" in name or "-." in name:
        raise ConfigError(f"--bucket {name!r} is not a valid S3 bucket name: no two dots, or a dot and a hyphen, "
                          "next to each other")
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        pass
    else:
        raise ConfigError(f"--bucket {name!r} is not a valid S3 bucket name: it may not look like an IP address")
    if name.startswith(_RESERVED_BUCKET_STARTS) or name.endswith(_RESERVED_BUCKET_ENDS):
        raise ConfigError(f"--bucket {name!r} is not a valid S3 bucket name: its start or end is reserved by AWS")
    return name


def check_prefix(prefix: str) -> str:
    """The root's key prefix without slashes at its ends. Only letters, digits, '.', '_', '-' in each part:
    the prefix goes into IAM ARNs and conditions, where '*' and '?' are wildcards, and into Fn::Sub."""
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    parts = stripped.split("/")
    bad = [p for p in parts if not _SEGMENT.fullmatch(p) or p in (".", "..")]
    if bad:
        raise ConfigError(f"--prefix {prefix!r} is not usable: each part between slashes must be letters, digits, "
                          f"'.', '_' or '-' (and not '.' or '..'); {bad[0]!r} is not")
    if len(stripped) > 512:
        raise ConfigError(f"--prefix is {len(stripped)} characters long; keep it under 512")
    return stripped


# AWS's cron: minutes hours day-of-month month day-of-week year, one of the two days "?"
_CRON_FIELDS = (
    ("minutes", r"[0-9,*/-]+", 0, 59),
    ("hours", r"[0-9,*/-]+", 0, 23),
    ("day-of-month", r"[0-9,*/?LW-]+", 1, 31),
    ("month", r"[0-9A-Za-z,*/-]+", 1, 12),
    ("day-of-week", r"[0-9A-Za-z,*/?L#-]+", 1, 7),
    ("year", r"[0-9,*/-]+", 1970, 2199),
)


def check_schedule(schedule: str) -> str:
    """`cron(...)` of AWS's six fields (or the six fields alone); the expression as Glue takes it."""
    text = schedule.strip()
    inner = text[5:-1] if text.startswith("cron(") and text.endswith(")") else text
    fields = inner.split()
    example = "e.g. 'cron(0 2 * * ? *)', every day at 02:00 UTC"
    if len(fields) != 6:
        raise ConfigError(f"--schedule {schedule!r} must be AWS's cron with six fields (minutes hours day-of-month "
                          f"month day-of-week year), {example}")
    for value, (name, chars, low, high) in zip(fields, _CRON_FIELDS, strict=True):
        if not re.fullmatch(chars, value):
            raise ConfigError(f"--schedule {schedule!r}: the {name} field {value!r} is not valid, {example}")
        numbers = [int(n) for n in re.findall(r"(?<![/#])\b[0-9]+", value)]  # not increments (*/15) or nth (#2)
        if any(n < low or n > high for n in numbers):
            raise ConfigError(f"--schedule {schedule!r}: the {name} field {value!r} is out of range "
                              f"({low} to {high})")
    if (fields[2] == "?") == (fields[4] == "?"):
        raise ConfigError(f"--schedule {schedule!r}: exactly one of day-of-month and day-of-week must be '?', "
                          f"{example}")
    return f"cron({' '.join(fields)})"


def check_region(region: str | None) -> str | None:
    if region is not None and not _REGION.fullmatch(region):
        raise ConfigError(f"--region {region!r} is not an AWS region name such as eu-west-1")
    return region
