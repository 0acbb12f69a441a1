"""Two runs -> who moved where: the migration of customers and revenue between their segments.

Definitions (the same in the Python API, compare.json and the page):

- Customers are matched by ``customer_id`` exactly as segments.csv writes it (text).
- A customer's **old** and **new segment** are the names summary.json gives their clusters in
  each run, as they are: runs with other names still compare, and the rows and columns of the
  matrix are names (cluster ids are kept beside them).
- **new** customers are only in the new run, **lost** ones only in the old; a customer in both
  **stayed** when the two names are equal and **moved** otherwise.
- **revenue_old** and **revenue_new** are a customer's monetary value in the old and the new
  run (0 where the customer is absent, and in a run of data without money); both are kept
  because a run's monetary value covers all of its data up to its ``as_of``.

Every customer of either run is counted exactly once: the cells of the matrix add up to the
customers of the two runs together, its rows (lost included) to the old run's customers and
revenue, its columns (new included) to the new run's. :func:`compare` checks it.

The module is ``comparison``, not ``compare``: a submodule of that name would be the package
attribute ``custseg.compare`` once imported, hiding the function.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from .errors import CustsegWarning, InputError
from .runs import SEGMENTS_FILE, RunFiles, read_run

__all__ = ["ABSENT", "LOST", "NEW", "STATUSES", "Comparison", "compare", "matrix_labels"]

#: Row label of the customers only in the new run, column label of those only in the old one
#: (a segment of either run with that name puts the label in more brackets: see
#: :attr:`Comparison.new_label`).
NEW = "(new customers)"
LOST = "(lost customers)"
#: What became of each customer, in the order they are counted.
STATUSES = ("stayed", "moved", "new", "lost")
#: The cluster code of "not in this run" in :attr:`Comparison.flows` before it becomes <NA>.
ABSENT = -1

Value = Literal["customers", "revenue_old", "revenue_new"]


@dataclass(frozen=True)
class Comparison:
    """Where the customers of one run went in another.

    Attributes
    ----------
    old, new : RunFiles
        The two runs, as :func:`custseg.read_run` reads them.
    customers : DataFrame
        One row per customer of either run (the new run's in its order, then the lost ones),
        index ``customer_id``: ``old_cluster``, ``new_cluster`` (Int64, <NA> where absent),
        ``old_segment``, ``new_segment`` (<NA> where absent), ``revenue_old``,
        ``revenue_new`` (0 where absent) and ``status`` (one of :data:`STATUSES`).
    flows : DataFrame
        One row per cell of the migration matrix, every old segment (then the new customers)
        by every new segment (then the lost ones), empty cells included:
        ``from_cluster``, ``from_segment``, ``to_cluster``, ``to_segment`` (<NA> for the new
        and the lost), ``customers``, ``revenue_old``, ``revenue_new``.
    previous_segment : ndarray of str
        The old segment of each row of the new run's segments.csv ("" for new customers).
    new_label, lost_label : str
        The matrix's labels of the new and the lost customers (:data:`NEW`, :data:`LOST`
        unless a segment has that name).
    """

    old: RunFiles
    new: RunFiles
    customers: pd.DataFrame
    flows: pd.DataFrame
    previous_segment: np.ndarray
    new_label: str = NEW
    lost_label: str = LOST

    def matrix(self, value: Value = "customers") -> pd.DataFrame:
        """The migration matrix: old segments (then new customers) by new segments (then lost).

        Parameters
        ----------
        value : {"customers", "revenue_old", "revenue_new"}
            What the cells hold. The cell of new customers who are lost is always 0.

        Returns
        -------
        DataFrame
            Indexed by old segment names and :attr:`new_label`, with columns the new segment
            names and :attr:`lost_label`.
        """
        if value not in ("customers", "revenue_old", "revenue_new"):
            raise ValueError(
                f"value={value!r} is not a matrix value: use customers, revenue_old or revenue_new."
            )
        f = self.flows
        rows = [*self.old.names.values(), self.new_label]
        cols = [*self.new.names.values(), self.lost_label]
        table = pd.DataFrame(
            {
                "row": f["from_segment"].fillna(self.new_label).astype(str),
                "col": f["to_segment"].fillna(self.lost_label).astype(str),
                "v": f[value],
            }
        )
        out = table.pivot(index="row", columns="col", values="v").reindex(index=rows, columns=cols)
        out = out.fillna(0).astype(f[value].dtype)
        out.index.name, out.columns.name = "old segment", "new segment"
        return out

    def old_segments(self) -> pd.DataFrame:
        """Per old segment: its customers and revenue, and how many stayed, moved, were lost."""
        f = self.flows[self.flows["from_cluster"].notna()]
        same = f["from_segment"] == f["to_segment"].fillna("")
        lost = f["to_cluster"].isna()
        by = f.groupby("from_cluster", sort=False)
        out = pd.DataFrame(
            {
                "segment": by["from_segment"].first(),
                "customers": by["customers"].sum(),
                "revenue_old": by["revenue_old"].sum(),
                "stayed": f["customers"].where(same, 0).groupby(f["from_cluster"]).sum(),
                "lost": f["customers"].where(lost, 0).groupby(f["from_cluster"]).sum(),
            }
        )
        out["moved"] = out["customers"] - out["stayed"] - out["lost"]
        out.index.name = "cluster"
        return out[["segment", "customers", "revenue_old", "stayed", "moved", "lost"]]

    def new_segments(self) -> pd.DataFrame:
        """Per new segment: its customers and revenue, and how many stayed, came in, are new."""
        f = self.flows[self.flows["to_cluster"].notna()]
        same = f["to_segment"] == f["from_segment"].fillna("")
        new = f["from_cluster"].isna()
        by = f.groupby("to_cluster", sort=False)
        out = pd.DataFrame(
            {
                "segment": by["to_segment"].first(),
                "customers": by["customers"].sum(),
                "revenue_new": by["revenue_new"].sum(),
                "stayed": f["customers"].where(same, 0).groupby(f["to_cluster"]).sum(),
                "new": f["customers"].where(new, 0).groupby(f["to_cluster"]).sum(),
            }
        )
        out["moved_in"] = out["customers"] - out["stayed"] - out["new"]
        out.index.name = "cluster"
        return out[["segment", "customers", "revenue_new", "stayed", "moved_in", "new"]]

    @property
    def money_old(self) -> bool:
        """Whether the old run has a monetary value (a run of data without money has none)."""
        return "monetary" in self.old.customers.columns

    @property
    def money_new(self) -> bool:
        """Whether the new run has a monetary value."""
        return "monetary" in self.new.customers.columns

    def totals(self) -> dict[str, int | float | None]:
        """Customers of each run, in common, by status; revenue of each run, new and lost
        (None for a run without money)."""
        c = self.customers
        counts = c["status"].value_counts()
        n = {s: int(counts.get(s, 0)) for s in STATUSES}

        def revenue(side: str, status: str | None = None) -> float | None:
            if not (self.money_old if side == "old" else self.money_new):
                return None
            v = c[f"revenue_{side}"]
            return float((v if status is None else v[c["status"] == status]).sum())

        return {
            "customers_old": len(self.old.customers),
            "customers_new": len(self.new.customers),
            "customers_common": n["stayed"] + n["moved"],
            "customers_total": len(c),
            **n,
            "revenue_old": revenue("old"),
            "revenue_new": revenue("new"),
            "revenue_new_of_new": revenue("new", "new"),
            "revenue_old_of_lost": revenue("old", "lost"),
        }


def _money(customers: pd.DataFrame) -> np.ndarray:
    """Each customer's monetary value; 0 for a run of data without money (no such column)."""
    if "monetary" not in customers.columns:
        return np.zeros(len(customers), dtype=np.float64)
    return customers["monetary"].to_numpy(dtype=np.float64)


