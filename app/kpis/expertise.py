"""The expertise level, pure: given a shop's figures, its level, each criterion against the next
level's threshold, and what to improve to climb (docs/kpis.md, "The expertise level").

No I/O, no clock."""

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from math import ceil
from typing import Any, Literal

from app.kpis import expertise_texts as texts
from app.shops.settings import ExpertiseLevel, QualityWeights

NONE = "none"  # the level of a shop that meets no rung of the ladder
# Replies are expected within 24 business hours (the marketplaces' acknowledgement): a mean
# reply time at or under the target scores 100 %, twice the target 50 %, and so on.
DEFAULT_RESPONSE_TIME_TARGET_S = 86_400
QUALITY_MONTHS = 6  # after-sales quality looks at the last 6 months...
QUALITY_EXCLUDED_DAYS = 7  # ...up to 7 days before, when late replies and ratings are in
Component = Literal["response_rate", "response_time", "speed_rating", "quality_rating"]


def add_months(day: date, months: int) -> date:
    """`day` moved by whole months, clamped to the month's last day (31 Jan + 1 = 28/29 Feb)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    following = date(year + (month == 12), month % 12 + 1, 1)
    return date(year, month, min(day.day, (following - timedelta(days=1)).day))


def months_between(since: date, day: date) -> int:
    """Whole months from `since` to `day`: the largest n with add_months(since, n) <= day."""
    months = (day.year - since.year) * 12 + day.month - since.month
    if months > 0 and add_months(since, months) > day:
        months -= 1
    return max(0, months)


def quality_window(as_of: date) -> tuple[date, date]:
    """The local dates (both included) after-sales quality covers as of `as_of`: 6 months
    ending 7 days before it. As of Monday 16 March 2026: 9 Sept 2025 to Sunday 8 March 2026."""
    end = as_of - timedelta(days=QUALITY_EXCLUDED_DAYS)  # first day left out
    return add_months(end, -QUALITY_MONTHS), end - timedelta(days=1)


@dataclass(frozen=True)
class AfterSales:
    """The KPI report's figures over the quality window; None where it has none."""

    response_rate: float | None  # 0-1
    reply_business_s_mean: float | None
    speed_rating_mean: float | None  # 1-5
    quality_rating_mean: float | None  # 1-5
    start: date
    end: date


@dataclass(frozen=True)
class Figures:
    """All a level is decided on, gathered by `expertise_service`."""

    seller_since: date
    as_of: date  # the shop-local date the level is for
    ratings: int  # order ratings ever (1-5)
    rating_sum: int
    positive_ratings: int  # ratings of 4 or 5
    after_sales: AfterSales

    @property
    def seniority_months(self) -> int:
        return months_between(self.seller_since, self.as_of)

    @property
    def rating_mean(self) -> float | None:
        # Rounded as shown, so a shown 2.5 never fails a threshold of 2.5.
        return round(self.rating_sum / self.ratings, 2) if self.ratings else None


def component_scores(
    after_sales: AfterSales, response_time_target_s: float = DEFAULT_RESPONSE_TIME_TARGET_S
) -> dict[Component, float | None]:
    """Each part of after-sales quality as a 0-1 score; None where the window has no figure.

    response_rate as is; response_time = target / mean reply time (business), capped at 1;
    a 1-5 rating mean m scores (m - 1) / 4, so 1 star is 0 % and 5 stars 100 %.
    """
    mean_s = after_sales.reply_business_s_mean
    time_score = None if mean_s is None else min(1.0, response_time_target_s / max(mean_s, 1.0))

    def rating(mean: float | None) -> float | None:
        return None if mean is None else min(1.0, max(0.0, (mean - 1) / 4))

    return {
        "response_rate": after_sales.response_rate,
        "response_time": time_score,
        "speed_rating": rating(after_sales.speed_rating_mean),
        "quality_rating": rating(after_sales.quality_rating_mean),
    }


def quality_score(scores: dict[Component, float | None], weights: QualityWeights) -> float | None:
    """The weighted mean of the parts that have a figure, their weights scaled back to a sum
    of 1 (a shop whose replies nobody rated is judged on its response rate and time alone);
    None when no weighted part has a figure. Rounded to 0.1 %, as shown."""
    present = [(s, float(getattr(weights, name))) for name, s in scores.items() if s is not None]
    total = sum(w for _, w in present)
    if total <= 0:
        return None
    return round(sum(s * w for s, w in present) / total, 3)


@dataclass(frozen=True)
class Criterion:
    name: str  # seniority_months, rating_mean, positive_ratings, after_sales_quality
    value: float | None
    threshold: float
    met: bool


