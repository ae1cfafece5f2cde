"""The Glue job's Python packages as AWS advises for Glue 5.0 in production: a zip of wheels.

`<distribution>-<version>.gluewheels.zip` holds `wheels/*.whl` and `wheels/requirements.txt` (each wheel's
name, version and sha256). The job's `--additional-python-modules` names that one object in the deploy's
bucket and `--python-modules-installer-option --no-index` keeps pip off every package index, so a run needs
no internet (a private VPC without NAT works) and installs the same bytes every time.

What goes in: stedi's own wheel (built from this checkout, or repacked from the installed distribution)
and, from the lock (glue-requirements.txt: the runtime dependencies and the `glue` extra, exported by
scripts/lock.sh), every wheel for Glue 5.0's Python and platform (CPython 3.11, manylinux up to glibc 2.34,
x86_64), except the libraries Glue 5.0 brings itself (glue-5.0-provided.txt): stedi works with Glue's
versions of those, so upgrading them under Glue's own code would be a risk for nothing. One exception:
pyarrow, which pyiceberg 0.12 needs at >= 18 while Glue 5.0 has 17.0.0. Report-only libraries (altair,
vl-convert) are an extra of their own and not in the lock's Glue set. tests/integration/test_glue_bundle.py
installs the bundle, with pip alone and no index, over Glue's versions in a new Python 3.11 venv and runs
the job from it.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path, PurePosixPath

from stedi._version import DISTRIBUTION, __version__
from stedi.errors import ConfigError

LOCK_FILE = "glue-requirements.txt"
PROVIDED_FILE = "glue-5.0-provided.txt"
BUNDLE_NAME = f"{DISTRIBUTION}-{__version__}.gluewheels.zip"

GLUE_PYTHON = "3.11"
# Glue 5.0 workers run Amazon Linux 2023 (glibc 2.34) on x86_64: pip there takes any manylinux wheel up to 2.34.
GLUE_PLATFORMS = (*(f"manylinux_2_{minor}_x86_64" for minor in range(34, 4, -1)),
                  "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64")
# The environment markers of the lock's lines, as Glue 5.0's Python evaluates them.
GLUE_MARKERS = {"python_version": GLUE_PYTHON, "python_full_version": f"{GLUE_PYTHON}.0", "os_name": "posix",
                "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
                "implementation_name": "cpython", "platform_python_implementation": "CPython"}
# Glue 5.0 has these, but not at a version stedi works with: the bundle brings the locked one.
SHIPPED_OVER_GLUE = {"pyarrow": "pyiceberg 0.12 needs pyarrow >= 18; Glue 5.0 has 17.0.0"}

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the same bytes from the same wheels


@dataclass(frozen=True)
class Pin:
    name: str  # normalised
    version: str
    hashes: tuple[str, ...] = ()

    def requirement(self) -> str:
        return " ".join([f"{self.name}=={self.version}", *(f"--hash=sha256:{h}" for h in self.hashes)])


@dataclass(frozen=True)
class Bundle:
    path: Path
    shipped: tuple[Pin, ...]  # stedi first, then the dependencies by name
    left_to_glue: dict[str, str]  # name -> the version Glue 5.0 has


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _package_text(name: str) -> str:
    return resources.files("stedi.deploy").joinpath(name).read_text(encoding="utf-8")


def locked() -> list[Pin]:
    """The lock's Glue set for Glue 5.0: each line whose markers hold there, with its hashes."""
    from packaging.markers import Marker

    pins: list[Pin] = []
    text = re.sub(r"\\\n", " ", _package_text(LOCK_FILE))
    for line in (line.strip() for line in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        spec, *hashes = line.split("--hash=sha256:")
        requirement, _, marker = spec.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate(GLUE_MARKERS):
            continue
        name, _, version = requirement.strip().partition("==")
        pins.append(Pin(normalise(name), version.strip(), tuple(h.strip() for h in hashes)))
    return pins


def provided() -> dict[str, str]:
    """What Glue 5.0 installs itself (AWS's list), by normalised name."""
    pins = {}
    for line in _package_text(PROVIDED_FILE).splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[normalise(name)] = version.strip()
    return pins


def plan() -> tuple[list[Pin], dict[str, str]]:
    """(the locked pins the bundle ships, {name: Glue's version} of those left to Glue)."""
    glue = provided()
    shipped, left = [], {}
    for pin in locked():
        if pin.name in glue and pin.name not in SHIPPED_OVER_GLUE:
            left[pin.name] = glue[pin.name]
        else:
            shipped.append(pin)
    return shipped, left


def pip_download_args() -> list[str]:
    """pip's options that pick wheels for Glue 5.0's Python and platform, whatever this machine runs."""
    args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", GLUE_PYTHON]
    for platform in GLUE_PLATFORMS:
        args += ["--platform", platform]
    return args


def _pip(args: list[str], what: str) -> None:
    """`python -m pip ARGS`; its own error output (the last lines) in a ConfigError on failure."""
    import importlib.util

    if importlib.util.find_spec("pip") is None:
        raise ConfigError(f"{what} needs pip in stedi's Python environment ({sys.executable}): "
                          f"{sys.executable} -m ensurepip")
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    # SOURCE_DATE_EPOCH: a wheel built from the same checkout has the same bytes
    env = {**os.environ, "PIP_NO_INPUT": "1", "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", "315532800")}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = [line for line in done.stderr.splitlines() if line.strip() and "ignored" not in line][-5:]
        raise ConfigError(f"{what} failed (pip exited {done.returncode}): " + " / ".join(tail))


