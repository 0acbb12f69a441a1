"""Every file custseg writes and reads, described once: summary.json, model.json, run.json.

Each file is a pydantic model; the same model writes the file (:meth:`Document.dumps`) and
reads it back (:meth:`Document.read`), so a file custseg can read is exactly a file it could
have written. Reading a broken or hostile file gives one line naming the file, the key and
the fix; a file of another format version says which version it is.

The JSON text is ``json.dumps(..., indent=2, ensure_ascii=False)`` of the model's plain-JSON
form: numbers print as Python prints them (``1e-05``, ``0.1``), NaN and infinities as
``null``, keys in the order the fields are declared.
"""

from __future__ import annotations

import datetime as dt
import json
import reprlib
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    ValidationError,
    model_serializer,
)

from .config import RunConfig
from .errors import CustsegError, InputError, ModelFileError
from .model import ClusterModel, KSelection

__all__ = [
    "LEVELS",
    "BacktestEvidence",
    "BacktestFile",
    "BacktestSegment",
    "CompareFile",
    "CompareRun",
    "CompareTotals",
    "CustomerStats",
    "Document",
    "Flow",
    "InputRecord",
    "Interval",
    "LedgerRecord",
    "Machine",
    "MatchRecord",
    "MethodRecord",
    "MethodRowRecord",
    "MethodsFile",
    "Metrics",
    "ModelFile",
    "NewSegmentSource",
    "OldSegmentFate",
    "ReferenceRecord",
    "RunInput",
    "RunRecord",
    "ScoredWith",
    "SegmentRecord",
    "SegmentRef",
    "StabilityRecord",
    "Summary",
]

LEVELS = ("low", "medium", "high")
Level = Literal["low", "medium", "high"]


def _omitted(value: Any) -> bool:
    return value is None


#: A field written only when it has a value: money of data without money, keys added after
#: the first release (so a default run's files stay as they were).
Omitted = Field(None, exclude_if=_omitted)


class _Part(BaseModel):
    """A nested object of a file: no unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Document(_Part):
    """A file custseg writes: versioned, written and read by the same model.

    Subclasses set :attr:`FILE` (its name in a run folder) and declare ``format`` and
    ``format_version`` as their first fields, with the current values as defaults.
    """

    FILE: ClassVar[str]
    FIX: ClassVar[str] = "re-create it with `custseg run`"

    def to_json(self) -> dict[str, Any]:
        """The plain-JSON form (NaN and infinities as None)."""
        out: dict[str, Any] = json.loads(self.model_dump_json())
        return out

    def dumps(self) -> str:
        """The file's text."""
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"

    def write(self, path: str | Path) -> Path:
        """Write the file to ``path`` (a file path)."""
        p = Path(path)
        p.write_text(self.dumps(), encoding="utf-8")
        return p

    @classmethod
    def read(cls, path: str | Path, *, fix: str | None = None) -> Self:
        """Read and validate a file written by :meth:`write`.

        Raises
        ------
        InputError
            If the file is missing, not JSON, of another format or version, or malformed
            (:class:`ModelFileError` for model.json); one line naming the file, the key and
            ``fix`` (how to get a good file).
        """
        p = Path(path)
        fix = fix or cls.FIX
        error = ModelFileError if cls is ModelFile else InputError
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise error(f"{p} does not exist: {fix}.") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise error(f"{p} is not readable JSON ({msg}): {fix}.") from None
        return cls.parse(data, where=str(p), fix=fix)

    @classmethod
    def parse(cls, data: Any, *, where: str, fix: str) -> Self:
        """Validate a parsed JSON document (see :meth:`read`)."""
        error = ModelFileError if cls is ModelFile else InputError
        if not isinstance(data, dict):
            raise error(f"{where} holds no JSON object: {fix}.")
        fmt = cls.model_fields["format"].default
        version = cls.model_fields["format_version"].default
        if data.get("format") != fmt:
            seen = reprlib.repr(data.get("format"))
            raise error(f"{where} is not a {fmt} file (format {seen}): {fix}.")
        if data.get("format_version") != version:
            seen = reprlib.repr(data.get("format_version"))
            raise error(
                f"{where} is format version {seen} of {fmt}; this custseg reads version "
                f"{version}: {fix} (or use the custseg release that wrote it)."
            )
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise error(f"{where}: {_first_problem(exc)}: {fix}.") from None


