"""Route segments <-> GitHub names: ``owner::repo[@ref]`` hosts and ``folder::file.geojson`` ids.

A route segment cannot hold "/" (Django decodes %2F before routing, so an encoded slash does
not help either), so "::" stands for it, as in Koop's GitHub provider and our s3 and arcgis
ids: git refuses ":" in ref names and GitHub in owner and repository names, and "::" is rare in
file names. "/" is accepted too where a name is given
outside a URL (the shell, the Python API).

    parse_host("koopjs::geodata@release::2024")  -> Repository("koopjs", "geodata", "release/2024")
    parse_path("north-america::states.geojson") -> "north-america/states.geojson"
    parse_path("::")                            -> ""   (the repository's root folder)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from koop_app.errors import ProviderError

SEPARATOR = "::"
OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,99})$")
REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
# git check-ref-format: no control characters, space, ~ ^ : ? * [ \ , no "..", no "@{".
BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|^/|/$|\.lock$|^-")


class GitHubNameError(ProviderError):
    """A host or id that cannot name a GitHub repository or path (a 400 to the client)."""

    status = 400
    default_message = "The GitHub repository or path in the URL is not valid."


@dataclass(frozen=True)
class Repository:
    owner: str
    name: str
    ref: str | None = None  # a branch, tag or commit; None: the default branch

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def label(self) -> str:
        """``owner/repo@ref`` for messages (no URL, no secret)."""
        return f"{self.full_name}@{self.ref}" if self.ref else self.full_name

    def api_path(self, path: str) -> str:
        """``/repos/{owner}/{repo}/contents/{path}`` with each part percent-encoded."""
        return (f"/repos/{quote(self.owner, safe='')}/{quote(self.name, safe='')}/contents/"
                f"{quote(path, safe='/')}")


def _slashes(text: str) -> str:
    return text.replace(SEPARATOR, "/")


def parse_host(host: str | None) -> Repository:
    """``owner::repo`` or ``owner::repo@ref`` (``::`` in the ref stands for ``/``)."""
    text = (host or "").strip()
    repo_part, at, ref = text.partition("@")
    owner, _, name = _slashes(repo_part).partition("/")
    if not OWNER.match(owner) or not REPOSITORY.match(name) or name in (".", ".."):
        raise GitHubNameError(details=[f"host {text!r} must be owner::repository or "
                                  "owner::repository@ref"])
    ref = _slashes(ref)
    if at and (not ref or BAD_REF.search(ref)):
        raise GitHubNameError(details=[f"ref {ref!r} is not a valid branch, tag or commit name"])
    return Repository(owner, name, ref or None)


def parse_path(dataset_id: str | None) -> str:
    """The repository path an id names: ``::`` for ``/``; ``::`` or ``.`` alone for the root."""
    parts = [p for p in _slashes((dataset_id or "").strip()).split("/") if p not in ("", ".")]
    if any(p == ".." or any(ord(c) < 32 for c in p) for p in parts):
        raise GitHubNameError(details=[f"path {dataset_id!r} is not a path in a repository"])
    return "/".join(parts)


def route_id(path: str) -> str:
    """The route id of a repository path (the inverse of parse_path)."""
    return path.replace("/", SEPARATOR) or SEPARATOR


def route_host(repository: Repository) -> str:
    host = f"{repository.owner}{SEPARATOR}{repository.name}"
    return f"{host}@{repository.ref.replace('/', SEPARATOR)}" if repository.ref else host
