"""The data folder in the admin: a browser of KOOP["DATA_DIR"] and uploads into it.

``SourceWidget`` is the widget of "location" options (a file path or a URL): the text input,
the data folder's absolute path, a "Browse" listing and an upload button (``files.js``).
``admin_urls(admin_site)`` gives the two JSON views behind it, mounted by ``DatasetAdmin``:

    GET  <admin>/koop_app/dataset/files/?path=parks      -> {"root", "path", "folders", "files"}
    POST <admin>/koop_app/dataset/upload/?folder=uploads -> 201 {"path": "uploads/parks.geojson"}

Both need a staff login and the permission to add or change datasets. Every path is relative
to the data folder and resolved (symlinks included) before use: ``..``, absolute paths, hidden
names and links leading out of the folder are refused. An upload is streamed into a hidden
temporary file beside its target, held to KOOP["MAX_UPLOAD_BYTES"] while it arrives (a larger
Content-Length is refused before the body is read), checked for its format, then linked under
a free name: an existing file is never replaced.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
from django import forms
from django.contrib.admin import AdminSite
from django.contrib.auth import get_permission_codename
from django.core.exceptions import SuspiciousOperation
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopUpload
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.middleware.csrf import CsrfViewMiddleware
from django.urls import NoReverseMatch, URLPattern, path, reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from koop_app.conf import koop_settings
from koop_app.models import Dataset

# The files the providers read (GeoJSON and CSV), by suffix: what is listed and accepted.
DATA_SUFFIXES: dict[str, str] = {".geojson": "geojson", ".json": "geojson", ".csv": "csv",
                                 ".tsv": "csv", ".txt": "csv"}
# Where uploads go when the browser is not open on another folder.
UPLOAD_FOLDER = "uploads"
# A multipart body is the file plus boundaries and part headers: allowed on top of the limit
# before a Content-Length is refused unread (the exact limit is kept while streaming).
MULTIPART_SLACK = 64 * 1024
# A folder with more entries is cut (the listing says so) rather than sent whole.
MAX_LISTED = 2000
# GeoJSON up to this size is parsed whole to check it; larger files only by their first byte
# (parsing a large file into Python objects costs many times its size in memory).
FULL_JSON_CHECK_BYTES = 16 * 1024 * 1024
# How much of a CSV is read to check it is text with a header row.
CSV_HEAD_BYTES = 64 * 1024
_TEMP_PREFIX = ".koop-upload-"
_UNSAFE = re.compile(r"[^\w.\-]+")


class FolderError(Exception):
    """A refused path, file or upload: the HTTP status and a message for the person."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def data_root() -> Path:
    """The data folder, resolved (it may itself be a link)."""
    setting = koop_settings.DATA_DIR
    if not setting:
        raise FolderError(404, "Local files are disabled: KOOP['DATA_DIR'] is not set. "
                               "Use an http(s) URL as the source.")
    return Path(setting).resolve()


def relative_parts(relative: str) -> tuple[str, ...]:
    """The folder names of ``relative`` ("a/b", "" for the data folder itself), or why not."""
    text = relative.strip().replace("\\", "/")
    if "\0" in text:
        raise FolderError(400, "The path holds a NUL character.")
    if text.startswith("/") or re.match(r"^[A-Za-z]:", text):
        raise FolderError(400, f"{relative!r} is an absolute path: give a path inside the "
                               "data folder.")
    parts = tuple(part for part in PurePosixPath(text).parts if part not in ("", "."))
    for part in parts:
        if part == "..":
            raise FolderError(400, f"{relative!r} leaves the data folder ('..' is refused).")
        if part.startswith("."):
            raise FolderError(400, f"{relative!r} names a hidden file or folder.")
    return parts


def inside(root: Path, relative: str) -> tuple[Path, str]:
    """(resolved path, clean relative path) of ``relative`` under ``root``; a link that leads
    out of the data folder is refused."""
    parts = relative_parts(relative)
    resolved = root.joinpath(*parts).resolve()
    if resolved != root and root not in resolved.parents:
        raise FolderError(403, f"{relative!r} leads outside the data folder.")
    return resolved, "/".join(parts)


def _modified(stat: os.stat_result) -> str:
    return datetime.fromtimestamp(stat.st_mtime, tz=UTC).isoformat(timespec="seconds")


