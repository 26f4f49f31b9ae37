"""Synthetic shops for benchmarks: a catalogue and its behaviour, of any size, in the interchange
format (``products.csv``, ``events.csv``; docs/ingestion.md "Files").

    .venv/bin/python bench/shopgen.py --products 10000 --customers 10000 --events 500000 \\
        --out /tmp/shop-10k [--seed 0] [--gzip] [--check] [--embed-check 20000]

A bench tool, never shipped data: recsite never reads its output at run time. What it models, and
every parameter with its default, is described in docs/benchmarks.md ("Synthetic shops"); run
with ``--help`` for the list. In short:

- **Vocabulary** from real product names (``--vocab-from``, default ``../shared/data``): Instacart
  product names per aisle, H&M article names and descriptions per product type, Amazon Office
  titles per category, Online Retail descriptions grouped by their head noun. Each source category
  becomes a leaf category ``department/aisle`` with its own pools of head nouns and modifiers, so
  titles of one category share words.
- **Catalogue**: categories and brands with skewed sizes, Zipf popularity correlated within a
  category, prices, launch times (a share of products appears during the span), a complementary
  "partner" product for each product, a few seasonal and some consumable categories.
- **Customers** with lognormal activity, arrival over the span and a finite lifetime, one to
  three taste categories with a favourite brand in each, and staple products in consumable ones.
- **Sessions**: timestamps drawn from daily, weekly and yearly cycles; each session has an intent
  category; products are viewed, some clicked, added to the cart and bought at checkout (a basket);
  partners of viewed products follow them; staples are bought again; no product is touched before
  its launch.

Output, all in ``--out``: ``products.csv``, ``events.csv`` (both ``.gz`` with ``--gzip``),
``product_meta.csv`` (launch time, popularity weight, partner: ground truth for checks, not part
of the interchange format, ignored by ``manage.py import``) and ``shop.json`` (parameters,
categories, summary). Events are written in time order by default (``--order time``), numbered
``E…`` in that order; files are identical byte for byte for the same parameters and seed.

Memory stays bounded: events are simulated for one slice of customers at a time (about
``--chunk-events`` events), spilled to temporary per-period files and then sorted period by
period, so peak memory depends on the chunk size and the catalogue, not on the number of events.

Importable: ``from shopgen import ShopConfig, generate, shop_stats`` (with ``bench/`` on
``sys.path``, as bench scripts have it) or ``from bench.shopgen import …`` from the repository root.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import gzip
import io
import json
import math
import os
import platform
import queue
import re
import shutil
import sys
import threading
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # Run as a script: recommender and bench as packages.
    sys.path.insert(0, str(REPO))

from bench._support import cpu_model  # noqa: E402

DEFAULT_VOCAB = REPO.parent / "shared" / "data"
EVENT_TYPES = ("view", "click", "add_to_cart", "purchase")
VIEW, CLICK, CART, PURCHASE = range(4)
PRODUCT_COLUMNS = ("product_id", "title", "description", "category", "brand", "price", "tags")
EVENT_COLUMNS = (
    "event_id", "customer_id", "product_id", "event_type", "timestamp", "quantity", "value",
    "session_id",
)  # fmt: skip
META_COLUMNS = ("product_id", "launched_at", "popularity", "partner_id")
# A session starts at least this long before the end of the span, so that it ends inside it.
END_MARGIN_S = 6 * 3600
# Events per spill file on average (time order): each file is sorted in memory on its own.
SPILL_EVENTS = 250_000


def _param(default: Any, help: str, **kwargs: Any) -> Any:
    return field(default=default, metadata={"help": help, **kwargs})


@dataclass(frozen=True)
class ShopConfig:
    """Every knob of the generator. The output is a function of these values (and the
    vocabulary files), so the same config and seed give the same bytes."""

    products: int = _param(10_000, "products in the catalogue")
    customers: int = _param(10_000, "customers, each with at least one event")
    events: int = _param(500_000, "events in total (at least one per customer)")
    seed: int = _param(0, "random seed")
    start: str = _param("2024-01-01", "first day of the span (UTC)")
    end: str = _param("2026-01-01", "day after the span (UTC, exclusive)")
    # Catalogue.
    categories: int = _param(0, "leaf categories; 0: 2*sqrt(products), at most the vocabulary's")
    category_skew: float = _param(0.8, "Zipf exponent of category sizes")
    products_per_brand: float = _param(25.0, "mean products per brand within a category")
    brand_in_title: float = _param(0.5, "share of titles that start with the brand")
    variant_share: float = _param(0.35, "share of titles with a size, pack or colour variant")
    popularity_exponent: float = _param(0.6, "Zipf exponent of product popularity")
    popularity_category_corr: float = _param(
        0.6, "correlation of popularity within a category (0: none, 1: category decides)"
    )
    new_product_share: float = _param(0.3, "share of products launched during the span")
    seasonal_share: float = _param(0.12, "share of categories with a yearly season")
    seasonal_strength: float = _param(1.5, "sharpness of a season: off-season demand exp(-2x)")
    complements: int = _param(2, "complementary categories per category")
    # Customers.
    activity_sigma: float = _param(1.2, "sigma of the lognormal events per customer")
    initial_customer_share: float = _param(0.3, "share of customers active from the start")
    customer_lifetime_days: float = _param(365.0, "mean active lifetime of a customer (days)")
    tastes_max: int = _param(3, "taste categories per customer: 1 to this")
    taste_focus: float = _param(0.8, "share of sessions in one of the customer's tastes")
    brand_loyalty: float = _param(0.4, "share of in-taste picks from the favourite brand")
    staples: int = _param(3, "staple products per consumable taste")
    staple_rate: float = _param(0.8, "share of in-taste picks in consumables that are staples")
    # Sessions and the funnel.
    browse_touches: float = _param(3.0, "mean products viewed per browsing session (geometric)")
    buy_touches: float = _param(8.0, "mean products viewed per buying session (geometric)")
    buy_session_share: float = _param(0.3, "share of sessions that end with a purchase")
    click_rate: float = _param(0.6, "P(click | view) in a buying session")
    cart_rate: float = _param(0.5, "P(add_to_cart | click) in a buying session")
    purchase_rate: float = _param(0.8, "P(purchase | add_to_cart) in a buying session")
    browse_factor: float = _param(0.4, "click and cart rates of browsing sessions, as a factor")
    complement_rate: float = _param(0.15, "share of later views in a complementary category")
    partner_rate: float = _param(0.25, "share of later views that are the previous' partner")
    daily_amplitude: float = _param(0.6, "day/night cycle of activity (peak 20:00 UTC)")
    weekly_amplitude: float = _param(0.15, "weekly cycle of activity (peak on Sunday)")
    yearly_amplitude: float = _param(0.25, "yearly cycle of activity (peak in early December)")
    growth: float = _param(1.0, "customer arrivals grow as t**growth over the span")
    # Output.
    order: str = _param("time", "event order in events.csv", choices=("time", "customer"))
    gzip: bool = _param(False, "gzip the output files")
    gzip_level: int = _param(1, "gzip level (1 fastest)")
    descriptions: bool = _param(True, "write product descriptions")
    chunk_events: int = _param(1_000_000, "events simulated per slice of customers (memory)")
    vocab_from: str = _param(str(DEFAULT_VOCAB), "folder with the vocabulary sources")
    vocab_sources: str = _param(
        "instacart,hm,office,retail,generic", "vocabulary sources to use (comma-separated)"
    )

    def validate(self) -> None:
        """ValueError naming the parameter and the problem."""

        def need(ok: bool, name: str, message: str) -> None:
            if not ok:
                raise ValueError(f"--{name.replace('_', '-')}: {message}")

        need(self.products >= 1, "products", f"must be at least 1, got {self.products}")
        need(self.customers >= 1, "customers", f"must be at least 1, got {self.customers}")
        need(
            self.events >= self.customers,
            "events",
            f"must be at least --customers ({self.customers}), got {self.events}",
        )
        need(
            self.events <= 2000 * self.customers,
            "events",
            f"at most 2,000 per customer on average, got {self.events / self.customers:,.0f}",
        )
        need(self.products < 10**9 and self.customers < 10**9, "products", "below 10**9")
        for name in ("start", "end"):
            try:
                _parse_day(getattr(self, name))
            except ValueError:
                need(False, name, f"not a date YYYY-MM-DD: {getattr(self, name)!r}")
        span = _parse_day(self.end) - _parse_day(self.start)
        need(span >= 7 * 86400, "end", "the span must be at least 7 days")
        need(self.categories >= 0, "categories", "must be >= 0")
        for name in (
            "brand_in_title", "variant_share", "popularity_category_corr", "new_product_share",
            "seasonal_share", "initial_customer_share", "taste_focus", "brand_loyalty",
            "staple_rate", "buy_session_share", "click_rate", "cart_rate", "purchase_rate",
            "browse_factor", "complement_rate", "partner_rate", "daily_amplitude",
            "weekly_amplitude", "yearly_amplitude",
        ):  # fmt: skip
            value = getattr(self, name)
            need(0.0 <= value <= 1.0, name, f"must be between 0 and 1, got {value}")
        for name in (
            "category_skew", "popularity_exponent", "seasonal_strength", "activity_sigma",
            "growth",
        ):  # fmt: skip
            value = getattr(self, name)
            need(0.0 <= value <= 10.0, name, f"must be between 0 and 10, got {value}")
        need(self.products_per_brand >= 1, "products_per_brand", "must be at least 1")
        need(self.customer_lifetime_days > 0, "customer_lifetime_days", "must be > 0")
        need(1 <= self.tastes_max <= 8, "tastes_max", "must be between 1 and 8")
        need(0 <= self.complements <= 8, "complements", "must be between 0 and 8")
        need(1 <= self.staples <= 32, "staples", "must be between 1 and 32")
        for name in ("browse_touches", "buy_touches"):
            value = getattr(self, name)
            need(1.0 <= value <= 100, name, f"must be between 1 and 100, got {value}")
        need(self.order in ("time", "customer"), "order", "must be 'time' or 'customer'")
        need(1 <= self.gzip_level <= 9, "gzip_level", "must be between 1 and 9")
        need(1_000 <= self.chunk_events <= 50_000_000, "chunk_events", "1,000 to 50,000,000")


def _parse_day(text: str) -> int:
    """Seconds since the epoch of midnight UTC on the day ``YYYY-MM-DD``."""
    day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    return int(day.timestamp())


# ---------------------------------------------------------------------------------------------
# Vocabulary: leaf categories with word pools, learned from real product names.

_WORD = re.compile(r"[a-z]+(?:['-][a-z]+)*")
# Kept out of word pools: glue words, and units and codes that read as noise out of context.
STOPWORDS = frozenset(
    """a an and the of for with in on by to from at or as is it its this that these your our
    my you we all new pk pcs pc ct oz lb lbs fl ml kg mm cm inch inches x per pack set sets
    each one two three four five six size sizes vol no assorted unknown generic""".split()  # noqa: SIM905
)
# Never used in generated text: notes of the retail export and words unwelcome in a demo.
BLOCKLIST = frozenset(
    """damaged damages wrong lost found check missing faulty sold adjust adjustment sample
    samples test crushed broken mailout amazon ebay dotcom manual postage fee fees wet
    mouldy rotten unsaleable returned sex sexy drug drugs gun guns kill killer dead death
    bomb nazi slave""".split()  # noqa: SIM905
)
# Retail descriptions end in colours, sizes and patterns more often than in their noun.
NOT_A_HEAD = frozenset(
    """design pink red blue green white black cream ivory gold silver large small mini
    jumbo giant medium retrospot polkadot paisley spotty london vintage heart hearts star
    stars leaf flower flowers girl boy spaceboy assorted colour colours home garden
    christmas regency pantry doily doiley doilies letters love purple orange yellow
    brown grey""".split()  # noqa: SIM905
)
SIZE_VARIANTS = (
    "100 g", "250 g", "500 g", "1 kg", "330 ml", "500 ml", "1 l", "2 l", "Pack of 4",
    "Pack of 6", "Family Size", "Value Pack", "Twin Pack", "Mini",
)  # fmt: skip
OFFICE_VARIANTS = (
    "Pack of 12", "Pack of 50", "Box of 100", "A4", "Letter Size", "Set of 3", "Refill",
    "Black", "Blue", "Assorted Colours", "Large", "Compact",
)  # fmt: skip
GIFT_VARIANTS = (
    "Set of 3", "Set of 6", "Large", "Small", "Pink", "Red", "Blue", "Ivory", "Vintage",
    "Gift Boxed",
)  # fmt: skip
FASHION_VARIANTS = (
    "Black", "White", "Dark Blue", "Light Pink", "Beige", "Grey", "Off White", "Light Blue",
    "Dark Green", "Khaki", "Red", "Navy",
)  # fmt: skip
MIN_TITLES = 8  # Source titles a category needs to get word pools of its own.


@dataclass
class VocabCategory:
    department: str
    aisle: str
    source: str
    heads: Counter[str]
    modifiers: Counter[str]
    lengths: Counter[int]  # Modifiers per source title.
    variants: tuple[str, ...]
    consumable: bool = False
    descriptions: list[str] = field(default_factory=list)
    titles: int = 0

    @property
    def name(self) -> str:
        return f"{self.department}/{self.aisle}"


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in BLOCKLIST]


def _content(words: list[str]) -> list[str]:
    return [w for w in words if len(w) >= 3 and w not in STOPWORDS]


def _label(text: str) -> str:
    """Category path part: lower case, no '/'."""
    return " ".join(_WORD.findall(text.lower().replace("/", " ")))


class _Builder:
    """Accumulates titles per (department, aisle)."""

    def __init__(self, source: str, variants: tuple[str, ...], consumable: bool) -> None:
        self.source = source
        self.variants = variants
        self.consumable = consumable
        self.cats: dict[tuple[str, str], VocabCategory] = {}

    def add(
        self, department: str, aisle: str, head: str, modifiers: list[str], description: str = ""
    ) -> None:
        if not department or not aisle or not head:
            return
        key = (department, aisle)
        cat = self.cats.get(key)
        if cat is None:
            cat = self.cats[key] = VocabCategory(
                department, aisle, self.source, Counter(), Counter(), Counter(),
                self.variants, self.consumable,
            )  # fmt: skip
        cat.heads[head] += 1
        mods = [m for m in dict.fromkeys(modifiers) if m not in head.split()]
        cat.modifiers.update(mods)
        cat.lengths[min(len(mods), 4)] += 1
        cat.titles += 1
        if description and len(cat.descriptions) < 200:
            cat.descriptions.append(description)

    def categories(self) -> list[VocabCategory]:
        kept = []
        for key in sorted(self.cats):
            cat = self.cats[key]
            if cat.titles >= MIN_TITLES and len(cat.modifiers) >= 3:
                kept.append(cat)
        return kept


def _read_csv(path: Path) -> Iterator[dict[str, str]]:
    opener: Callable[..., IO[str]] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as handle:
        yield from csv.DictReader(handle)


def _vocab_instacart(path: Path) -> list[VocabCategory]:
    builder = _Builder("instacart", SIZE_VARIANTS, consumable=True)
    for row in _read_csv(path):
        department, _, aisle = row["category"].partition("/")
        if "missing" in (department, aisle) or aisle == "other":
            continue
        words = _content(_words(row["title"]))
        if len(words) >= 2:
            builder.add(_label(department), _label(aisle), words[-1], words[:-1])
    return builder.categories()


def _vocab_hm(path: Path) -> list[VocabCategory]:
    builder = _Builder("hm", FASHION_VARIANTS, consumable=False)
    for row in _read_csv(path):
        department, aisle = _label(row["product_group_name"]), _label(row["product_type_name"])
        if "unknown" in (department, aisle):
            continue
        head_words = _content(_words(row["product_type_name"]))
        if not head_words:
            continue
        name = _content(_words(row["prod_name"]))
        style = _content(_words(row["colour_group_name"] + " " + row["graphical_appearance_name"]))
        builder.add(
            department, aisle, " ".join(head_words), name + style, row["detail_desc"].strip()
        )
    return builder.categories()


def _vocab_office(path: Path) -> list[VocabCategory]:
    rows = [(row["category"], _words(row["title"])) for row in _read_csv(path)]
    # The titles start and end with the brand ("HP 78 ... Toner HP"); brands are left out.
    first = Counter(words[0] for _, words in rows if words)
    last = Counter(words[-1] for _, words in rows if words)
    brands = {w for w in last if first[w] and last[w] + first[w] >= 3}
    by_cat: dict[str, list[list[str]]] = defaultdict(list)
    for category, words in rows:
        content = [w for w in _content(words) if w not in brands]
        if content:
            by_cat[category].append(content)
    # A category's heads are its most distinctive words (count x inverse category frequency).
    df = Counter(w for titles in by_cat.values() for w in {w for t in titles for w in t})
    builder = _Builder("office", OFFICE_VARIANTS, consumable=False)
    for category in sorted(by_cat):
        titles = by_cat[category]
        counts = Counter(w for t in titles for w in t)
        score = {w: c * math.log(len(by_cat) / df[w]) for w, c in counts.items() if c >= 2}
        heads = sorted(score, key=lambda w: (-score[w], w))[:6]
        if len(heads) < 2:
            continue
        aisle = " ".join(heads[:2])
        for t in titles:
            head = next((w for w in reversed(t) if w in heads), heads[0])
            builder.add("office", aisle, head, [w for w in t if w != head][:6])
    return builder.categories()


def _vocab_retail(path: Path) -> list[VocabCategory]:
    descriptions: set[str] = set()
    for row in _read_csv(path):
        code = row["StockCode"]
        if row["InvoiceNo"].startswith("C") or not code[:1].isdigit():
            continue
        try:
            if float(row["Quantity"]) <= 0 or float(row["UnitPrice"]) < 0:
                continue
        except ValueError:
            continue
        if row["Description"].strip():
            descriptions.add(row["Description"].strip())
    parsed = []
    for text in sorted(descriptions):
        words = _content(_words(text))
        while words and words[-1] in NOT_A_HEAD:
            words.pop()
        if len(words) >= 2:
            parsed.append(words)
    heads = Counter(words[-1] for words in parsed)

    def singular(word: str) -> str:
        for cut in ("es", "s"):
            if word.endswith(cut) and heads.get(word[: -len(cut)], 0) > 0:
                return word[: -len(cut)]
        return word

    base = {w: singular(w) for w in heads}
    size: Counter[str] = Counter()
    for word, count in heads.items():
        size[base[word]] += count
    builder = _Builder("retail", GIFT_VARIANTS, consumable=False)
    for words in parsed:
        head = base[words[-1]]
        if size[head] >= 12:
            builder.add("home gifts", head, head, words[:-1])
    return builder.categories()


def _vocab_generic(path: Path) -> list[VocabCategory]:
    """An interchange ``products.csv`` whose ``category`` is ``department/aisle`` or one name."""
    builder = _Builder("generic", GIFT_VARIANTS, consumable=False)
    for row in _read_csv(path):
        department, _, aisle = (row.get("category") or "").partition("/")
        words = _content(_words(row.get("title") or ""))
        if len(words) >= 2:
            builder.add(
                _label(department), _label(aisle) or "general", words[-1], words[:-1],
                (row.get("description") or "").strip(),
            )  # fmt: skip
    return builder.categories()


# (name, path under --vocab-from, reader). The generic source is a products.csv at the top.
VOCAB_SOURCES: tuple[tuple[str, str, Callable[[Path], list[VocabCategory]]], ...] = (
    ("instacart", "instacart/products_labelled.csv", _vocab_instacart),
    ("hm", "hm_sample/sample_articles_1686_with_desc.csv", _vocab_hm),
    ("office", "amazon_office/products.csv", _vocab_office),
    ("retail", "online_retail/online_retail_2010-12_2011-12.csv.gz", _vocab_retail),
    ("generic", "products.csv", _vocab_generic),
)


def load_vocabulary(folder: str | Path, sources: str = "") -> tuple[list[VocabCategory], list[str]]:
    """The leaf categories of every source found under ``folder``, and the files read.

    FileNotFoundError (naming the files looked for) when no source is found. Cached per
    process: callers must not change what it returns.
    """
    return _load_vocabulary(str(Path(folder).resolve()), sources)


@functools.lru_cache(maxsize=4)
def _load_vocabulary(folder_name: str, sources: str) -> tuple[list[VocabCategory], list[str]]:
    folder = Path(folder_name)
    wanted = {s.strip() for s in sources.split(",") if s.strip()} or {s[0] for s in VOCAB_SOURCES}
    unknown = wanted - {s[0] for s in VOCAB_SOURCES}
    if unknown:
        raise ValueError(f"--vocab-sources: unknown {sorted(unknown)}")
    categories: list[VocabCategory] = []
    read: list[str] = []
    for name, relative, reader in VOCAB_SOURCES:
        path = folder / relative
        if name in wanted and path.is_file():
            categories += reader(path)
            read.append(str(path))
    if not categories:
        looked = ", ".join(r for n, r, _ in VOCAB_SOURCES if n in wanted)
        raise FileNotFoundError(
            f"--vocab-from: no vocabulary source with at least {MIN_TITLES} titles per category "
            f"under {folder} (looked for {looked})"
        )
    unique: dict[str, VocabCategory] = {}
    for cat in categories:  # A name given by two sources keeps the first source's pools.
        unique.setdefault(cat.name, cat)
    return list(unique.values()), read


# ---------------------------------------------------------------------------------------------
# Catalogue.

# Seasonal categories are first those whose name says so (peak day of the year), then random.
SEASON_KEYWORDS = (
    ("christmas", 350), ("swim", 190), ("bikini", 190), ("sandal", 185), ("sunglass", 185),
    ("ice cream", 200), ("flip flop", 190), ("shorts", 180), ("coat", 15), ("scarf", 20),
    ("glove", 15), ("beanie", 15), ("boots", 25), ("garland", 345), ("candle", 330),
    ("hot water", 20), ("soup", 30), ("sun", 190),
)  # fmt: skip
SEASON_PEAKS = (45, 130, 190, 240, 300, 345)  # Valentine's, spring, summer, school, autumn, Xmas
_SYLLABLES = (  # noqa: SIM905
    "ba be bo da de do fa fe fi ga go ka ke ki ko la le li lo lu ma me mi mo na ne ni no nu pa "
    "pe po ra re ri ro ru sa se si so ta te ti to va ve vi vo za zo bri cla dra fla fra gra kra "
    "pra sta tri vel mar lin den ber cor hal mon tes"
).split()
_ENDINGS = (
    "",
    "",
    "n",
    "r",
    "s",
    "x",
    "l",
    "ton",
    "ford",
    "ly",
    "co",
    "ra",
    "na",
    "lo",
    "ia",
    "io",
)


def _draw(cum: np.ndarray, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Indices in [lo, hi) drawn with probabilities proportional to weights, for each row.

    ``cum`` is ``[0, w0, w0+w1, ...]`` over a global array whose groups are contiguous ranges;
    ``u`` is uniform in [0, 1). One binary search per draw, whatever the group sizes.
    """
    value = cum[lo] + u * (cum[hi] - cum[lo])
    index = np.searchsorted(cum, value, side="right") - 1
    return np.clip(index, lo, hi - 1)