@dataclass(frozen=True)
class Assessment:
    level: str
    next_level: str | None
    criteria: list[Criterion]
    to_improve: list[str]
    quality: float | None
    scores: dict[Component, float | None] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The part of the API answer (and of a snapshot's `data`) the rules decide."""
        return {
            "level": self.level,
            "criteria": [asdict(c) for c in self.criteria],
            "next_level": self.next_level,
            "to_improve": self.to_improve,
        }


def _met(value: float | None, threshold: float) -> bool:
    # A threshold of 0 asks nothing, so a shop without that figure still meets it.
    return threshold <= 0 or (value is not None and value >= threshold)


def _criteria(figures: Figures, quality: float | None, level: ExpertiseLevel) -> list[Criterion]:
    values: list[tuple[str, float | None, float]] = [
        ("seniority_months", figures.seniority_months, level.months),
        ("rating_mean", figures.rating_mean, level.rating_mean),
        ("positive_ratings", figures.positive_ratings, level.positive_ratings),
        ("after_sales_quality", quality, level.after_sales_quality),
    ]
    return [Criterion(n, v, t, _met(v, t)) for n, v, t in values]


def assess(
    figures: Figures,
    levels: Sequence[ExpertiseLevel],
    weights: QualityWeights,
    language: str,
    response_time_target_s: float = DEFAULT_RESPONSE_TIME_TARGET_S,
) -> Assessment:
    """The highest rung whose every threshold is met, climbing from the lowest (a rung is
    never skipped), and the criteria against the next rung (the top one's once reached)."""
    scores = component_scores(figures.after_sales, response_time_target_s)
    quality = quality_score(scores, weights)
    reached = -1
    for index, rung in enumerate(levels):
        if not all(c.met for c in _criteria(figures, quality, rung)):
            break
        reached = index
    level = levels[reached].name if reached >= 0 else NONE
    if reached + 1 >= len(levels):
        return Assessment(level, None, _criteria(figures, quality, levels[-1]), [], quality, scores)
    target = levels[reached + 1]
    criteria = _criteria(figures, quality, target)
    advice = _advice(figures, criteria, target, scores, language, response_time_target_s)
    return Assessment(level, target.name, criteria, advice, quality, scores)


def ratings_needed(ratings: int, rating_sum: int, threshold: float) -> int | None:
    """How many more 5-star ratings lift the mean to `threshold` (None: never, at 5)."""
    if threshold >= 5:
        return None if rating_sum < 5 * ratings or ratings == 0 else 0
    return max(0, ceil((threshold * ratings - rating_sum) / (5 - threshold) - 1e-9))


def _advice(
    figures: Figures,
    criteria: list[Criterion],
    target: ExpertiseLevel,
    scores: dict[Component, float | None],
    language: str,
    response_time_target_s: float,
) -> list[str]:
    say = texts.Writer(language, target.name)
    advice: list[str] = []
    for c in criteria:
        if c.met:
            continue
        if c.name == "seniority_months":
            advice.append(
                say.seniority(
                    c.value, target.months, add_months(figures.seller_since, target.months)
                )
            )
        elif c.name == "rating_mean":
            needed = ratings_needed(figures.ratings, figures.rating_sum, target.rating_mean)
            advice.append(say.rating_mean(c.value, target.rating_mean, needed))
        elif c.name == "positive_ratings":
            advice.append(say.positive_ratings(figures.positive_ratings, target.positive_ratings))
        else:
            advice.extend(
                _quality_advice(say, figures.after_sales, c, scores, response_time_target_s)
            )
    return advice


def _quality_advice(
    say: "texts.Writer",
    after_sales: AfterSales,
    criterion: Criterion,
    scores: dict[Component, float | None],
    response_time_target_s: float,
) -> list[str]:
    """The overall sentence, then one per part scoring under the threshold, weakest first,
    and one for replies nobody rated (the rating links are the way to get ratings)."""
    if criterion.value is None:
        return [say.no_after_sales(criterion.threshold, after_sales.start, after_sales.end)]
    lines = [say.quality(criterion.value, criterion.threshold, after_sales.start, after_sales.end)]
    weak = sorted(
        (s, name) for name, s in scores.items() if s is not None and s < criterion.threshold
    )
    for _, name in weak:
        if name == "response_rate":
            lines.append(say.response_rate(after_sales.response_rate or 0.0))
        elif name == "response_time":
            mean_s = after_sales.reply_business_s_mean or 0.0
            lines.append(say.response_time(mean_s, response_time_target_s))
        elif name == "speed_rating":
            lines.append(say.speed_rating(after_sales.speed_rating_mean or 0.0))
        else:
            lines.append(say.quality_rating(after_sales.quality_rating_mean or 0.0))
    if scores["speed_rating"] is None and scores["quality_rating"] is None:
        lines.append(say.no_reply_ratings())
    return lines
