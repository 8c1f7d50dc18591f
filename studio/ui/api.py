"""The studio's API as `gradio_client` shows it (`Client(url).view_api()`): each endpoint's parameters typed and
described for people, the outputs named.

Gradio derives an endpoint's description from the components its event reads: a parameter's type is the
component's JSON schema (a Slider is a float even where only integers make sense, a Dropdown of characters is a
Literal frozen when the page was built though any saved character is accepted), its default is the component's
first value (so `/stylize(character="pastel")` without factors would send classic's slider values) and a File's
description is the docstring of gradio's FileData class. The page and the API share one handler per event, so
that they cannot drift apart; this module corrects only what the API info says, from one table per endpoint that
each tab registers next to its event (`document`), and the handlers accept what it promises (a factor left out
arrives as None: the character's own default). Output names are the components' labels, set in the tabs.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Optional

_UNSET = object()
JSON_TYPES = {"int": "integer", "str": "string", "float": "number"}


@dataclass(frozen=True)
class Param:
    """How one parameter is shown: its Python type, a sentence for people, and (when given) its default."""

    type: str
    description: str
    default: Any = _UNSET

    @property
    def has_default(self) -> bool:
        return self.default is not _UNSET


def factor(name: str) -> Param:
    """A line/texture/color/warp parameter that, left out, takes the chosen character's own default."""
    return Param("float", f"{name}, 0 to 1; left out: the chosen character's own default", None)


def character_param(default: str) -> Param:
    return Param("str", "a character's name: a built-in one (classic, noir, pastel) or one saved in the Characters "
                 f"tab (`python -m studio characters` lists them); default {default}", default)


def integer(description: str, default: Any = _UNSET) -> Param:
    return Param("int", description, default)


def document(ctx, endpoint: str, **params: Param) -> None:
    """Register how `endpoint`'s parameters are shown (applied by `install`)."""
    ctx.api_docs.setdefault(endpoint, {}).update(params)


def install(app, docs: dict) -> None:
    """Make `app.get_api_info` (what /gradio_api/info and view_api read) show `docs`."""
    original = app.get_api_info

    @functools.wraps(original)  # keeps the signature gradio inspects (its `page` parameter)
    def get_api_info(*args, **kwargs):
        info = original(*args, **kwargs)
        return apply(info, docs)

    app.get_api_info = get_api_info


def apply(info: Optional[dict], docs: dict) -> Optional[dict]:
    if not info:
        return info
    for endpoint, params in docs.items():
        for p in info.get("named_endpoints", {}).get(endpoint, {}).get("parameters", []):
            doc = params.get(p["parameter_name"])
            if doc is None:
                continue
            # gradio_client shows a parameter whose default is None as "<type> | None" itself.
            p["python_type"] = {"type": doc.type, "description": doc.description}
            schema = {**(p.get("type") or {}), "description": doc.description}
            if doc.type in JSON_TYPES:  # a plain type: no list of choices frozen at build time
                schema.pop("enum", None)
                schema["type"] = JSON_TYPES[doc.type] if doc.default is not None else [JSON_TYPES[doc.type], "null"]
            p["type"] = schema
            if doc.has_default:
                p["parameter_has_default"], p["parameter_default"] = True, doc.default
    return info