def _first_problem(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    key = ".".join(str(p) for p in err["loc"]) or "the document"
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, CustsegError):
        problem = cause.problem if isinstance(cause, ModelFileError) else None
        return f"{key!r}: {problem or str(cause).rstrip('.')}"
    if err["type"] == "missing":
        return f"key {key!r} is missing"
    if err["type"] == "extra_forbidden":
        return f"key {key!r} is not known"
    return f"{key!r} {err['msg'].lower()} (got {reprlib.repr(err.get('input'))})"


# --- summary.json ----------------------------------------------------------------------------


class SegmentRecord(_Part):
    """One segment of summary.json: its name and words, size, revenue, R/F/M profile.

    For data without money (features recency and frequency) ``revenue``, ``share_revenue``
    and the monetary figures are left out.
    """

    cluster: int
    name: str
    description: str
    action: str
    customers: int
    share_customers: float
    revenue: float | None = Omitted
    share_revenue: float | None = Omitted
    recency_mean: float | None
    recency_median: float | None
    frequency_mean: float | None
    frequency_median: float | None
    monetary_mean: float | None = Omitted
    monetary_median: float | None = Omitted
    levels: dict[str, Level]
    #: The levels the name asserts (features the segment is mixed on are left out).
    asserted: dict[str, Level]
    #: Share of members whose own third contradicts an asserted level by two steps.
    contradiction_share: float
    #: With ``--returns net`` only: members whose net value is 0 or below (monetary 0).
    net_nonpositive: int | None = Omitted