def compare(old_run: str | Path, new_run: str | Path) -> Comparison:
    """Compare two runs: where each old segment's customers and revenue went in the new run.

    Parameters
    ----------
    old_run, new_run : path
        The ``--out`` folders of two finished runs, the earlier first.

    Returns
    -------
    Comparison

    Raises
    ------
    InputError
        If a folder is not a readable run (the message names the file and the fix), both are
        the same folder, a run lists a customer twice or names two segments alike, or the
        runs have no customer in common.

    Warns
    -----
    CustsegWarning
        If the old run's ``as_of`` is after the new run's (the folders may be swapped).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from custseg import RunConfig, run, write_run
    >>> from custseg.datasets import online_retail_path
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name, until in (("aug", "2011-08-31"), ("all", None)):
    ...     config = RunConfig.model_validate(
    ...         {"clean": {"until": until}, "cluster": {"k": 4, "select": "auto"}})
    ...     _ = write_run(run(online_retail_path(), config=config), folder / name, report=False)
    >>> c = compare(folder / "aug", folder / "all")
    >>> t = c.totals()
    >>> t["customers_old"], t["customers_new"], t["new"], t["lost"]
    (3317, 4338, 1021, 0)
    >>> int(c.matrix().to_numpy().sum()) == t["customers_total"]
    True
    """
    old = _read(old_run, "OLD_RUN")
    if _same_folder(Path(old_run), Path(new_run)):
        raise InputError(
            f"OLD_RUN and NEW_RUN are the same folder ({new_run}): pass an earlier run's folder "
            "first and a later run's second."
        )
    new = _read(new_run, "NEW_RUN")
    for r in (old, new):
        _check_run(r)
    if old.summary.as_of > new.summary.as_of:
        warnings.warn(
            f"OLD_RUN {old.out_dir} is as of {old.summary.as_of}, after NEW_RUN {new.out_dir} "
            f"({new.summary.as_of}); pass the earlier run first, or 'new' and 'lost' swap "
            "meanings.",
            CustsegWarning,
            stacklevel=2,
        )
    customers, previous = _match_customers(old, new)
    new_label, lost_label = matrix_labels(old.names.values(), new.names.values())
    flows = _flows(customers, old, new)
    _check_conserved(customers, flows, old, new)
    return Comparison(old, new, _named(customers, old, new), flows, previous, new_label, lost_label)