def _cumulative(weights: np.ndarray) -> np.ndarray:
    cum = np.zeros(len(weights) + 1, dtype=np.float64)
    np.cumsum(weights, out=cum[1:])
    return cum


def _zipf_weights(n: int, exponent: float) -> np.ndarray:
    return 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent


def _display(word: str) -> str:
    return word[:1].upper() + word[1:]


def _brand_names(count: int, rng: np.random.Generator) -> list[str]:
    """Distinct pronounceable invented names (two or three syllables and an ending)."""
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        n = max(64, 2 * (count - len(names)))
        parts = rng.integers(0, len(_SYLLABLES), size=(n, 3))
        three = rng.random(n) < 0.3
        ends = rng.integers(0, len(_ENDINGS), size=n)
        for row, use_three, end in zip(parts.tolist(), three.tolist(), ends.tolist(), strict=True):
            syllables = [_SYLLABLES[i] for i in row[: 3 if use_three else 2]]
            name = _display("".join(syllables) + _ENDINGS[end])
            if name not in seen and not any(bad in name.lower() for bad in BLOCKLIST):
                seen.add(name)
                names.append(name)
                if len(names) == count:
                    break
    return names


@dataclass
class Catalogue:
    """Products in internal order: sorted by category, then brand group, so that every category
    and every (category, brand) group is a contiguous range of indices."""

    start: int  # Span, seconds since the epoch.
    end: int
    # Categories.
    cat_names: list[str]
    cat_department: list[str]
    cat_source: list[str]
    cat_consumable: np.ndarray  # bool
    cat_peak: np.ndarray  # Day of the year of the season's peak; NaN: not seasonal.
    cat_lo: np.ndarray  # Product range [lo, hi).
    cat_hi: np.ndarray
    cat_anchor: np.ndarray  # The category's most popular product, launched before the span.
    cat_cum: np.ndarray  # Cumulative demand (sum of popularity), for drawing categories.
    complements: np.ndarray  # (categories, m), -1 where none.
    # Brand groups.
    group_lo: np.ndarray
    group_hi: np.ndarray
    group_cat: np.ndarray
    group_cum: np.ndarray  # Cumulative demand, for drawing a favourite brand in a category.
    cat_group_lo: np.ndarray  # Group range of each category.
    cat_group_hi: np.ndarray
    # Products.
    prod_cat: np.ndarray
    prod_group: np.ndarray
    popularity: np.ndarray  # Relative weight, sums to 1.
    pop_cum: np.ndarray
    launch: np.ndarray  # Seconds since the epoch (before ``start``: existed already).
    partner: np.ndarray  # A product of a complementary category; -1 when none.
    price_cents: np.ndarray
    number: np.ndarray  # 1-based id number, in launch order.
    brand: list[str]
    title: list[str]
    description: list[str]
    tags: list[str]

    @property
    def size(self) -> int:
        return len(self.prod_cat)


