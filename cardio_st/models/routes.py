"""Load one route of a saved sentence-transformers Router as a model of its own, reading only that
route's files. Leaves out building and training routers (asymmetric_router, models.care).

Why: an asymmetric retriever's query server needs the small query encoder and nothing else. Loading
the saved Router with ``SentenceTransformer(path)`` would read every route, the 8B document encoder
included; [load_route][cardio_st.models.routes.load_route] reads ``modules.json`` and the Router's
``router_config.json``, then loads only the modules that the route lists, with sentence-transformers'
own module classes, into a plain ``SentenceTransformer`` carrying the model's prompts. Its
embeddings equal the full model's ``encode_query`` (or ``encode_document``) exactly.

sentence-transformers has no public way to load one route (``Router.load`` loads them all), so this
reads the Router's saved layout and loads each module as ``Router.load`` does; both details are
named in [cardio_st.compat][cardio_st.compat], whose tests check them against ``Router.load``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cardio_st.compat import ROUTER_CONFIG, ROUTER_TYPES, load_router_module
from cardio_st.errors import CardioSTError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["SavedLayout", "load_route", "read_layout"]

_SETTINGS = "config_sentence_transformers.json"


@dataclass(frozen=True)
class SavedLayout:
    """What a saved sentence-transformers folder is made of, read from its JSON files alone.

    Attributes:
        folder: The model folder.
        modules: The entries of ``modules.json``.
        router: Index in ``modules`` of the one Router, or None for a model without routes.
        router_config: The Router's ``router_config.json`` (``types``, ``structure``, ``parameters``).
        settings: ``config_sentence_transformers.json`` (prompts, similarity function), or ``{}``.
    """

    folder: Path
    modules: list[dict[str, Any]]
    router: int | None = None
    router_config: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def routes(self) -> list[str]:
        """The route names (``["query", "document"]`` for CARE), or ``[]`` without a Router."""
        return list(self.router_config.get("structure", {}))

    def _router_path(self) -> str:
        return self.modules[self.router]["path"] if self.router is not None else ""

    def route_parts(self, route: str) -> list[str] | None:
        """Subfolders (relative to ``folder``) holding the modules that embedding through ``route``
        runs: the route's own and any module outside the Router. None for a model without routes:
        the whole folder is the route."""
        if self.router is None:
            return None
        self._check_route(route)
        base = self._router_path()
        parts = [_join(base, module_id) for module_id in self.router_config["structure"][route]]
        return parts + [entry["path"] for i, entry in enumerate(self.modules) if i != self.router]

    def route_description(self, route: str) -> dict[str, Any]:
        """What, besides its modules' files, decides a route's embeddings: the module types in order
        and the route's prompt (the configuration files a model without routes has are in its files)."""
        if self.router is None:
            return {}
        self._check_route(route)
        types = self.router_config["types"]
        return {
            "route": [types[module_id] for module_id in self.router_config["structure"][route]],
            "outside": [
                (entry["path"], entry["type"]) for i, entry in enumerate(self.modules) if i != self.router
            ],
            "router_at": self.router,
            "prompt": (self.settings.get("prompts") or {}).get(route),
        }

    def route_on_disk(self, route: str) -> bool:
        """Whether the route's module folders are all here (a query server may ship without the
        document encoder)."""
        parts = self.route_parts(route)
        return parts is None or all(
            (self.folder / part).is_dir() and any((self.folder / part).iterdir()) for part in parts
        )

    def _check_route(self, route: str) -> None:
        if route not in self.routes:
            raise CardioSTError(
                f"{self.folder} has no route {route!r} (its routes: {', '.join(self.routes)}): "
                "pass one of those"
            )


def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf8"))
    except (OSError, ValueError) as error:
        raise CardioSTError(
            f"cannot read {path} ({error}): is this a complete sentence-transformers folder?"
        ) from error


def read_layout(folder: str | os.PathLike) -> SavedLayout:
    """Read a saved sentence-transformers folder's structure without loading any weights.

    Raises:
        CardioSTError: for a folder without ``modules.json``, or with more than one Router.
    """
    folder = Path(folder)
    if not (folder / "modules.json").is_file():
        raise CardioSTError(
            f"{folder} has no modules.json: pass a folder saved by sentence-transformers "
            "(model.save(path)) or cardio-st"
        )
    modules = _read_json(folder / "modules.json")
    routers = [i for i, entry in enumerate(modules) if entry.get("type") in ROUTER_TYPES]
    if len(routers) > 1:
        raise CardioSTError(f"{folder} has {len(routers)} Routers: cardio-st reads models with at most one")
    settings = _read_json(folder / _SETTINGS) if (folder / _SETTINGS).is_file() else {}
    if not routers:
        return SavedLayout(folder, modules, settings=settings)
    config_path = folder / _join(modules[routers[0]]["path"], ROUTER_CONFIG)
    return SavedLayout(folder, modules, routers[0], _read_json(config_path), settings)


def _load_module(folder: Path, subfolder: str, type_name: str):
    if not type_name.startswith("sentence_transformers."):
        raise CardioSTError(
            f"{folder / subfolder} is a {type_name}, not a sentence-transformers module: load the whole "
            "model with SentenceTransformer(path, trust_remote_code=True) instead"
        )
    return load_router_module(folder, subfolder, type_name)


def load_route(
    folder: str | os.PathLike, route: str, *, device: str | None = None, layout: SavedLayout | None = None
) -> SentenceTransformer:
    """The modules of one route of a saved Router, as a ``SentenceTransformer`` of their own.

    Only the files of that route (and of modules outside the Router) are read: the query server of an
    asymmetric retriever never touches the document encoder's weights. The model keeps the saved
    prompts, so its ``encode_query`` (route ``"query"``) or ``encode_document`` (``"document"``) equals
    the full model's. A model without a Router is loaded whole: every route is the model itself.

    Args:
        folder: A saved sentence-transformers folder, e.g. a
            [care_model][cardio_st.models.care.care_model]'s.
        route: ``"query"`` or ``"document"`` (or another route of the Router).
        device: ``"cpu"``, ``"cuda"``, ...; None lets sentence-transformers choose.
        layout: The folder's [read_layout][cardio_st.models.routes.read_layout], if already read.

    Raises:
        CardioSTError: for a folder that is not a sentence-transformers model, an unknown route, or a
            route made of module classes outside sentence-transformers.

    Example:
        ```python
        from cardio_st.models.routes import load_route

        query_encoder = load_route("care-minilm-mpnet", "query")   # MiniLM only: MPNet stays on disk
        query_encoder.encode_query(["heart attack"])
        ```
    """
    from sentence_transformers import SentenceTransformer

    folder = Path(folder)
    layout = layout or read_layout(folder)
    if layout.router is None:
        return SentenceTransformer(str(folder), device=device)
    layout._check_route(route)
    types, base = layout.router_config["types"], layout._router_path()
    inner = [
        _load_module(folder, _join(base, module_id), types[module_id])
        for module_id in layout.router_config["structure"][route]
    ]
    outer = [
        None if i == layout.router else _load_module(folder, entry["path"], entry["type"])
        for i, entry in enumerate(layout.modules)
    ]
    modules = [*outer[: layout.router], *inner, *outer[layout.router + 1 :]]
    settings = layout.settings
    return SentenceTransformer(
        modules=modules,
        device=device,
        prompts=settings.get("prompts") or None,
        default_prompt_name=settings.get("default_prompt_name"),
        similarity_fn_name=settings.get("similarity_fn_name"),
    )