def _read(folder: str | Path, role: str) -> RunFiles:
    """The run, or its reading error saying which of the two runs it is."""
    try:
        return read_run(folder)
    except InputError as exc:
        raise type(exc)(f"{role}: {exc}") from None


def _same_folder(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def _check_run(r: RunFiles) -> None:
    """One name per segment and one row per customer: what matching by name and id needs."""
    names = list(r.names.values())
    twice = sorted({n for n in names if names.count(n) > 1})
    fix = f"re-create it with `custseg run INPUT --out {r.out_dir} --force`"
    if twice:
        raise InputError(
            f"{r.out_dir / 'summary.json'} names two segments {twice[0]!r}: a comparison "
            f"matches segments by name; {fix}."
        )
    ids = r.customers["customer_id"]
    dupes = ids[ids.duplicated()]
    if len(dupes):
        raise InputError(
            f"{r.out_dir / SEGMENTS_FILE} lists customer {str(dupes.iloc[0])!r} more than once: "
            f"{fix}."
        )


def matrix_labels(old_names: Iterable[str], new_names: Iterable[str]) -> tuple[str, str]:
    """The matrix's labels of the new and the lost customers: :data:`NEW` and :data:`LOST`,
    in as many more brackets as it takes not to be a segment name of either run.

    Examples
    --------
    >>> matrix_labels(["Champions", "(new customers)"], ["Lost"])
    ('((new customers))', '(lost customers)')
    """
    taken = {*old_names, *new_names}
    out = []
    for label in (NEW, LOST):
        while label in taken:
            label = f"({label})"
        out.append(label)
    return out[0], out[1]


def _match_customers(old: RunFiles, new: RunFiles) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per customer of either run (cluster codes, ABSENT where not in a run), and the
    old segment of each of the new run's customers."""
    oc, nc = old.customers, new.customers
    old_ids, new_ids = pd.Index(oc["customer_id"]), pd.Index(nc["customer_id"])
    pos = old_ids.get_indexer(new_ids)  # each new customer's row in the old run, or -1
    common = pos >= 0
    if not common.any():
        raise InputError(
            f"{old.out_dir} and {new.out_dir} have no customer in common ({len(oc):,} "
            f"customers such as {str(old_ids[0])!r}, and {len(nc):,} such as "
            f"{str(new_ids[0])!r}): compare two runs of the same business, with the same "
            "customer id column (--customer-col)."
        )
    lost = np.ones(len(oc), dtype=bool)
    lost[pos[common]] = False
    o_cluster, o_money = oc["cluster"].to_numpy(), _money(oc)
    n_lost = int(lost.sum())
    table = pd.DataFrame(
        {
            "old_cluster": np.concatenate(
                [np.where(common, o_cluster[pos], ABSENT), o_cluster[lost]]
            ),
            "new_cluster": np.concatenate(
                [nc["cluster"].to_numpy(), np.full(n_lost, ABSENT, dtype=np.int64)]
            ),
            "revenue_old": np.concatenate([np.where(common, o_money[pos], 0.0), o_money[lost]]),
            "revenue_new": np.concatenate([_money(nc), np.zeros(n_lost)]),
        },
        index=new_ids.append(old_ids[lost]).rename("customer_id"),
    )
    names = np.array([*old.names.values(), ""], dtype=object)
    codes = {c: i for i, c in enumerate(old.names)} | {ABSENT: len(names) - 1}
    previous = names[pd.Series(table["old_cluster"].to_numpy()[: len(nc)]).map(codes).to_numpy()]
    return table, previous


def _flows(customers: pd.DataFrame, old: RunFiles, new: RunFiles) -> pd.DataFrame:
    """Every cell of the matrix, empty ones included (not the new-and-lost corner)."""
    sums = customers.groupby(["old_cluster", "new_cluster"]).agg(
        customers=("revenue_old", "size"),
        revenue_old=("revenue_old", "sum"),
        revenue_new=("revenue_new", "sum"),
    )
    grid = pd.MultiIndex.from_product(
        [[*old.names, ABSENT], [*new.names, ABSENT]], names=["old_cluster", "new_cluster"]
    ).drop((ABSENT, ABSENT))
    unknown = sums.index.difference(grid)
    if len(unknown):  # read_run refuses clusters summary.json does not list
        raise AssertionError(f"bug: cells {list(unknown)[:3]} are outside the matrix")
    cells = sums.reindex(grid, fill_value=0).reset_index()
    out = pd.DataFrame(
        {
            "from_cluster": _nullable(cells["old_cluster"]),
            "from_segment": _segment(cells["old_cluster"], old),
            "to_cluster": _nullable(cells["new_cluster"]),
            "to_segment": _segment(cells["new_cluster"], new),
            "customers": cells["customers"].astype(np.int64),
            "revenue_old": cells["revenue_old"].astype(np.float64),
            "revenue_new": cells["revenue_new"].astype(np.float64),
        }
    )
    return out


def _nullable(codes: pd.Series) -> pd.Series:
    return codes.astype("Int64").mask(codes == ABSENT)


def _segment(codes: pd.Series, r: RunFiles) -> pd.Series:
    return codes.map(r.names).astype(pd.StringDtype())


def _named(customers: pd.DataFrame, old: RunFiles, new: RunFiles) -> pd.DataFrame:
    """The customer table of :class:`Comparison`: names, <NA> where absent, the status."""
    o, n = customers["old_cluster"], customers["new_cluster"]
    out = pd.DataFrame(
        {
            "old_cluster": _nullable(o),
            "new_cluster": _nullable(n),
            "old_segment": _segment(o, old),
            "new_segment": _segment(n, new),
            "revenue_old": customers["revenue_old"],
            "revenue_new": customers["revenue_new"],
        },
        index=customers.index,
    )
    same = (out["old_segment"] == out["new_segment"]).fillna(False).to_numpy(dtype=bool)
    status = np.select(
        [o.to_numpy() == ABSENT, n.to_numpy() == ABSENT, same],
        ["new", "lost", "stayed"],
        default="moved",
    )
    out["status"] = pd.Categorical(status, categories=list(STATUSES))
    return out


def _check_conserved(
    customers: pd.DataFrame, flows: pd.DataFrame, old: RunFiles, new: RunFiles
) -> None:
    """Every customer once; rows add up to the old run, columns to the new one (or a bug)."""
    n_old, n_new = len(old.customers), len(new.customers)
    common = int(
        ((customers["old_cluster"] != ABSENT) & (customers["new_cluster"] != ABSENT)).sum()
    )
    from_old = flows["from_cluster"].notna()
    to_new = flows["to_cluster"].notna()
    checks = {
        "customers of either run": (len(customers), n_old + n_new - common),
        "cells": (int(flows["customers"].sum()), len(customers)),
        "old customers": (int(flows["customers"][from_old].sum()), n_old),
        "new customers": (int(flows["customers"][to_new].sum()), n_new),
        "old revenue": (float(flows["revenue_old"].sum()), float(_money(old.customers).sum())),
        "new revenue": (float(flows["revenue_new"].sum()), float(_money(new.customers).sum())),
        "revenue of new customers in the old run": (
            float(flows["revenue_old"][~from_old].sum()),
            0.0,
        ),
    }
    for what, (got, want) in checks.items():
        if not math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-6):
            raise AssertionError(f"bug: the matrix counts {got} {what}, the runs {want}")