def build_catalogue(
    config: ShopConfig, vocab: list[VocabCategory], rng: np.random.Generator
) -> Catalogue:
    n_products = config.products
    start, end = _parse_day(config.start), _parse_day(config.end)
    wanted = config.categories or min(len(vocab), max(8, round(2 * math.sqrt(n_products))))
    if wanted > len(vocab):
        raise ValueError(
            f"--categories: at most {len(vocab)} with this vocabulary, got {config.categories}"
        )
    n_cats = min(wanted, n_products)
    chosen = [vocab[i] for i in sorted(rng.choice(len(vocab), size=n_cats, replace=False))]

    # Category sizes: Zipf weights over a random order; at least one product each.
    weights = _zipf_weights(n_cats, config.category_skew)[rng.permutation(n_cats)]
    sizes = 1 + rng.multinomial(n_products - n_cats, weights / weights.sum())
    cat_hi = np.cumsum(sizes)
    cat_lo = cat_hi - sizes
    prod_cat = np.repeat(np.arange(n_cats), sizes).astype(np.int32)

    # Brand groups inside each category: Zipf sizes; names drawn from a department's pool, so
    # a department's leading brands appear in many of its categories.
    group_sizes: list[np.ndarray] = []
    slots = [max(1, min(int(s), round(s / config.products_per_brand))) for s in sizes]
    departments = sorted({c.department for c in chosen})
    dept_slots = {d: [k for c, k in zip(chosen, slots, strict=True) if c.department == d]
                  for d in departments}  # fmt: skip
    pool_size = {d: max(max(ks), math.ceil(sum(ks) / 2)) for d, ks in dept_slots.items()}
    names = _brand_names(sum(pool_size.values()), rng)
    pools, offset = {}, 0
    for d in departments:
        pools[d] = names[offset : offset + pool_size[d]]
        offset += pool_size[d]
    group_brand: list[str] = []
    for c, (cat, k) in enumerate(zip(chosen, slots, strict=True)):
        w = _zipf_weights(k, 1.0)
        group_sizes.append(1 + rng.multinomial(int(sizes[c]) - k, w / w.sum()))
        pool = pools[cat.department]
        pw = _zipf_weights(len(pool), 1.0)
        picks = rng.choice(len(pool), size=k, replace=False, p=pw / pw.sum())
        group_brand += [pool[i] for i in picks]
    gsizes = np.concatenate(group_sizes)
    group_hi = np.cumsum(gsizes)
    group_lo = group_hi - gsizes
    group_cat = np.repeat(np.arange(n_cats), slots).astype(np.int32)
    prod_group = np.repeat(np.arange(len(gsizes)), gsizes).astype(np.int32)
    cat_group_hi = np.cumsum(slots)
    cat_group_lo = cat_group_hi - np.asarray(slots)

    # Popularity: Zipf over a global rank; the rank follows a latent score that mixes a
    # category effect and noise, so popular products cluster in popular categories.
    rho = config.popularity_category_corr
    score = rho * rng.standard_normal(n_cats)[prod_cat] + math.sqrt(1 - rho * rho) * (
        rng.standard_normal(n_products)
    )
    rank = np.empty(n_products, dtype=np.int64)
    rank[np.argsort(-score, kind="stable")] = np.arange(n_products)
    popularity = (rank + 1.0) ** -config.popularity_exponent
    popularity /= popularity.sum()
    pop_cum = _cumulative(popularity)
    group_demand = np.add.reduceat(popularity, group_lo)
    cat_demand = np.add.reduceat(popularity, cat_lo)

    # Anchors: the most popular product of each group and category exists from the start.
    by_group = np.lexsort((-popularity, prod_group))
    group_anchor = by_group[group_lo]
    cat_anchor = np.array(
        [group_anchor[lo + np.argmax(popularity[group_anchor[lo:hi]])]
         for lo, hi in zip(cat_group_lo, cat_group_hi, strict=True)],
        dtype=np.int64,
    )  # fmt: skip
    span = end - start
    is_new = rng.random(n_products) < config.new_product_share
    is_new[group_anchor] = False
    launch = np.where(
        is_new,
        start + (rng.random(n_products) * (span - END_MARGIN_S - 86400)).astype(np.int64),
        start - (rng.random(n_products) * 3 * 365 * 86400).astype(np.int64),
    )
    number = np.empty(n_products, dtype=np.int64)
    number[np.lexsort((np.arange(n_products), launch))] = np.arange(1, n_products + 1)

    # Complementary categories: one in the same department where there is one, others by
    # demand; each product's partner is a product of one of them, by popularity.
    m = config.complements if n_cats > 1 else 0
    complements = np.full((n_cats, max(m, 1)), -1, dtype=np.int64)
    cat_cum = _cumulative(cat_demand)
    for c in range(n_cats):
        same = [o for o in range(n_cats) if o != c and chosen[o].department == chosen[c].department]
        picked: list[int] = [int(rng.choice(same))] if same and m else []
        tries = 0
        while len(picked) < min(m, n_cats - 1) and tries < 100:
            o = int(np.searchsorted(cat_cum, rng.random() * cat_cum[-1], side="right") - 1)
            if o != c and o not in picked:
                picked.append(o)
            tries += 1
        complements[c, : len(picked)] = picked
    partner = np.full(n_products, -1, dtype=np.int64)
    if m:
        counts = (complements >= 0).sum(axis=1)[prod_cat]
        slot = (rng.random(n_products) * np.maximum(counts, 1)).astype(np.int64)
        other = complements[prod_cat, slot]
        ok = other >= 0
        partner[ok] = _draw(pop_cum, cat_lo[other[ok]], cat_hi[other[ok]], rng.random(ok.sum()))

    # Seasons: categories named for a season first, then random ones with a random peak.
    cat_peak = np.full(n_cats, np.nan)
    n_seasonal = round(config.seasonal_share * n_cats)
    for c in rng.permutation(n_cats):
        if np.count_nonzero(~np.isnan(cat_peak)) >= n_seasonal:
            break
        for keyword, peak in SEASON_KEYWORDS:
            if keyword in chosen[c].name:
                cat_peak[c] = peak
                break
    for c in rng.permutation(n_cats):
        if np.count_nonzero(~np.isnan(cat_peak)) >= n_seasonal:
            break
        if np.isnan(cat_peak[c]):
            cat_peak[c] = SEASON_PEAKS[int(rng.integers(len(SEASON_PEAKS)))]

    # Prices: a lognormal median per category, lognormal spread around it, shop-like endings.
    median = np.exp(rng.normal(2.6, 0.7, n_cats))
    raw = median[prod_cat] * np.exp(rng.normal(0.0, 0.5, n_products))
    endings = np.array([99, 95, 49, 0])[rng.integers(0, 4, n_products)]
    price_cents = np.maximum(np.floor(raw).astype(np.int64) * 100 + endings, 49)

    brand: list[str] = np.array(group_brand, dtype=object)[prod_group].tolist()
    title, description, tags = _texts(config, chosen, prod_cat, brand, cat_peak, rng)
    return Catalogue(
        start=start, end=end, cat_names=[c.name for c in chosen],
        cat_department=[c.department for c in chosen], cat_source=[c.source for c in chosen],
        cat_consumable=np.array([c.consumable for c in chosen]), cat_peak=cat_peak,
        cat_lo=cat_lo, cat_hi=cat_hi, cat_anchor=cat_anchor, cat_cum=cat_cum,
        complements=complements, group_lo=group_lo, group_hi=group_hi, group_cat=group_cat,
        group_cum=_cumulative(group_demand), cat_group_lo=cat_group_lo,
        cat_group_hi=cat_group_hi, prod_cat=prod_cat, prod_group=prod_group,
        popularity=popularity, pop_cum=pop_cum, launch=launch, partner=partner,
        price_cents=price_cents, number=number, brand=brand, title=title,
        description=description, tags=tags,
    )  # fmt: skip