class LedgerRecord(_Part):
    """Where every input row and customer went (see :class:`custseg.clean.Ledger`)."""

    rows_read: int
    rows_used: int
    rows_dropped: dict[str, int]
    customers_seen: int
    customers_segmented: int
    customers_without_purchase: int
    #: Of those, customers whose purchases all fall outside the date window (written only
    #: when there are any: a run without a window writes the ledger it always did).
    customers_outside_window: int = 0
    purchase_date_min: str | None
    purchase_date_max: str | None
    #: With ``--returns net`` only: cancellation lines subtracted from a segmented customer's
    #: monetary value (also counted under ``rows_dropped.cancellation``).
    rows_netted: int | None = Omitted
    #: With ``--returns net`` only: segmented customers whose net value is 0 or below (kept,
    #: with monetary 0).
    customers_net_nonpositive: int | None = Omitted

    @model_serializer(mode="wrap")
    def _omit_zero_window(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        if not self.customers_outside_window:
            out.pop("customers_outside_window", None)
        return out


class Metrics(_Part):
    """Quality of the final segmentation (None where undefined)."""

    silhouette: float | None
    calinski_harabasz: float | None
    davies_bouldin: float | None


class MethodRecord(_Part):
    """The segmentation method: its name, parameters and own figures per k of the sweep."""

    name: str
    params: dict[str, Any]
    #: Per k of k_selection.k_values: ``merge_height`` and ``merge_gap`` (Ward), ``bic`` and
    #: ``aic`` (mixtures); empty for K-Means (its SSE is in k_selection) and RFM scores.
    figures: dict[str, list[float | None]]
    #: Customers the k sweep ran on when it ran on a seeded sample (None: all of them).
    sweep_sample: int | None


class StabilityRecord(_Part):
    """Adjusted Rand indices of refits against the run's segments (see custseg.stability)."""

    seeds: list[float]
    resamples: list[float]
    seed_mean: float
    resample_mean: float
    sample: int | None
    deterministic: bool


class CustomerStats(_Part):
    """Counts and means over all customers."""

    total: int
    outliers: int
    recency_mean: float
    frequency_mean: float
    #: Left out for data without money.
    monetary_mean: float | None = Omitted


class InputRecord(_Part):
    """The input a run read and how (its columns, encoding, date format)."""

    name: str
    files: int
    size_bytes: int
    sha256: str | None
    format: str
    encoding: str | None
    sheet: str | None
    columns: dict[str, str]
    date_format: str | None


class ScoredWith(_Part):
    """The saved model that scored a run's customers."""

    model_sha256: str
    model_as_of: dt.date
    model_file: str


class MatchRecord(_Part):
    """How one segment matched the reference run's (see custseg.reference)."""

    cluster: int
    name: str
    old_cluster: int | None
    old_name: str | None
    distance: float | None
    radius: float | None


class ReferenceRecord(_Part):
    """The reference model a run's names were matched to, and each segment's match."""

    model_sha256: str
    model_as_of: dt.date
    model_file: str
    matches: list[MatchRecord]


class Summary(Document):
    """summary.json: everything a run found, reproducible byte for byte."""

    FILE: ClassVar[str] = "summary.json"

    format: Literal["custseg-summary"] = "custseg-summary"
    format_version: Literal[1] = 1
    custseg_version: str
    as_of: dt.date
    k: int
    #: The features segmented on, when not recency, frequency and monetary: ``["recency",
    #: "frequency"]`` for data without money (no value column, or ``--no-monetary``).
    features: list[str] | None = Omitted
    k_selection: KSelection
    metrics: Metrics
    method: MethodRecord
    stability: StabilityRecord | None
    segments: list[SegmentRecord]
    ledger: LedgerRecord
    customers: CustomerStats
    input: InputRecord
    settings: RunConfig
    #: When the segments were scored with a saved model rather than fitted: which one.
    scored_with: ScoredWith | None = None
    #: When names were matched to a reference run (--reference): the matching.
    reference: ReferenceRecord | None = None


# --- model.json ------------------------------------------------------------------------------


class SegmentRef(_Part):
    """A segment's id and words, as a saved model names it."""

    cluster: int
    name: str
    description: str
    action: str


def _model_in(value: Any) -> Any:
    return value if isinstance(value, ClusterModel) else ClusterModel.from_dict(value)


ModelField = Annotated[
    ClusterModel,
    BeforeValidator(_model_in),
    PlainSerializer(lambda m: m.to_dict(), return_type=dict),
]


class ModelFile(Document):
    """model.json: what is needed to score new customers the way the run did."""

    FILE: ClassVar[str] = "model.json"

    format: Literal["custseg-model"] = "custseg-model"
    format_version: Literal[2] = 2
    custseg_version: str
    as_of: dt.date
    model: ModelField
    segments: list[SegmentRef]
    settings: RunConfig
    #: The source columns of each role in the run (scoring reuses them where they exist;
    #: dates are read as a run reads them, whatever the format).
    columns: dict[str, str] = Field(default_factory=dict)


# --- run.json --------------------------------------------------------------------------------


class RunInput(_Part):
    """The input's identity: name, size, checksum (None above the checksum size limit)."""

    name: str
    size_bytes: int
    sha256: str | None


class Machine(_Part):
    """Where the run ran."""

    platform: str
    cpus: int | None


class RunRecord(Document):
    """run.json: provenance of one run (differs between identical runs)."""

    FILE: ClassVar[str] = "run.json"

    format: Literal["custseg-run"] = "custseg-run"
    format_version: Literal[1] = 1
    command: list[str] | None
    versions: dict[str, str | None]
    seed: int | None
    as_of: dt.date
    input: RunInput
    timings_seconds: dict[str, float]
    machine: Machine
    warnings: list[str] = Field(default_factory=list)


# --- backtest.json ---------------------------------------------------------------------------


class BacktestSegment(_Part):
    """What one training segment's customers did in the holdout (for data without money: no
    revenue, and the share of the holdout orders)."""

    cluster: int
    name: str
    customers: int
    share_buying_again: float
    orders_per_customer: float
    revenue_per_customer: float | None = Omitted
    share_of_holdout_revenue: float | None = Omitted
    share_of_holdout_orders: float | None = Omitted
    #: The segment's value: its members' mean training monetary value (frequency, for data
    #: without money).
    value: float


class Interval(_Part):
    """A difference segments - baseline, with its bootstrap 95% interval."""

    estimate: float
    low: float
    high: float


class BacktestEvidence(_Part):
    """Spearman (holdout revenue, or orders for data without money) and AUC (buys again) of
    every ranking, and the differences."""

    spearman: dict[str, float]
    auc: dict[str, float]
    differences: dict[str, dict[str, Interval]]
    bootstrap: int
    bootstrap_customers: int
    seed: int | None


class BacktestFile(Document):
    """backtest.json: what segments fitted before a cutoff predicted about the holdout."""

    FILE: ClassVar[str] = "backtest.json"

    format: Literal["custseg-backtest"] = "custseg-backtest"
    format_version: Literal[1] = 1
    custseg_version: str
    holdout_days: int
    cutoff: dt.date
    end: dt.date
    train_as_of: dt.date
    customers: int
    buying_again: int
    #: What the Spearman ranks: written only as ``"orders"``, for data without money.
    target: Literal["orders"] | None = Omitted
    holdout_revenue: float | None = Omitted
    new_customers: int
    new_revenue: float | None = Omitted
    k: int
    k_selection: KSelection
    segments: list[BacktestSegment]
    evidence: BacktestEvidence
    input: InputRecord
    settings: RunConfig


# --- compare.json ----------------------------------------------------------------------------


class CompareRun(_Part):
    """One side of a comparison: which run it is (as_of, input, method, k) and its segments."""

    folder: str
    as_of: dt.date
    input: RunInput
    method: str
    k: int
    customers: int
    revenue: float | None = Omitted  # None: the run has no monetary value
    segments: list[SegmentRef]


class Flow(_Part):
    """One cell of the migration matrix: customers of segment ``from`` who are in ``to`` now.

    ``from`` is None for new customers (only in the new run), ``to`` for lost ones.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    from_: str | None = Field(alias="from")
    from_cluster: int | None
    to: str | None
    to_cluster: int | None
    customers: int
    revenue_old: float | None = Omitted
    revenue_new: float | None = Omitted


class CompareTotals(_Part):
    """Customers of each run, in common and by what became of them; revenue of each run."""

    customers_old: int
    customers_new: int
    customers_common: int
    customers_total: int
    stayed: int
    moved: int
    new: int
    lost: int
    revenue_old: float | None = Omitted
    revenue_new: float | None = Omitted
    revenue_new_of_new: float | None = Omitted
    revenue_old_of_lost: float | None = Omitted


class OldSegmentFate(_Part):
    """What became of an old segment's customers: stayed (same name), moved, lost."""

    cluster: int
    name: str
    customers: int
    revenue_old: float | None = Omitted
    stayed: int
    moved: int
    lost: int
    went_to: dict[str, int]


class NewSegmentSource(_Part):
    """Where a new segment's customers came from: stayed (same name), moved in, new."""

    cluster: int
    name: str
    customers: int
    revenue_new: float | None = Omitted
    stayed: int
    moved_in: int
    new: int
    came_from: dict[str, int]


class CompareFile(Document):
    """compare.json: the migration of customers and revenue from one run's segments to another's.

    The cells of ``matrix`` count every customer of either run once; revenue is each
    customer's monetary value in the old run (``revenue_old``) and in the new (``revenue_new``).
    """

    FILE: ClassVar[str] = "compare.json"
    FIX: ClassVar[str] = "re-create it with `custseg compare OLD_RUN NEW_RUN --out DIR`"

    format: Literal["custseg-compare"] = "custseg-compare"
    format_version: Literal[1] = 1
    custseg_version: str
    old: CompareRun
    new: CompareRun
    totals: CompareTotals
    matrix: list[Flow]
    old_segments: list[OldSegmentFate]
    new_segments: list[NewSegmentSource]

    def to_json(self) -> dict[str, Any]:
        """The plain-JSON form, with each cell's ``from`` key under its own name."""
        out: dict[str, Any] = json.loads(self.model_dump_json(by_alias=True))
        return out


# --- methods.json ----------------------------------------------------------------------------


class MethodRowRecord(_Part):
    """One method on the data: its segmentation's quality, stability and evidence."""

    method: str
    k: int
    k_rule: str
    silhouette: float | None
    calinski_harabasz: float | None
    davies_bouldin: float | None
    largest_share: float
    stability_seeds: float | None
    stability_resamples: float | None
    holdout_spearman: float | None
    holdout_auc: float | None
    segments: list[str]


class MethodsFile(Document):
    """methods.json: every method on one input, side by side (custseg compare-methods)."""

    FILE: ClassVar[str] = "methods.json"

    format: Literal["custseg-methods"] = "custseg-methods"
    format_version: Literal[1] = 1
    custseg_version: str
    input: str
    holdout_days: int | None
    cutoff: dt.date | None
    methods: list[MethodRowRecord]
    #: The baselines' holdout Spearman and AUC (the same holdout for every method).
    baselines: dict[str, dict[str, float]]
    note: str | None
    settings: RunConfig