def list_folder(relative: str = "") -> dict[str, Any]:
    """The readable data files and folders in ``relative`` (hidden ones and links leading out
    of the data folder left out), folders first, each sorted by name."""
    root = data_root()
    folder, clean = inside(root, relative)
    if not folder.is_dir():
        if clean == "" and not folder.exists():  # not created yet: empty, uploads create it
            return _listing(root, clean, [], [], False)
        raise FolderError(404, f"There is no folder {clean!r} in the data folder.")
    folders: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: (e.name.casefold(), e.name))
    except PermissionError:
        raise FolderError(403, f"The folder {clean or '/'!r} cannot be read.") from None
    truncated = False
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if len(folders) + len(files) >= MAX_LISTED:
            truncated = True
            break
        item = _entry(root, entry, f"{clean}/{entry.name}" if clean else entry.name)
        if item is not None:
            (folders if item.pop("folder") else files).append(item)
    return _listing(root, clean, folders, files, truncated)


def _entry(root: Path, entry: os.DirEntry[str], relative: str) -> dict[str, Any] | None:
    """A listing row for ``entry``, or None when it is not for the person to pick."""
    try:
        target = Path(entry.path).resolve(strict=True)
        stat = target.stat()
    except (OSError, RuntimeError):  # broken link, loop, vanished
        return None
    if target != root and root not in target.parents:
        return None
    if target.is_dir():
        if not os.access(target, os.R_OK | os.X_OK):
            return None
        return {"folder": True, "name": entry.name, "path": relative,
                "modified": _modified(stat)}
    kind = DATA_SUFFIXES.get(Path(entry.name).suffix.lower())
    if kind is None or not target.is_file() or not os.access(target, os.R_OK):
        return None
    return {"folder": False, "name": entry.name, "path": relative, "kind": kind,
            "size": stat.st_size, "modified": _modified(stat)}


def _listing(root: Path, clean: str, folders: list[dict[str, Any]],
             files: list[dict[str, Any]], truncated: bool) -> dict[str, Any]:
    parent = None if clean == "" else "/".join(clean.split("/")[:-1])
    return {"root": str(root), "path": clean, "parent": parent, "folders": folders,
            "files": files, "truncated": truncated}


def safe_filename(name: str) -> str:
    """``name`` as a plain file name: no folders, no hidden dot, no odd characters, the
    suffix in lower case ("Parcs de Montréal.GeoJSON" -> "Parcs_de_Montréal.geojson")."""
    base = unicodedata.normalize("NFKC", name.replace("\\", "/").rsplit("/", 1)[-1])
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = _UNSAFE.sub("_", stem).strip("._-")[:100] or "upload"
    suffix = _UNSAFE.sub("", suffix).lower()[:10]
    return f"{stem}.{suffix}" if suffix else stem


def check_content(path: Path, kind: str, size: int) -> None:
    """Refuse (415) a file whose first bytes are not the format its suffix says."""
    if kind == "geojson":
        _check_json(path, size)
    else:
        _check_csv(path)


def _check_json(path: Path, size: int) -> None:
    with path.open("rb") as handle:
        head = handle.read(FULL_JSON_CHECK_BYTES + 1 if size <= FULL_JSON_CHECK_BYTES else 4096)
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not text.startswith(b"{"):
        raise FolderError(415, "The file is not GeoJSON: it does not start with a JSON object "
                               "('{').")
    if size > FULL_JSON_CHECK_BYTES:
        return
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise FolderError(415, f"The file is not valid JSON ({exc}).") from None
    if "layers" in document or "tables" in document:  # a multi-layer document
        return
    if document.get("type") not in ("FeatureCollection", "Feature"):
        raise FolderError(415, "The file is JSON but not GeoJSON: its \"type\" is "
                               f"{document.get('type')!r}, not \"FeatureCollection\" or "
                               "\"Feature\".")