# -- stedi's own wheel ---------------------------------------------------------------------------------

def _editable_source(dist: metadata.Distribution) -> Path | None:
    """The source folder of an editable install (`pip install -e .`), whose files are not in site-packages."""
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    info = json.loads(text)
    if not info.get("dir_info", {}).get("editable") or not str(info.get("url", "")).startswith("file://"):
        return None
    from urllib.parse import unquote, urlparse

    return Path(unquote(urlparse(info["url"]).path))


def project_wheel(dest: Path) -> Path:
    """stedi's wheel in `dest`: built from the checkout an editable install points at, else repacked from the
    installed files (what `pip install stedi-lakehouse` put in site-packages, as its RECORD lists them)."""
    dist = metadata.distribution(DISTRIBUTION)
    source = _editable_source(dist)
    if source is not None:
        with tempfile.TemporaryDirectory() as build:
            _pip(["wheel", "--quiet", "--no-deps", "--no-build-isolation", "--wheel-dir", build, str(source)],
                 f"building stedi's wheel from {source}")
            built = next(Path(build).glob("*.whl"))
            target = dest / built.name
            target.write_bytes(built.read_bytes())
            return target
    return repack(dist, dest)


_NOT_SHIPPED = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}


def _installed_files(dist: metadata.Distribution) -> Iterator[tuple[str, bytes]]:
    for file in sorted(dist.files or [], key=str):
        parts = PurePosixPath(str(file)).parts
        if parts[0] == ".." or "__pycache__" in parts or str(file).endswith(".pyc"):
            continue  # scripts (installed outside site-packages; entry_points.txt makes them) and bytecode
        if parts[0].endswith(".dist-info") and parts[-1] in _NOT_SHIPPED:
            continue
        yield str(file), Path(str(dist.locate_file(file))).read_bytes()


def repack(dist: metadata.Distribution, dest: Path) -> Path:
    """A pure-Python wheel of an installed distribution, from its files and a new RECORD."""
    name, version = dist.metadata["Name"], dist.version
    info = f"{normalise(name).replace('-', '_')}-{version}.dist-info"
    target = dest / f"{normalise(name).replace('-', '_')}-{version}-py3-none-any.whl"
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as wheel:
        for path, data in _installed_files(dist):
            if path.split("/", 1)[0].endswith(".dist-info"):
                path = f"{info}/{path.split('/', 1)[1]}"  # the folder's name as a wheel spells it
            _write(wheel, path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            writer.writerow([path, f"sha256={digest}", len(data)])
        writer.writerow([f"{info}/RECORD", "", ""])
        _write(wheel, f"{info}/RECORD", record.getvalue().encode())
    return target


def _write(archive: zipfile.ZipFile, name: str, data: bytes, compress: bool = True) -> None:
    entry = zipfile.ZipInfo(name, _ZIP_TIME)
    entry.external_attr = 0o644 << 16
    entry.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    archive.writestr(entry, data)


# -- the bundle ----------------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(out: Path, progress: Callable[[str], None] = lambda _: None) -> Bundle:
    """Write `out/BUNDLE_NAME`: stedi's wheel and the locked wheels Glue 5.0 lacks, for Glue 5.0's platform."""
    shipped, left = plan()
    with tempfile.TemporaryDirectory() as staging:
        wheels = Path(staging)
        progress("building stedi's wheel")
        own = project_wheel(wheels)
        progress(f"fetching {len(shipped)} locked wheels for Glue 5.0 (CPython {GLUE_PYTHON}, manylinux x86_64)")
        requirements = wheels / "locked.txt"
        requirements.write_text("".join(pin.requirement() + "\n" for pin in shipped), encoding="utf-8")
        _pip(["download", "--quiet", "--no-deps", "--require-hashes", *pip_download_args(),
              "--dest", str(wheels), "-r", str(requirements)], "fetching the Glue job's wheels")
        requirements.unlink()
        listed = [Pin(normalise(DISTRIBUTION), __version__, (_sha256(own),)), *sorted(shipped, key=lambda p: p.name)]
        out.mkdir(parents=True, exist_ok=True)
        target = out / BUNDLE_NAME
        partial = target.with_suffix(".partial")
        with zipfile.ZipFile(partial, "w") as archive:
            # Exact pins without hashes: the lock's hashes were checked as the wheels were fetched, and a hash
            # in the file would make pip on Glue demand one for Glue's own libraries too.
            pins = "".join(f"{p.name}=={p.version}\n" for p in listed)
            _write(archive, "wheels/requirements.txt", pins.encode())
            for wheel in sorted(wheels.glob("*.whl")):
                _write(archive, f"wheels/{wheel.name}", wheel.read_bytes(), compress=False)  # zipped already
        partial.replace(target)
    return Bundle(target, tuple(listed), left)


def contents(bundle: Path) -> list[str]:
    """The wheel files in a bundle."""
    with zipfile.ZipFile(bundle) as archive:
        return sorted(PurePosixPath(n).name for n in archive.namelist() if n.endswith(".whl"))
