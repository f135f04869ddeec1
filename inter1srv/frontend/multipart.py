"""A small ``multipart/form-data`` parser (the whole body is in memory already; run it off the loop)."""

from __future__ import annotations

from dataclasses import dataclass, field


class MultipartError(ValueError):
    pass


@dataclass
class FilePart:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Form:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, FilePart] = field(default_factory=dict)

    def values(self, *names: str) -> list[str]:
        out: list[str] = []
        for name in names:
            out += self.fields.get(name, [])
        return out


def boundary_of(content_type: str) -> str:
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise MultipartError("The body must be multipart/form-data.")
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip().strip('"')
    raise MultipartError("The multipart Content-Type has no boundary.")


def _disposition(value: str) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in value.split(";")[1:]:
        name, _, v = item.strip().partition("=")
        params[name.strip().lower()] = v.strip().strip('"')
    return params


def parse(body: bytes, content_type: str) -> Form:
    delimiter = b"--" + boundary_of(content_type).encode("latin-1")
    parts = body.split(delimiter)
    if len(parts) < 3 or not parts[-1].startswith(b"--"):
        raise MultipartError("The multipart body is incomplete (no closing boundary).")
    form = Form()
    for raw in parts[1:-1]:
        if raw.startswith(b"\r\n"):
            raw = raw[2:]
        head, sep, content = raw.partition(b"\r\n\r\n")
        if not sep:
            raise MultipartError("A multipart part has no header block.")
        if content.endswith(b"\r\n"):
            content = content[:-2]
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        disposition = _disposition(headers.get("content-disposition", ""))
        name = disposition.get("name")
        if not name:
            raise MultipartError("A multipart part has no name.")
        if "filename" in disposition:
            form.files[name] = FilePart(disposition["filename"], headers.get("content-type", ""), content)
        else:
            form.fields.setdefault(name, []).append(content.decode("utf-8", "replace"))
    return form