def _check_csv(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(CSV_HEAD_BYTES)
    if b"\0" in head:
        raise FolderError(415, "The file is not CSV text: it holds binary data.")
    first = head.removeprefix(b"\xef\xbb\xbf").lstrip(b"\r\n").split(b"\n", 1)[0].strip()
    if not first:
        raise FolderError(415, "The CSV file is empty: it needs a header row with the column "
                               "names.")
    if first[:1] in (b"{", b"[", b"<"):
        raise FolderError(415, "The file is not CSV: it starts like JSON or HTML, not with a "
                               "header row.")


def place(temp: Path, folder: Path, name: str) -> Path:
    """Move ``temp`` to ``folder/name``, or ``name-2``, ``name-3``... when taken: a link
    made under a free name is atomic and never replaces a file."""
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    for number in range(1, 1000):
        candidate = name if number == 1 else f"{stem}-{number}{dot}{suffix}"
        target = folder / candidate
        try:
            os.link(temp, target)
        except FileExistsError:
            continue
        except OSError as exc:  # no hard links on this file system: reserve, then replace
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK):
                raise
            try:
                os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            except FileExistsError:
                continue
            os.replace(temp, target)
            return target
        temp.unlink()
        return target
    raise FolderError(400, f"Too many files named like {name!r} in this folder.")


class DataFolderUploadHandler(FileUploadHandler):
    """Streams the ``file`` field into a hidden temporary file in the target folder, stopping
    (without reading the rest) when it grows past ``limit`` bytes."""

    def __init__(self, request: HttpRequest, folder: Path, limit: int) -> None:
        super().__init__(request)
        self.folder = folder
        self.limit = limit
        self.received = 0
        self.too_large = False
        self.refused: FolderError | None = None
        self.temp: Path | None = None
        self._handle: Any = None

    def new_file(self, field_name: str, file_name: str, *args: Any, **kwargs: Any) -> None:
        super().new_file(field_name, file_name, *args, **kwargs)
        if field_name != "file" or self.temp is not None:
            raise SkipFile  # one file per upload
        suffix = Path(safe_filename(file_name)).suffix.lower()
        if suffix not in DATA_SUFFIXES:
            self.refused = FolderError(415, f"{file_name!r} is not a file the providers read: "
                                            f"upload {', '.join(DATA_SUFFIXES)} files.")
            raise StopUpload(connection_reset=False)  # small enough: read to the end, answer
        handle, name = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=".part", dir=self.folder)
        self._handle = os.fdopen(handle, "wb")
        self.temp = Path(name)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.too_large = True
            raise StopUpload(connection_reset=True)  # stop reading the body now
        self._handle.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> UploadedFile:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        return UploadedFile(name=self.file_name, size=file_size,
                            content_type=self.content_type)

    def discard(self) -> None:
        """Remove the temporary file (after a refusal or an error)."""
        if self._handle is not None and not self._handle.closed:
            self._handle.close()
        if self.temp is not None:
            with contextlib.suppress(FileNotFoundError):
                self.temp.unlink()


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def may_manage_files(request: HttpRequest) -> bool:
    """Staff who may add or change datasets may browse and fill the data folder."""
    opts = Dataset._meta
    return any(request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")
               for action in ("add", "change"))


@require_GET
def files_view(request: HttpRequest) -> JsonResponse:
    """The listing of one folder of the data folder (``?path=``), as JSON."""
    if not may_manage_files(request):
        return _error(403, "You may not add or change datasets, so not browse the data folder.")
    try:
        return JsonResponse(list_folder(request.GET.get("path", "")))
    except FolderError as exc:
        return _error(exc.status, exc.message)


def _never_called(request: HttpRequest) -> HttpResponse:
    return HttpResponse()


@csrf_exempt  # checked below, before the body is read (the middleware would read it first)
@require_POST
def upload_view(request: HttpRequest) -> JsonResponse:
    """Save the multipart ``file`` into ``?folder=`` (default ``uploads``) of the data folder."""
    if not may_manage_files(request):
        return _error(403, "You may not add or change datasets, so not upload data files.")
    # The token comes in the X-CSRFToken header: an empty POST keeps the check from parsing
    # the body, so a request without a token costs nothing.
    request.POST = QueryDict()
    if CsrfViewMiddleware(_never_called).process_view(request, _never_called, (), {}):
        return _error(403, "The CSRF check failed: reload the page and try again.")
    limit = int(koop_settings.MAX_UPLOAD_BYTES)
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return _error(400, "The Content-Length header is not a number.")
    if length > limit + MULTIPART_SLACK:
        return _error(413, f"The file is too large: uploads are limited to "
                           f"{_human(limit)} (KOOP['MAX_UPLOAD_BYTES']).")
    if not request.content_type.startswith("multipart/form-data"):
        return _error(400, "Send the file as multipart/form-data, in a field named 'file'.")
    try:
        root = data_root()
        folder = upload_folder(root, request.GET.get("folder", UPLOAD_FOLDER))
    except FolderError as exc:
        return _error(exc.status, exc.message)
    handler = DataFolderUploadHandler(request, folder, limit)
    try:
        return _save_upload(request, handler, root, folder, limit)
    finally:
        handler.discard()


