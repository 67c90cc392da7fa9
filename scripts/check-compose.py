#!/usr/bin/python3
"""Checks docker-compose.yml for first-run failures `docker compose config`
does not catch:

- two services that build the same image tag (parallel builds of one tag
  fail on a fresh machine with "image already exists");
- a service that names an image no service builds, with a pull policy that
  would pull it from a registry although it is local;
- a healthcheck whose command is not in its image: for images built from
  the Dockerfile, the tools its runtime stage installs or copies; for known
  public images, the tools they ship.

Exit status 1 with one line per problem.
"""

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
# Tools of public images used here (what their own documentation promises).
KNOWN_IMAGE_TOOLS = {
    "postgres": {"pg_isready", "psql", "sh"},
}
# Always present in a Debian-based runtime stage.
BASE_TOOLS = {"sh", "test", "cat", "true"}


def runtime_tools(dockerfile: Path) -> set:
    """Tools the Dockerfile's last stage provides: the base image's shell
    tools and the binaries it copies into a bin directory. (Its apt
    packages are libraries; a tool installed by apt would need adding.)"""
    text = dockerfile.read_text()
    last_stage = re.split(r"(?m)^FROM ", text)[-1]
    tools = set(BASE_TOOLS)
    for line in last_stage.splitlines():
        if line.startswith("COPY"):
            for path in line.split()[1:]:
                if "/bin/" in path and not path.endswith("/"):
                    tools.add(path.rsplit("/", 1)[-1])
    return tools


def health_tool(test) -> str | None:
    if isinstance(test, str):
        return test.split()[0] if test.strip() else None
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL":
        return test[1].split()[0]
    if test[0] == "CMD":
        return test[1]
    return test[0]


def main() -> int:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose.get("services", {})
    problems = []
    built = {}
    for name, svc in services.items():
        if "build" in svc:
            tag = svc.get("image", f"<{name}>")
            if tag in built:
                problems.append(f"services {built[tag]} and {name} both build image {tag}: build it once")
            built[tag] = name
    dockerfile_tools = runtime_tools(ROOT / "Dockerfile")
    for name, svc in services.items():
        image = svc.get("image", "")
        local = image in built
        if local and "build" not in svc and svc.get("pull_policy") not in ("never", "build"):
            problems.append(f"service {name} uses the local image {image} but may pull it: set pull_policy: never")
        tool = health_tool((svc.get("healthcheck") or {}).get("test"))
        if tool is None:
            continue
        if local or "build" in svc:
            tools = dockerfile_tools
        else:
            repo = image.split(":")[0].rsplit("/", 1)[-1]
            tools = KNOWN_IMAGE_TOOLS.get(repo)
            if tools is None:
                problems.append(f"service {name}: cannot tell whether image {image} has {tool}")
                continue
        if tool not in tools:
            problems.append(f"service {name}: healthcheck runs {tool}, which image {image or name} lacks")
    for p in problems:
        print(f"check-compose: {p}", file=sys.stderr)
    if not problems:
        print(f"check-compose: {len(services)} services, images built once, healthchecks use tools their images have")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