def _pool(
    categories: list[VocabCategory], counters: list[Counter[str]], power: float
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Word pools of all categories in one array: words, cumulative weights, ranges."""
    words: list[str] = []
    weights: list[float] = []
    lo, hi = [], []
    for counter in counters:
        lo.append(len(words))
        for word in sorted(counter):
            words.append(word)
            weights.append(counter[word] ** power)
        hi.append(len(words))
    return words, _cumulative(np.array(weights)), np.array(lo), np.array(hi)


def _texts(
    config: ShopConfig,
    chosen: list[VocabCategory],
    prod_cat: np.ndarray,
    brand: list[str],
    cat_peak: np.ndarray,
    rng: np.random.Generator,
) -> tuple[list[str], list[str], list[str]]:
    """Titles, descriptions and tags: words of the product's category, drawn by frequency."""
    n = len(prod_cat)
    heads, head_cum, head_lo, head_hi = _pool(chosen, [c.heads for c in chosen], 1.0)
    mods, mod_cum, mod_lo, mod_hi = _pool(chosen, [c.modifiers for c in chosen], 0.75)
    # Modifiers per title follow the category's source titles (1 to 4).
    length_p = np.array([[c.lengths.get(k, 0) for k in range(5)] for c in chosen], float)
    length_p[:, 1] += length_p[:, 0]
    length_p[:, 0] = 0
    length_cum = np.cumsum(length_p / length_p.sum(axis=1, keepdims=True), axis=1)
    n_mods = np.minimum((rng.random(n)[:, None] > length_cum[prod_cat]).sum(axis=1), 4)
    head = _draw(head_cum, head_lo[prod_cat], head_hi[prod_cat], rng.random(n))
    lo, hi = mod_lo[prod_cat][:, None], mod_hi[prod_cat][:, None]
    mod = _draw(mod_cum, lo, hi, rng.random((n, 4)))
    mod[np.arange(4)[None, :] >= n_mods[:, None]] = -1
    for j in range(1, 4):  # No word twice in a title.
        repeated = (mod[:, j : j + 1] == mod[:, :j]).any(axis=1) & (mod[:, j] >= 0)
        mod[repeated, j] = -1
    with_brand = (rng.random(n) < config.brand_in_title).tolist()
    with_variant = (rng.random(n) < config.variant_share).tolist()
    variant_pick = rng.integers(0, 1 << 30, n).tolist()
    desc_pick = rng.integers(0, 1 << 30, n).tolist()
    template = rng.integers(0, 3, n).tolist()
    seasonal = (~np.isnan(cat_peak))[prod_cat].tolist()

    titles: list[str] = []
    descriptions: list[str] = []
    tags: list[str] = []
    used: dict[str, int] = {}
    display_heads = [_display(w) for w in heads]
    display_mods = [_display(w) for w in mods]
    for i, (c, h, row) in enumerate(
        zip(prod_cat.tolist(), head.tolist(), mod.tolist(), strict=True)
    ):
        cat = chosen[c]
        words = [display_mods[j] for j in row if j >= 0]
        parts = ([brand[i]] if with_brand[i] else []) + words + [display_heads[h]]
        if with_variant[i]:
            parts.append(cat.variants[variant_pick[i] % len(cat.variants)])
        title = " ".join(parts)
        if title in used:  # Unique titles: a repeat gets a model number.
            used[title] += 1
            numbered = f"{title} No. {used[title]}"
            while numbered in used:
                used[title] += 1
                numbered = f"{title} No. {used[title]}"
            title = numbered
        used[title] = 1
        titles.append(title)
        plain = [mods[j] for j in row if j >= 0]
        tag_words = plain[:2] + (["seasonal"] if seasonal[i] else [])
        tags.append("|".join(tag_words))
        if not config.descriptions:
            descriptions.append("")
        elif cat.descriptions:
            descriptions.append(cat.descriptions[desc_pick[i] % len(cat.descriptions)])
        else:
            noun = heads[h]
            kind = template[i]
            if kind == 0:
                text = f"{_display(noun)} by {brand[i]}, from our {cat.aisle} range."
            elif kind == 1:
                text = f"{' '.join(plain).capitalize() or 'Our'} {noun} from {brand[i]}."
            else:
                text = f"{brand[i]} {noun} for {cat.department}: {', '.join(plain) or noun}."
            descriptions.append(text)
    return titles, descriptions, tags


# ---------------------------------------------------------------------------------------------
# Customers and time.


@dataclass
class Customers:
    """Customers in arrival order (their id numbers); times in seconds from the span's start."""

    arrive: np.ndarray
    leave: np.ndarray
    budget: np.ndarray  # Events of each customer; sums to config.events.


def build_customers(config: ShopConfig, span: int, rng: np.random.Generator) -> Customers:
    n = config.customers
    usable = float(span - END_MARGIN_S)
    initial = rng.random(n) < config.initial_customer_share
    arrive = np.sort(np.where(initial, 0.0, usable * rng.random(n) ** (1 / (1 + config.growth))))
    arrive = np.minimum(arrive, usable - 3600)
    life = rng.exponential(config.customer_lifetime_days * 86400, n)
    leave = np.clip(arrive + life, arrive + 3600, usable)
    # Heavy-tailed activity, damped for customers who are around only briefly.
    raw = rng.lognormal(0.0, config.activity_sigma, n) * np.sqrt((leave - arrive) / usable)
    budget = 1 + rng.multinomial(config.events - n, raw / raw.sum())
    return Customers(arrive=arrive, leave=leave, budget=budget.astype(np.int64))


class Profile:
    """Activity over the span, hour by hour: daily, weekly and yearly cycles."""

    def __init__(self, config: ShopConfig, start: int, end: int) -> None:
        hours = np.arange((end - start) // 3600, dtype=np.int64)
        moment = start + hours * 3600 + 1800
        day = moment // 86400
        hour = (moment // 3600) % 24
        weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0.
        doy = _day_of_year(moment)
        weight = (
            (1 + config.daily_amplitude * np.cos(2 * np.pi * (hour - 20) / 24))
            * (1 + config.weekly_amplitude * np.cos(2 * np.pi * (weekday - 6) / 7))
            * (1 + config.yearly_amplitude * np.cos(2 * np.pi * (doy - 340) / 365.25))
        )
        self.cum = _cumulative(weight)

    def sample(self, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Seconds from the start, in [lo, hi], drawn with the activity's density."""
        grid = np.arange(len(self.cum), dtype=np.float64) * 3600
        f_lo, f_hi = np.interp(lo, grid, self.cum), np.interp(hi, grid, self.cum)
        return np.clip(np.interp(f_lo + u * (f_hi - f_lo), self.cum, grid), lo, hi)


def _day_of_year(seconds: np.ndarray) -> np.ndarray:
    moment = np.asarray(seconds, dtype="datetime64[s]")
    return (moment.astype("datetime64[D]") - moment.astype("datetime64[Y]")).astype(np.int64)


# ---------------------------------------------------------------------------------------------
# Behaviour, one slice of customers at a time.

SPILL_DTYPE = np.dtype(
    [
        ("ts", "<i8"),
        ("customer", "<i4"),
        ("product", "<i4"),
        ("session", "<i8"),
        ("type", "u1"),
        ("quantity", "<u2"),
    ]
)


@dataclass
class Stats:
    """Running totals while events are generated."""

    events: int = 0
    type_counts: np.ndarray = field(default_factory=lambda: np.zeros(4, dtype=np.int64))
    sessions: int = 0
    baskets: int = 0  # Sessions with at least one purchase.
    purchases: int = 0
    repeat_purchases: int = 0  # Of a product the customer had bought before.
    new_product_events: int = 0  # On products launched during the span.
    product_events: np.ndarray | None = None

    def add(
        self, events: np.ndarray, cat: Catalogue, *, sessions: int, baskets: int, repeats: int
    ) -> None:
        self.events += len(events)
        self.type_counts += np.bincount(events["type"], minlength=4)
        self.sessions += sessions
        self.baskets += baskets
        self.purchases += int(np.count_nonzero(events["type"] == PURCHASE))
        self.repeat_purchases += repeats
        self.new_product_events += int(np.count_nonzero(cat.launch[events["product"]] >= cat.start))
        if self.product_events is not None:
            self.product_events += np.bincount(events["product"], minlength=cat.size)

    def summary(self, catalogue: Catalogue) -> dict[str, Any]:
        counts = np.sort(self.product_events if self.product_events is not None else [0])[::-1]
        top = max(1, len(counts) // 100)
        return {
            "events": self.events,
            "event_types": {t: int(c) for t, c in zip(EVENT_TYPES, self.type_counts, strict=True)},
            "sessions": self.sessions,
            "events_per_session": round(self.events / max(self.sessions, 1), 2),
            "baskets": self.baskets,
            "items_per_basket": round(self.purchases / max(self.baskets, 1), 2),
            "repeat_purchase_share": round(self.repeat_purchases / max(self.purchases, 1), 4),
            "new_product_event_share": round(self.new_product_events / max(self.events, 1), 4),
            "top_1pct_product_event_share": round(
                float(counts[:top].sum()) / max(self.events, 1), 4
            ),
            "products_with_events": int(np.count_nonzero(counts)),
            "products_new": int(np.count_nonzero(catalogue.launch >= catalogue.start)),
        }  # fmt: skip


def _funnel_rates(config: ShopConfig) -> float:
    """Expected events per session, to size the sessions drawn for a budget."""
    cr, ca, pr, f = config.click_rate, config.cart_rate, config.purchase_rate, config.browse_factor
    buy = 1 + cr + cr * ca + cr * ca * pr
    browse = 1 + f * cr + f * cr * f * ca
    b = config.buy_session_share
    return b * buy * config.buy_touches + (1 - b) * browse * config.browse_touches


def _segment_starts(counts: np.ndarray) -> np.ndarray:
    return np.cumsum(counts) - counts


def _draw_sessions(
    config: ShopConfig, budget: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sessions and their touches (products viewed) for customers with these event budgets.

    Returns (session owner, session buys, touch session, touch events, touch position): touches
    are grouped by session and sessions by owner; the events of a customer's touches sum to
    exactly its budget (the last touch is cut short: it keeps a prefix of the funnel).
    """
    per_session = _funnel_rates(config)
    cr, ca, pr, f = config.click_rate, config.cart_rate, config.purchase_rate, config.browse_factor
    deficit = budget.copy()
    rounds: list[tuple[np.ndarray, ...]] = []
    sessions_so_far = 0
    while True:
        owners = np.flatnonzero(deficit > 0)
        if not len(owners):
            break
        n_sessions = np.ceil(deficit[owners] / per_session).astype(np.int64) + 1
        s_owner = np.repeat(owners, n_sessions)
        n = len(s_owner)
        buys = rng.random(n) < config.buy_session_share
        touches = rng.geometric(1.0 / np.where(buys, config.buy_touches, config.browse_touches))
        t_sess = np.repeat(np.arange(n), touches)
        pos = np.arange(len(t_sess)) - np.repeat(_segment_starts(touches), touches)
        t_buy = buys[t_sess]
        u = rng.random((len(t_sess), 3))
        click = u[:, 0] < np.where(t_buy, cr, cr * f)
        cart = click & (u[:, 1] < np.where(t_buy, ca, ca * f))
        bought = cart & (u[:, 2] < np.where(t_buy, pr, 0.0))
        bought |= t_buy & (pos == 0)  # A buying session buys at least the first product viewed.
        events = 1 + (click | bought).astype(np.int64) + (cart | bought) + bought
        # Keep touches while the owner's budget lasts; cut the last one to fit.
        t_owner = s_owner[t_sess]
        before = np.cumsum(events) - events
        first = np.searchsorted(t_owner, owners)
        before -= before[first][np.searchsorted(owners, t_owner)]
        left = deficit[t_owner] - before
        keep = left > 0
        events = np.minimum(events, left)[keep]
        t_sess, pos = t_sess[keep], pos[keep]
        deficit -= np.bincount(t_owner[keep], weights=events, minlength=len(deficit)).astype(
            np.int64
        )
        kept_sessions, t_sess = np.unique(t_sess, return_inverse=True)
        rounds.append(
            (s_owner[kept_sessions], buys[kept_sessions], t_sess + sessions_so_far, events, pos)
        )
        sessions_so_far += len(kept_sessions)
    s_owner, s_buy, t_sess, t_events, t_pos = (
        np.concatenate(parts) for parts in zip(*rounds, strict=True)
    )
    # Group sessions by owner (later rounds add sessions to customers of earlier ones).
    order = np.argsort(s_owner, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    t_sess = rank[t_sess]
    t_order = np.lexsort((t_pos, t_sess))
    return s_owner[order], s_buy[order], t_sess[t_order], t_events[t_order], t_pos[t_order]


def _simulate(
    config: ShopConfig,
    cat: Catalogue,
    customers: Customers,
    profile: Profile,
    first: int,
    last: int,
    session_offset: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, int, int, int]:
    """Events of customers [first, last) as a SPILL_DTYPE array in customer and time order,
    with the number of sessions, baskets and repeat purchases."""
    n = last - first
    n_tastes = config.tastes_max
    # Tastes: 1 to tastes_max categories (by demand, later ones often complementary to the
    # first), with halving weights; a favourite brand and staple products in each.
    k = np.minimum(rng.geometric(0.5, n), n_tastes)
    demand = cat.cat_cum
    taste = np.searchsorted(demand, rng.random((n, n_tastes)) * demand[-1], side="right") - 1
    if n_tastes > 1 and (cat.complements >= 0).any():
        n_comp = (cat.complements >= 0).sum(axis=1)[taste[:, :1]]
        slot = (rng.random((n, n_tastes - 1)) * np.maximum(n_comp, 1)).astype(np.int64)
        related = cat.complements[taste[:, :1], slot]
        use = (rng.random((n, n_tastes - 1)) < 0.5) & (related >= 0)
        taste[:, 1:] = np.where(use, related, taste[:, 1:])
    taste_w = np.where(np.arange(n_tastes)[None, :] < k[:, None], 0.5 ** np.arange(n_tastes), 0)
    taste_cum = np.cumsum(taste_w, axis=1)
    favourite = _draw(
        cat.group_cum, cat.cat_group_lo[taste], cat.cat_group_hi[taste], rng.random(taste.shape)
    )
    staples = _draw(
        cat.pop_cum,
        cat.cat_lo[taste][..., None],
        cat.cat_hi[taste][..., None],
        rng.random((n, n_tastes, config.staples)),
    )

    owner, buys, t_sess, t_events, t_pos = _draw_sessions(config, customers.budget[first:last], rng)
    n_sessions = len(owner)

    # Session start times: drawn in the customer's active window, given in time order.
    lo, hi = customers.arrive[first + owner], customers.leave[first + owner]
    when = profile.sample(lo, hi, rng.random(n_sessions))
    when = when[np.lexsort((when, owner))]
    session_start = cat.start + when.astype(np.int64)

    # Intent: one of the customer's tastes (slot) or exploration by demand (slot -1). A
    # seasonal category out of season is turned down with probability 1 - season; the session
    # then explores another category (at most 8 times), as shoppers do out of season.
    slot = np.full(n_sessions, -1, dtype=np.int64)
    intent = np.empty(n_sessions, dtype=np.int64)
    todo = np.arange(n_sessions)
    doy = _day_of_year(session_start)
    for attempt in range(9):
        in_taste = rng.random(len(todo)) < (config.taste_focus if attempt == 0 else 0.0)
        row_cum = taste_cum[owner[todo]]
        pick = (rng.random(len(todo))[:, None] * row_cum[:, -1:] >= row_cum).sum(axis=1)
        slot[todo] = np.where(in_taste, pick, -1)
        explore = np.searchsorted(demand, rng.random(len(todo)) * demand[-1], side="right") - 1
        intent[todo] = np.where(in_taste, taste[owner[todo], pick], explore)
        peak = cat.cat_peak[intent[todo]]
        angle = 2 * np.pi * (doy[todo] - peak) / 365.25
        season = np.exp(config.seasonal_strength * (np.cos(angle) - 1))
        todo = todo[~np.isnan(peak) & (rng.random(len(todo)) > season)]
        if not len(todo):
            break

    # Touch times: a browsing gap before each product, then the click and the cart; the basket
    # is bought at checkout, after the last product.
    n_touches = len(t_sess)
    gap = 5 + rng.exponential(40.0, n_touches)
    click_gap = rng.uniform(3, 25, n_touches)
    cart_gap = rng.uniform(5, 60, n_touches)
    length = gap + (t_events >= 2) * click_gap + (t_events >= 3) * cart_gap
    ends = np.cumsum(length)
    touch_counts = np.bincount(t_sess, minlength=n_sessions)
    offsets = (
        ends - length - np.repeat((ends - length)[_segment_starts(touch_counts)], touch_counts)
    )
    t_view = session_start[t_sess] + (offsets + gap).astype(np.int64)
    t_click = session_start[t_sess] + (offsets + gap + click_gap).astype(np.int64)
    t_cart = session_start[t_sess] + (offsets + gap + click_gap + cart_gap).astype(np.int64)
    duration = np.add.reduceat(length, _segment_starts(touch_counts)) if n_touches else length
    checkout = session_start + (duration + rng.uniform(20, 180, n_sessions)).astype(np.int64)

    # Products: the intent's category, sometimes a complementary one; in a taste, sometimes the
    # favourite brand or a staple; sometimes the partner of the previous product.
    t_owner, t_slot, t_intent = owner[t_sess], slot[t_sess], intent[t_sess]
    later = t_pos > 0
    t_cat = t_intent.copy()
    n_comp = (cat.complements >= 0).sum(axis=1)[t_cat]
    comp = later & (rng.random(n_touches) < config.complement_rate) & (n_comp > 0)
    comp_slot = (rng.random(n_touches) * np.maximum(n_comp, 1)).astype(np.int64)
    t_cat[comp] = cat.complements[t_cat[comp], comp_slot[comp]]
    in_taste = ~comp & (t_slot >= 0)
    loyal = in_taste & (rng.random(n_touches) < config.brand_loyalty)
    lo, hi = cat.cat_lo[t_cat], cat.cat_hi[t_cat]
    fav = favourite[t_owner[loyal], t_slot[loyal]]
    lo[loyal], hi[loyal] = cat.group_lo[fav], cat.group_hi[fav]
    product = _draw(cat.pop_cum, lo, hi, rng.random(n_touches))
    staple = in_taste & cat.cat_consumable[t_cat] & (rng.random(n_touches) < config.staple_rate)
    pick = rng.integers(0, config.staples, n_touches)
    product[staple] = staples[t_owner[staple], t_slot[staple], pick[staple]]
    follow = np.flatnonzero(later & (rng.random(n_touches) < config.partner_rate))
    for _ in range(64):  # Chains of partners resolve one link per pass.
        nxt = cat.partner[product[follow - 1]]
        nxt = np.where(nxt >= 0, nxt, product[follow])
        if np.array_equal(nxt, product[follow]):
            break
        product[follow] = nxt
    t_cat = cat.prod_cat[product]
    # The same product twice in a row is drawn again once (in a small category it may stay).
    again = np.flatnonzero(later & (product == np.roll(product, 1)))
    c = t_cat[again]
    product[again] = _draw(cat.pop_cum, cat.cat_lo[c], cat.cat_hi[c], rng.random(len(again)))
    # Nothing before its launch: redraw in the category, then fall back to its anchor.
    early = np.flatnonzero(cat.launch[product] > t_view)
    for _ in range(6):
        if not len(early):
            break
        c = t_cat[early]
        product[early] = _draw(cat.pop_cum, cat.cat_lo[c], cat.cat_hi[c], rng.random(len(early)))
        early = early[cat.launch[product[early]] > t_view[early]]
    product[early] = cat.cat_anchor[t_cat[early]]

    consumable = cat.cat_consumable[t_cat]
    quantity = np.where(
        consumable,
        np.minimum(rng.geometric(0.6, n_touches), 12),
        1 + (rng.random(n_touches) < 0.08) + (rng.random(n_touches) < 0.02),
    )

    # Events: each touch is a prefix of view, click, add_to_cart, purchase.
    ev_touch = np.repeat(np.arange(n_touches), t_events)
    ev_type = np.arange(len(ev_touch)) - np.repeat(_segment_starts(t_events), t_events)
    times = np.stack([t_view, t_click, t_cart, checkout[t_sess]])
    out = np.empty(len(ev_touch), dtype=SPILL_DTYPE)
    out["ts"] = times[ev_type, ev_touch]
    out["customer"] = first + t_owner[ev_touch]
    out["product"] = product[ev_touch]
    out["session"] = session_offset + t_sess[ev_touch]
    out["type"] = ev_type
    out["quantity"] = np.where(ev_type >= CART, quantity[ev_touch], 1)
    out = out[np.lexsort((out["ts"], out["customer"]))]  # Stable: the funnel order on ties.

    bought = out[out["type"] == PURCHASE]
    baskets = len(np.unique(bought["session"]))
    order = np.lexsort((bought["ts"], bought["product"], bought["customer"]))
    pairs = bought[order]
    repeats = int(
        np.count_nonzero(
            (pairs["customer"][1:] == pairs["customer"][:-1])
            & (pairs["product"][1:] == pairs["product"][:-1])
            & (pairs["session"][1:] != pairs["session"][:-1])
        )
    )
    return out, n_sessions, baskets, repeats


# ---------------------------------------------------------------------------------------------
# Output: CSV rows assembled as bytes with numpy (no Python per event).

_TYPE_BYTES = np.zeros((4, 11), dtype=np.uint8)
for _i, _name in enumerate(EVENT_TYPES):
    _TYPE_BYTES[_i, : len(_name)] = np.frombuffer(_name.encode(), dtype=np.uint8)
_POWERS = 10 ** np.arange(1, 19, dtype=np.int64)


def _digits(values: np.ndarray, width: int, *, pad: bool) -> np.ndarray:
    """(n, width) ASCII digits of non-negative integers, right-aligned; without ``pad`` the
    leading zeros are NUL bytes (dropped when the row is packed)."""
    out = np.empty((len(values), width), dtype=np.uint8)
    rest = values.astype(np.int64, copy=True)
    for column in range(width - 1, -1, -1):
        rest, digit = np.divmod(rest, 10)
        out[:, column] = digit + 48
    if not pad:
        n_digits = np.searchsorted(_POWERS, values, side="right") + 1
        out[np.arange(width)[None, :] < (width - n_digits)[:, None]] = 0
    return out


class EventFormatter:
    """Turns SPILL_DTYPE arrays into interchange CSV rows."""

    def __init__(self, cat: Catalogue, config: ShopConfig) -> None:
        self.price_cents = cat.price_cents
        self.number = cat.number
        self.start_day = cat.start // 86400
        days = np.arange(self.start_day, cat.end // 86400 + 1).astype("datetime64[D]")
        self.dates = np.frombuffer("".join(str(d) for d in days).encode(), dtype=np.uint8).reshape(
            len(days), 10
        )
        self.w_event = max(8, len(str(config.events)))
        self.w_customer = max(6, len(str(config.customers)))
        self.w_product = max(6, len(str(config.products)))
        self.w_session = self.w_event  # There are never more sessions than events.

    @property
    def header(self) -> bytes:
        return (",".join(EVENT_COLUMNS) + "\n").encode()

    def customer_id(self, index: int) -> str:
        return f"C{index + 1:0{self.w_customer}d}"

    def product_id(self, number: int) -> str:
        return f"P{number:0{self.w_product}d}"

    def rows(self, events: np.ndarray, first_id: int) -> bytes:
        n = len(events)
        if not n:
            return b""
        fields: list[np.ndarray | bytes] = [
            b"E", _digits(np.arange(first_id, first_id + n), self.w_event, pad=True), b",C",
            _digits(events["customer"].astype(np.int64) + 1, self.w_customer, pad=True), b",P",
            _digits(self.number[events["product"]], self.w_product, pad=True), b",",
            _TYPE_BYTES[events["type"]], b",",
        ]  # fmt: skip
        ts = events["ts"]
        day, second = np.divmod(ts, 86400)
        hour, second = np.divmod(second, 3600)
        minute, second = np.divmod(second, 60)
        fields += [
            self.dates[day - self.start_day], b"T", _digits(hour, 2, pad=True), b":",
            _digits(minute, 2, pad=True), b":", _digits(second, 2, pad=True), b"Z,",
            _digits(events["quantity"], 3, pad=False), b",",
        ]  # fmt: skip
        purchase = events["type"] == PURCHASE
        cents = self.price_cents[events["product"]] * events["quantity"]
        value = np.concatenate(
            [_digits(cents // 100, 9, pad=False), np.full((n, 1), ord("."), np.uint8),
             _digits(cents % 100, 2, pad=True)], axis=1,
        )  # fmt: skip
        value[~purchase] = 0
        fields += [value, b",S", _digits(events["session"] + 1, self.w_session, pad=True), b"\n"]
        width = sum(f.shape[1] if isinstance(f, np.ndarray) else len(f) for f in fields)
        table = np.empty((n, width), dtype=np.uint8)
        column = 0
        for f in fields:
            if isinstance(f, bytes):
                table[:, column : column + len(f)] = np.frombuffer(f, dtype=np.uint8)
                column += len(f)
            else:
                table[:, column : column + f.shape[1]] = f
                column += f.shape[1]
        flat = table.reshape(-1)
        return flat[flat != 0].tobytes()


class _Writer:
    """Writes byte blocks to a file (gzipped or not) in a background thread, so that
    compression and disk writes overlap the next block's work."""

    def __init__(self, path: Path, *, compress: bool, level: int) -> None:
        self.raw: IO[bytes] = open(path, "wb")  # noqa: SIM115 (closed in close())
        self.out: IO[bytes] = self.raw
        if compress:  # mtime=0: the same bytes on every run.
            name = path.name.removesuffix(".part")
            self.out = gzip.GzipFile(name, "wb", level, self.raw, mtime=0)  # type: ignore[assignment]
        self.queue: queue.Queue[Callable[[], bytes] | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="shopgen-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (job := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.out.write(job())
                except BaseException as exc:  # noqa: BLE001 (re-raised in the caller)
                    self.error = exc

    def put(self, job: Callable[[], bytes]) -> None:
        """Queue a function that returns the next block (called in the writer thread)."""
        if self.error is not None:
            raise self.error
        self.queue.put(job)

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.out is not self.raw:
            self.out.close()
        self.raw.close()
        if self.error is not None:
            raise self.error


def _open_text(path: Path, *, compress: bool, level: int) -> IO[str]:
    if compress:
        raw = open(path, "wb")  # noqa: SIM115 (closed with the wrapper)
        zipped = gzip.GzipFile(filename=path.name.removesuffix(".part"), fileobj=raw, mode="wb",
                               compresslevel=level, mtime=0)  # fmt: skip
        return _ClosingText(zipped, raw)
    return open(path, "w", encoding="utf-8", newline="")


class _ClosingText(io.TextIOWrapper):
    """A text wrapper over a gzip stream that also closes the file under it."""

    def __init__(self, zipped: gzip.GzipFile, raw: IO[bytes]) -> None:
        super().__init__(zipped, encoding="utf-8", newline="")
        self._raw = raw

    def close(self) -> None:
        super().close()
        self._raw.close()


def _iso(seconds: np.ndarray) -> list[str]:
    return [f"{s}Z" for s in np.asarray(seconds, dtype="datetime64[s]").astype(str).tolist()]


def _part(path: Path) -> Path:
    """Where ``path`` is written until the whole shop is complete."""
    return path.with_name(path.name + ".part")


def _write_catalogue(folder: Path, cat: Catalogue, config: ShopConfig, fmt: EventFormatter) -> None:
    suffix = ".gz" if config.gzip else ""
    order = np.argsort(cat.number).tolist()
    ids = [fmt.product_id(n) for n in cat.number.tolist()]
    cents = cat.price_cents.tolist()
    names = [cat.cat_names[c] for c in cat.prod_cat.tolist()]
    with _open_text(_part(folder / f"products.csv{suffix}"), compress=config.gzip,
                    level=config.gzip_level) as handle:  # fmt: skip
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(PRODUCT_COLUMNS)
        for i in order:
            writer.writerow((
                ids[i], cat.title[i], cat.description[i], names[i], cat.brand[i],
                f"{cents[i] // 100}.{cents[i] % 100:02d}", cat.tags[i],
            ))  # fmt: skip
    launched = _iso(cat.launch)
    popularity = cat.popularity.tolist()
    partner = cat.partner.tolist()
    with _open_text(_part(folder / f"product_meta.csv{suffix}"), compress=config.gzip,
                    level=config.gzip_level) as handle:  # fmt: skip
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(META_COLUMNS)
        for i in order:
            p = partner[i]
            writer.writerow((ids[i], launched[i], f"{popularity[i]:.6g}", ids[p] if p >= 0 else ""))


def _chunks(budget: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Consecutive customer ranges of about ``size`` events each."""
    cum = np.cumsum(budget)
    bounds, first = [], 0
    while first < len(budget):
        base = cum[first - 1] if first else 0
        last = max(first + 1, int(np.searchsorted(cum, base + size, side="right")))
        bounds.append((first, last))
        first = last
    return bounds


def _rss_mb() -> float:
    """Peak resident memory of this process (MB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


OUTPUT_NAMES = ("products.csv", "product_meta.csv", "events.csv")


def generate(
    config: ShopConfig, out: str | Path, *, log: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Write the shop into ``out`` and return what ``shop.json`` holds (parameters,
    categories, summary, timings).

    ValueError or FileNotFoundError for bad parameters, before anything is written. Files are
    written as ``*.part`` and renamed when all are complete, so a failed or interrupted run
    leaves the folder's previous shop as it was; the other compression's files of a previous
    run are removed (``manage.py import`` refuses a folder with both).
    """
    config.validate()
    say = log or (lambda _message: None)
    started = time.perf_counter()
    vocab, vocab_files = load_vocabulary(config.vocab_from, config.vocab_sources)
    t_vocab = time.perf_counter()
    cat = build_catalogue(config, vocab, np.random.default_rng([config.seed, 1]))
    customers = build_customers(
        config, cat.end - cat.start, np.random.default_rng([config.seed, 2])
    )
    profile = Profile(config, cat.start, cat.end)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if config.gzip else ""
    finals = [folder / (name + suffix) for name in OUTPUT_NAMES]
    try:
        fmt = EventFormatter(cat, config)
        _write_catalogue(folder, cat, config, fmt)
        t_catalogue = time.perf_counter()
        say(f"catalogue: {config.products:,} products in {len(cat.cat_names)} categories, "
            f"{t_catalogue - t_vocab:.1f} s")  # fmt: skip
        stats = _write_events(config, cat, customers, profile, fmt, finals[2], say)
        finished = time.perf_counter()
        for name in OUTPUT_NAMES:  # The other compression's files of an earlier run.
            (folder / (name + (".gz" if not config.gzip else ""))).unlink(missing_ok=True)
        for path in finals:
            os.replace(_part(path), path)
    finally:
        for path in finals:
            _part(path).unlink(missing_ok=True)

    report = {
        "generator": "bench/shopgen.py",
        "config": dataclasses.asdict(config),
        "vocabulary_files": vocab_files,
        "categories": [
            {
                "name": cat.cat_names[c],
                "source": cat.cat_source[c],
                "products": int(cat.cat_hi[c] - cat.cat_lo[c]),
                "brands": int(cat.cat_group_hi[c] - cat.cat_group_lo[c]),
                "consumable": bool(cat.cat_consumable[c]),
                "season_peak_day": None if np.isnan(cat.cat_peak[c]) else int(cat.cat_peak[c]),
                "complements": [cat.cat_names[o] for o in cat.complements[c] if o >= 0],
            }
            for c in range(len(cat.cat_names))
        ],
        "summary": {
            "products": config.products,
            "customers": config.customers,
            **stats.summary(cat),
        },
        "timing": {
            "vocabulary_s": round(t_vocab - started, 2),
            "catalogue_s": round(t_catalogue - t_vocab, 2),
            "events_s": round(finished - t_catalogue, 2),
            "total_s": round(finished - started, 2),
            "events_per_s": round(config.events / max(finished - t_catalogue, 1e-9)),
            "peak_rss_mb": round(_rss_mb()),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "cpu": cpu_model(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "files": {path.name: path.stat().st_size for path in finals},
    }
    (folder / "shop.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


def _write_events(
    config: ShopConfig,
    cat: Catalogue,
    customers: Customers,
    profile: Profile,
    fmt: EventFormatter,
    path: Path,
    say: Callable[[str], None],
) -> Stats:
    """Simulate customers slice by slice and write events.csv(.gz).part; the running totals.

    In time order, each slice's events are appended to per-period spill files (about 250,000
    events each), which are then read back one at a time, sorted and written.
    """
    stats = Stats(product_events=np.zeros(cat.size, dtype=np.int64))
    writer = _Writer(_part(path), compress=config.gzip, level=config.gzip_level)
    writer.put(lambda: fmt.header)
    spill = path.parent / ".shopgen-spill"
    n_buckets = min(2000, max(1, math.ceil(config.events / SPILL_EVENTS)))
    bucket_s = math.ceil((cat.end - cat.start) / n_buckets)
    started = time.perf_counter()
    try:
        shutil.rmtree(spill, ignore_errors=True)
        spill.mkdir()
        next_id, sessions = 1, 0
        chunks = _chunks(customers.budget, config.chunk_events)
        for index, (first, last) in enumerate(chunks):
            rng = np.random.default_rng([config.seed, 3, index])
            events, n_sessions, baskets, repeats = _simulate(
                config, cat, customers, profile, first, last, sessions, rng
            )
            sessions += n_sessions
            stats.add(events, cat, sessions=n_sessions, baskets=baskets, repeats=repeats)
            if config.order == "customer":
                writer.put(functools.partial(fmt.rows, events, next_id))
                next_id += len(events)
            else:
                bucket = (events["ts"] - cat.start) // bucket_s
                events = events[np.argsort(bucket, kind="stable")]
                counts = np.bincount(bucket, minlength=n_buckets)
                for b, (lo, n) in enumerate(zip(_segment_starts(counts), counts, strict=True)):
                    if n:
                        with open(spill / f"{b:04d}.bin", "ab") as handle:
                            events[lo : lo + n].tofile(handle)
            if index % 10 == 9 or index == len(chunks) - 1:
                say(f"events: {stats.events:,}/{config.events:,} simulated, "
                    f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        for b in range(n_buckets if config.order == "time" else 0):
            bucket_path = spill / f"{b:04d}.bin"
            if bucket_path.exists():
                events = np.fromfile(bucket_path, dtype=SPILL_DTYPE)
                bucket_path.unlink()
                events = events[np.argsort(events["ts"], kind="stable")]
                writer.put(functools.partial(fmt.rows, events, next_id))
                next_id += len(events)
    finally:
        writer.close()
        shutil.rmtree(spill, ignore_errors=True)
    if stats.events != config.events:  # A bug, not bad input.
        raise AssertionError(f"generated {stats.events} events, expected {config.events}")
    return stats


# ---------------------------------------------------------------------------------------------
# Reading a shop back: the summary and structural checks, from the files alone.


def _find(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _seconds(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp())


def shop_stats(folder: str | Path, *, session_window: int = 2_000_000) -> dict[str, Any]:
    """Read a shop's files and return its summary and the count of each structural problem.

    Works on any interchange folder (``product_meta.csv`` and ``shop.json`` add the launch and
    span checks). Memory grows with products, customers, sessions and purchases, not with
    events, except for one 8-byte hash per event id (the duplicate check). A session is
    expected to span fewer than ``session_window`` rows of events.csv.
    """
    folder = Path(folder)
    products_path, events_path = _find(folder, "products.csv"), _find(folder, "events.csv")
    if products_path is None or events_path is None:
        raise FileNotFoundError(f"{folder}: products.csv and events.csv (or .gz) are needed")
    product_index: dict[str, int] = {}
    duplicate_products = 0
    for row in _read_csv(products_path):
        if row["product_id"] in product_index:
            duplicate_products += 1
        product_index.setdefault(row["product_id"], len(product_index))
    n_products = len(product_index)
    launch = np.full(n_products, np.iinfo(np.int64).min, dtype=np.int64)
    partner = np.full(n_products, -1, dtype=np.int64)
    meta_path = _find(folder, "product_meta.csv")
    if meta_path is not None:
        for row in _read_csv(meta_path):
            i = product_index[row["product_id"]]
            launch[i] = _seconds(row["launched_at"])
            partner[i] = product_index.get(row["partner_id"], -1)
    span_start = None
    if (folder / "shop.json").is_file():
        config = json.loads((folder / "shop.json").read_text(encoding="utf-8"))["config"]
        span_start = _parse_day(config["start"])

    types: Counter[str] = Counter()
    customers: dict[str, int] = {}
    sessions: dict[str, int] = {}
    product_events = np.zeros(n_products, dtype=np.int64)
    id_hashes = array("q")
    purchases = array("q")  # customer, product, session, time; 4 per purchase
    viewed: dict[int, set[int]] = {}  # Recent sessions' viewed products.
    last_row: dict[int, int] = {}
    problems = Counter(unknown_product_events=0, events_before_launch=0,
                       purchases_without_view=0)  # fmt: skip
    out_of_order, previous_ts, rows = 0, None, 0
    for rows, row in enumerate(_read_csv(events_path), start=1):
        kind = row["event_type"]
        types[kind] += 1
        id_hashes.append(hash(row["event_id"]))
        ts = _seconds(row["timestamp"])
        if previous_ts is not None and ts < previous_ts:
            out_of_order += 1
        previous_ts = ts
        customer = customers.setdefault(row["customer_id"], len(customers))
        session = sessions.setdefault(row["session_id"], len(sessions))
        product = product_index.get(row["product_id"], -1)
        if product < 0:
            problems["unknown_product_events"] += 1
            continue
        product_events[product] += 1
        if ts < launch[product]:
            problems["events_before_launch"] += 1
        last_row[session] = rows
        if kind == "view":
            viewed.setdefault(session, set()).add(product)
        elif kind == "purchase":
            purchases.extend((customer, product, session, ts))
            if product not in viewed.get(session, ()):
                problems["purchases_without_view"] += 1
        if rows % session_window == 0:
            stale = [s for s, r in last_row.items() if r < rows - session_window]
            for s in stale:
                del last_row[s]
                viewed.pop(s, None)
    problems["duplicate_event_ids"] = rows - len(np.unique(np.frombuffer(id_hashes, np.int64)))
    problems["duplicate_product_ids"] = duplicate_products

    bought = np.frombuffer(purchases, dtype=np.int64).reshape(-1, 4)
    order = np.lexsort((bought[:, 3], bought[:, 1], bought[:, 0]))
    pairs = bought[order]
    same = (pairs[1:, 0] == pairs[:-1, 0]) & (pairs[1:, 1] == pairs[:-1, 1])
    repeats = int(np.count_nonzero(same & (pairs[1:, 2] != pairs[:-1, 2])))
    # Partners bought in the same basket, against their share of all baskets.
    keys = np.unique(bought[:, 2] * n_products + bought[:, 1])
    baskets = len(np.unique(bought[:, 2]))
    basket_count = np.bincount(keys % n_products, minlength=n_products)
    lift = None
    has_partner = partner[bought[:, 1]] >= 0
    if has_partner.any() and baskets:
        q = partner[bought[has_partner, 1]]
        wanted = bought[has_partner, 2] * n_products + q
        found = np.searchsorted(keys, wanted)
        found = np.minimum(found, len(keys) - 1)
        observed = np.mean(keys[found] == wanted)
        expected = np.mean(basket_count[q] / baskets)
        lift = round(float(observed / expected), 2) if expected else None
    counts = np.sort(product_events)[::-1]
    top = max(1, n_products // 100)
    new_share = None
    if span_start is not None and meta_path is not None:
        new_share = round(float(product_events[launch >= span_start].sum()) / max(rows, 1), 4)
    return {
        "products": n_products,
        "customers": len(customers),
        "events": rows,
        "event_types": dict(sorted(types.items())),
        "sessions": len(sessions),
        "baskets": baskets,
        "items_per_basket": round(len(bought) / max(baskets, 1), 2),
        "repeat_purchase_share": round(repeats / max(len(bought), 1), 4),
        "new_product_event_share": new_share,
        "top_1pct_product_event_share": round(float(counts[:top].sum()) / max(rows, 1), 4),
        "partner_copurchase_lift": lift,
        "time_ordered": out_of_order == 0,
        "problems": dict(problems),
    }


# ---------------------------------------------------------------------------------------------
# Stand-in vectors: how the weight-free HashingEmbedder sees the generated catalogue.


EMBED_SLICE = 100_000


def _pair_cosines(vectors: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.einsum("ij,ij->i", vectors[a], vectors[b])))


def embedding_check(
    folder: str | Path, *, sample: int = 20_000, pairs: int = 50_000, seed: int = 0,
    dimension: int = 384, model: bool = False, model_sample: int = 2_000,
) -> dict[str, Any]:  # fmt: skip
    """Embed a sample of the shop's products with recsite's HashingEmbedder (and, with
    ``model``, the packaged MiniLM on a smaller sample) and compare the mean cosine of random
    pairs in the same category, in the same department but another aisle, and across
    departments. Texts are what recsite embeds (``product_embedding_text``, default template)
    and titles alone."""
    from recommender.ml.embedding import HashingEmbedder, TransformerEmbedder
    from recommender.ml.text import product_embedding_text

    path = _find(Path(folder), "products.csv")
    if path is None:
        raise FileNotFoundError(f"{folder}: no products.csv")
    rows = list(_read_csv(path))
    rng = np.random.default_rng([seed, 9])
    rows = [rows[i] for i in sorted(rng.choice(len(rows), min(sample, len(rows)), replace=False))]
    texts = {
        "text": [
            product_embedding_text(
                title=r["title"], category=r["category"], brand=r["brand"],
                tags=r["tags"].split("|") if r["tags"] else (), description=r["description"],
            )
            for r in rows
        ],
        "title": [r["title"] for r in rows],
    }  # fmt: skip
    category = np.unique([r["category"] for r in rows], return_inverse=True)[1]
    department = np.unique([r["category"].split("/")[0] for r in rows], return_inverse=True)[1]
    # Random pairs: within a category (via a category-sorted order), within a department in
    # another category, and in different departments.
    order = np.argsort(category, kind="stable")
    lo = np.searchsorted(category[order], category[order])
    hi = np.searchsorted(category[order], category[order], side="right")
    first = rng.integers(0, len(rows), pairs * 4)
    pick = order[first]
    mate = order[lo[first] + (rng.random(len(first)) * (hi[first] - lo[first])).astype(int)]
    keep = mate != pick
    same = (pick[keep][:pairs], mate[keep][:pairs])
    other = rng.integers(0, len(rows), len(first))
    dept = (department[pick] == department[other]) & (category[pick] != category[other])
    cross = department[pick] != department[other]
    groups = {
        "same_category": same,
        "same_department_other_category": (pick[dept][:pairs], other[dept][:pairs]),
        "other_department": (pick[cross][:pairs], other[cross][:pairs]),
    }

    def cosines(vectors: np.ndarray, n: int) -> dict[str, float]:
        result = {}
        for name, (a, b) in groups.items():
            mask = (a < n) & (b < n)
            result[name] = round(_pair_cosines(vectors, a[mask], b[mask]), 3)
        return result

    report: dict[str, Any] = {"sample": len(rows), "dimension": dimension}
    hashing = HashingEmbedder(dimension=dimension)
    for kind, items in texts.items():
        # In slices: one call builds float64 rows, about 3 KB per text at 384 dimensions.
        vectors = np.empty((len(items), dimension), dtype=np.float32)
        t0 = time.perf_counter()
        for start in range(0, len(items), EMBED_SLICE):
            vectors[start : start + EMBED_SLICE] = hashing.embed(items[start : start + EMBED_SLICE])
        seconds = time.perf_counter() - t0
        report[f"hashing_{kind}"] = {
            "products_per_s": round(len(items) / seconds),
            "mean_cosine": cosines(vectors, len(items)),
        }
    if model:
        embedder = TransformerEmbedder(device="cpu")
        n = min(model_sample, len(rows))
        for kind, items in texts.items():
            t0 = time.perf_counter()
            vectors = embedder.embed(items[:n])
            seconds = time.perf_counter() - t0
            report[f"{embedder.model_name}_{kind}"] = {
                "sample": n,
                "products_per_s": round(n / seconds),
                "mean_cosine": cosines(vectors, n),
            }
    return report


# ---------------------------------------------------------------------------------------------
# Command line.


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Generate a synthetic shop in the interchange format (bench tool).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--out", help="output folder (created; existing shop files replaced)")
    for spec in dataclasses.fields(ShopConfig):
        option = "--" + spec.name.replace("_", "-")
        kwargs: dict[str, Any] = {"default": spec.default, "help": spec.metadata["help"]}
        if isinstance(spec.default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = type(spec.default)
        if "choices" in spec.metadata:
            kwargs["choices"] = spec.metadata["choices"]
        parser.add_argument(option, dest=spec.name, **kwargs)
    parser.add_argument("--check", action="store_true", help="read the files back and check")
    parser.add_argument("--check-only", metavar="DIR", help="only check an existing shop")
    parser.add_argument(
        "--embed-check", type=int, default=0, metavar="N",
        help="embed N products with the HashingEmbedder; cosine within/across categories",
    )  # fmt: skip
    parser.add_argument(
        "--embed-model", action="store_true",
        help="with --embed-check, also the packaged MiniLM on up to 2,000 products (slow)",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def _print_summary(report: dict[str, Any], folder: Path) -> None:
    s, t = report["summary"], report["timing"]
    total = max(s["events"], 1)
    types = ", ".join(f"{k} {v:,} ({v / total:.1%})" for k, v in s["event_types"].items())
    print(f"shop: {s['products']:,} products, {s['customers']:,} customers, "
          f"{s['events']:,} events -> {folder}")  # fmt: skip
    print(f"  event types: {types}")
    print(f"  sessions: {s['sessions']:,} ({s['events_per_session']} events each); baskets "
          f"{s['baskets']:,} ({s['items_per_basket']} items each)")  # fmt: skip
    print(f"  repeat purchases: {s['repeat_purchase_share']:.1%} of purchases; new products "
          f"({s['products_new']:,} launched in the span): {s['new_product_event_share']:.1%} "
          f"of events; top 1% of products: {s['top_1pct_product_event_share']:.1%} of events; "
          f"{s['products_with_events']:,} products have events")  # fmt: skip
    print(f"  time: vocabulary {t['vocabulary_s']} s, catalogue {t['catalogue_s']} s, events "
          f"{t['events_s']} s ({t['events_per_s']:,} events/s), total {t['total_s']} s; peak "
          f"RSS {t['peak_rss_mb']:,} MB; load average {t['load_average']}; {t['cpu']}")  # fmt: skip
    sizes = ", ".join(f"{name} {size / 1e6:,.1f} MB" for name, size in report["files"].items())
    print(f"  files: {sizes}")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.check_only:
            print(json.dumps(shop_stats(args.check_only), indent=2))
            return 0
        if not args.out:
            parser.error("--out is required (or --check-only DIR)")
        config = ShopConfig(
            **{f.name: getattr(args, f.name) for f in dataclasses.fields(ShopConfig)}
        )
        log = None if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
        report = generate(config, args.out, log=log)
        _print_summary(report, Path(args.out))
        if args.check:
            t0 = time.perf_counter()
            stats = shop_stats(args.out)
            print(f"check ({time.perf_counter() - t0:.1f} s): {json.dumps(stats)}")
            if any(stats["problems"].values()):
                print(f"shopgen: check failed: {stats['problems']}", file=sys.stderr)
                return 1
        if args.embed_check:
            result = embedding_check(args.out, sample=args.embed_check, model=args.embed_model)
            print(f"embedding check: {json.dumps(result)}")
    except (ValueError, FileNotFoundError) as exc:
        print(f"shopgen: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