def upload_folder(root: Path, relative: str) -> Path:
    """The folder an upload goes to, created when missing."""
    folder, clean = inside(root, relative)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise FolderError(400, f"{clean!r} is a file, not a folder.") from None
    except OSError as exc:
        raise FolderError(403, f"The folder {clean!r} cannot be created: {exc.strerror}.") \
            from None
    inside(root, clean)  # again: a link may have appeared while the folders were made
    return folder


def _save_upload(request: HttpRequest, handler: DataFolderUploadHandler, root: Path,
                 folder: Path, limit: int) -> JsonResponse:
    request.upload_handlers = [handler]
    try:
        request.parse_file_upload(request.META, request)
    except (MultiPartParserError, SuspiciousOperation, OSError) as exc:
        if not handler.too_large:
            return _error(400, f"The upload could not be read: {exc}.")
    if handler.too_large:
        return _error(413, f"The file is too large: uploads are limited to {_human(limit)} "
                           "(KOOP['MAX_UPLOAD_BYTES']).")
    if handler.refused is not None:
        return _error(handler.refused.status, handler.refused.message)
    if handler.temp is None or handler.file_name is None:
        return _error(400, "No file came with the upload (a field named 'file').")
    name = safe_filename(handler.file_name)
    size = handler.temp.stat().st_size
    try:
        check_content(handler.temp, DATA_SUFFIXES[Path(name).suffix.lower()], size)
        os.chmod(handler.temp, 0o644)  # mkstemp's 0600 would hide it from other users' workers
        target = place(handler.temp, folder, name)
    except FolderError as exc:
        return _error(exc.status, exc.message)
    relative = target.relative_to(root).as_posix()
    renamed = target.name != name
    message = f"Uploaded {handler.file_name} ({_human(size)}) as {relative}"
    if renamed:
        message += f": a file named {name} was already there, so it was not replaced"
    return JsonResponse({"path": relative, "name": target.name, "size": size,
                         "renamed": renamed, "message": message + "."}, status=201)


def _human(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


def admin_urls(admin_site: AdminSite) -> list[URLPattern]:
    """The listing and upload views behind ``admin_site``'s login, for ``get_urls``."""
    view: Callable[..., Any] = admin_site.admin_view
    return [path("files/", view(files_view), name="koop_app_dataset_files"),
            path("upload/", view(upload_view), name="koop_app_dataset_upload")]


class SourceWidget(forms.TextInput):
    """A path relative to the data folder, or an http(s) URL, with the folder's browser and
    an upload button (see files.js). ``admin_site`` names the admin whose views it calls."""

    template_name = "koop_app/widgets/source.html"

    class Media:
        js = ["koop_app/files.js"]
        css = {"all": ["koop_app/files.css"]}

    def __init__(self, attrs: dict[str, Any] | None = None, admin_site: str = "admin") -> None:
        super().__init__({"class": "vTextField", "autocomplete": "off",
                          "data-koop-source-input": True,
                          "placeholder": "parks.geojson or https://example.org/parks.geojson",
                          **(attrs or {})})
        self.admin_site = admin_site

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        setting = koop_settings.DATA_DIR
        urls = None  # no data folder, or rendered outside the admin: the plain input
        if setting:
            with contextlib.suppress(NoReverseMatch):
                urls = {"files": reverse(f"{self.admin_site}:koop_app_dataset_files"),
                        "upload": reverse(f"{self.admin_site}:koop_app_dataset_upload")}
        context["koop"] = {
            "data_dir": str(Path(setting).resolve()) if setting else "",
            "urls": urls,
            "upload_folder": UPLOAD_FOLDER,
            "max_upload": int(koop_settings.MAX_UPLOAD_BYTES),
            "max_upload_text": _human(int(koop_settings.MAX_UPLOAD_BYTES)),
            "accept": ",".join(DATA_SUFFIXES),
        }
        return context
