"""The image installs pinned, hash-checked dependencies: deploy/*.lock agree with pyproject.toml, the image uses them.

`make lock` regenerates the locks; a change to pyproject.toml's dependencies without it fails here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from tests.unit.deploy.files import DEPLOY, DOCKERFILE, ROOT

#: The image's runtime dependencies: pyproject.toml's [project] dependencies and everything they pull in.
RUNTIME_LOCK = DEPLOY / "requirements.lock"


#: The build backend (pyproject.toml's [build-system] requires), which builds the tickcast wheel in the image.
BUILD_LOCK = DEPLOY / "build-requirements.lock"


DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"


#: The image's interpreter and platform (python:3.11-slim on linux x86_64), for environment markers.
IMAGE_ENVIRONMENT = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}


PINNED = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>\S+)(?P<options>.*)$")


HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}\b")


def pyproject() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def locked(path: Path) -> dict[NormalizedName, tuple[str, int]]:
    """name -> (pinned version, number of sha256 hashes) of a pip requirements file with hashes."""
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing: run `make lock`"
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    pins: dict[NormalizedName, tuple[str, int]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = PINNED.match(line)
        assert match is not None, f"{path.name}: requirement {number} is not pinned with ==: {line[:80]!r}"
        name = canonicalize_name(match["name"])
        assert name not in pins, f"{path.name}: {name} is pinned twice"
        pins[name] = (match["version"], len(HASH.findall(match["options"])))
    return pins


def requirements(specs: list[str]) -> list[Requirement]:
    """The requirements that apply in the image (markers evaluated for it)."""
    parsed = [Requirement(spec) for spec in specs]
    return [req for req in parsed if req.marker is None or req.marker.evaluate(IMAGE_ENVIRONMENT)]


def runtime_requirements() -> list[Requirement]:
    project = pyproject()["project"]
    assert isinstance(project, dict)
    return requirements(project["dependencies"])


def build_requirements() -> list[Requirement]:
    build_system = pyproject()["build-system"]
    assert isinstance(build_system, dict)
    return requirements(build_system["requires"])


@pytest.mark.parametrize(
    ("lock", "direct"),
    [(RUNTIME_LOCK, runtime_requirements), (BUILD_LOCK, build_requirements)],
    ids=["runtime", "build"],
)
def test_every_dependency_is_locked_within_its_range(lock: Path, direct: object) -> None:
    assert callable(direct)
    pins = locked(lock)
    for req in direct():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} (pyproject.toml) is not in {lock.name}: run `make lock`"
        version, _ = pins[name]
        assert req.specifier.contains(version, prereleases=True), (
            f"{lock.name} pins {name}=={version}, outside pyproject.toml's {req}: run `make lock`"
        )


def locked_for_pyproject() -> set[NormalizedName]:
    """The runtime lock's packages that `make lock` (uv) annotates as asked for by pyproject.toml itself."""
    direct, current = set(), None
    for line in RUNTIME_LOCK.read_text(encoding="utf-8").splitlines():
        if match := PINNED.match(line):
            current = canonicalize_name(match["name"])
        elif current is not None and line.lstrip().startswith("#") and "tickcast (pyproject.toml)" in line:
            direct.add(current)
    return direct


def test_the_lock_pins_nothing_for_a_dependency_pyproject_dropped() -> None:
    # A dependency removed from pyproject.toml without `make lock` would stay in the image.
    declared = {canonicalize_name(req.name) for req in runtime_requirements()}
    direct = locked_for_pyproject()
    assert direct, f"{RUNTIME_LOCK.name} names no package as pyproject.toml's: its annotations changed"
    stale = sorted(direct - declared)
    assert not stale, (
        f"{RUNTIME_LOCK.name} pins {stale} for pyproject.toml, which no longer asks for them: run `make lock`"
    )


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, BUILD_LOCK], ids=["runtime", "build"])
def test_every_pin_carries_hashes(lock: Path) -> None:
    unhashed = sorted(name for name, (_, hashes) in locked(lock).items() if hashes == 0)
    assert not unhashed, f"{lock.name}: pins without a sha256 hash (pip --require-hashes rejects them): {unhashed}"


def dockerfile_instructions() -> list[str]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def pip_installs() -> list[str]:
    """Every ``pip install`` or ``pip wheel`` command of the Dockerfile's RUN instructions (split at ``&&``)."""
    runs = [line.removeprefix("RUN ") for line in dockerfile_instructions() if line.startswith("RUN ")]
    commands = [" ".join(part.split()) for run in runs for part in run.split("&&")]
    return [command for command in commands if re.search(r"\bpip (install|wheel)\b", command)]


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, BUILD_LOCK], ids=["runtime", "build"])
def test_the_image_copies_each_lock_and_installs_it_with_hashes_required(lock: Path) -> None:
    relative = lock.relative_to(ROOT).as_posix()
    copies = [line.split()[1:] for line in dockerfile_instructions() if line.startswith("COPY ")]
    destinations = [parts[-1].rstrip("/") for parts in copies if relative in parts[:-1]]
    assert destinations, f"{DOCKERFILE.name} does not COPY {relative}"
    target = destinations[0]
    installed = [cmd for cmd in pip_installs() if re.search(rf"-r {re.escape(target)}(/{lock.name})?\b", cmd)]
    assert installed, f"{DOCKERFILE.name} does not `pip install -r` the copied {lock.name}"
    for command in installed:
        assert "--require-hashes" in command, f"{DOCKERFILE.name} installs {lock.name} without --require-hashes"
        # pip checks no hash of what builds an sdist (its isolated build environment resolves freely).
        assert "--only-binary :all:" in command, f"{DOCKERFILE.name} may build {lock.name}'s sdists unlocked"
    # The build context is an allow-list: a lock it leaves out is no file to COPY.
    allowed = {line.strip().removeprefix("!") for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    assert relative in allowed, f"{DOCKERIGNORE.name} keeps {relative} out of the build context"


def test_every_other_pip_command_in_the_image_resolves_nothing() -> None:
    # A `pip install` of tickcast itself that resolved its dependencies would fetch the newest releases in its
    # ranges, not the locked ones; so would one that builds in an isolated environment (the build backend).
    for command in pip_installs():
        if "--require-hashes" in command:
            continue
        assert "--no-deps" in command, f"the image's `{command}` installs unlocked dependencies"
        assert "--no-build-isolation" in command or ".whl" in command, (
            f"the image's `{command}` builds in an isolated environment with an unlocked build backend"
        )
