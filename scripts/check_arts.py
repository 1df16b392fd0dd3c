"""The outside check of an ARTS contribution: ARTS's own code judges what RTS Mapper wrote.

Runs the ARTS project's formatting functions (github.com/whrc/ARTS, ``src/ARTS/dataformatting.py``)
on a contribution written by ``python -m rts_mapper_plugin arts``: ``run_formatting_checks``,
``check_uids``, its seed recipe (``seed_gen`` + ``uuid5(NAMESPACE_DNS, seed)``, as in its
tutorial) against the UIDs written, ``check_intersections`` against the main data set (when
given) compared with the relationships written, and ``check_intersection_info`` (every overlap
classified). ARTS needs pandas and geopandas, which the plugin does not: run this with a Python
that has them and an ARTS checkout, e.g.

    python3 -m venv /tmp/artsenv && /tmp/artsenv/bin/pip install pandas geopandas pyogrio tqdm
    git clone https://github.com/whrc/ARTS /tmp/ARTS
    /tmp/artsenv/bin/python scripts/check_arts.py /tmp/ARTS contribution.geojson [main.geojson]

Prints one line per check and exits 1 when ARTS refuses anything.
"""

from __future__ import annotations

import sys
import tempfile
import uuid
import warnings
from pathlib import Path

RELATIONSHIPS = (
    "Intersections",
    "SelfIntersections",
    "RepeatRTS",
    "RepeatNegative",
    "MergedRTS",
    "SplitRTS",
    "NewRTS",
    "StabilizedRTS",
    "AccidentalOverlap",
    "FalseNegative",
    "UnknownRelationship",
)


def read(gpd, path):
    """A data set as ARTS's tutorial reads it, with the dates kept as the text the file holds
    (the reader turns a column of single dates into timestamps, which ARTS's code splits)."""
    frame = gpd.read_file(path)
    for column in frame.columns:
        if str(frame[column].dtype).startswith("datetime"):
            frame[column] = frame[column].dt.strftime("%Y-%m-%d")
    return frame


def main(arts_repo: str, contribution: str, main_dataset: str | None = None) -> int:
    sys.path.insert(0, str(Path(arts_repo) / "src"))
    import geopandas as gpd
    from ARTS import dataformatting

    warnings.simplefilter("ignore")
    failures = 0

    def check(name, call):
        nonlocal failures
        try:
            result = call()
        except Exception as exc:  # ARTS reports refusals as exceptions
            failures += 1
            print(f"REFUSED {name}: {type(exc).__name__}: {exc}")
            return None
        print(f"ok      {name}")
        return result

    new = read(gpd, contribution)
    check("run_formatting_checks", lambda: dataformatting.run_formatting_checks(new))
    check("check_uids", lambda: dataformatting.check_uids(new.UID))

    def same_uids():
        seeded = dataformatting.seed_gen(new.copy())
        recipe = [str(uuid.uuid5(uuid.NAMESPACE_DNS, name=s)) for s in seeded.seed]
        own = new.RepeatRTS.fillna("") == "" if "RepeatRTS" in new else [True] * len(new)
        differ = [i for i, (a, b, o) in enumerate(zip(new.UID, recipe, own)) if o and a != b]
        if differ:
            raise AssertionError(
                f"{len(differ)} of {len(new)} UIDs differ from ARTS's recipe, e.g. row {differ[0]}"
            )
        return len(recipe)

    check("UIDs equal ARTS's seed_gen + uuid5 recipe", same_uids)

    if main_dataset:
        main_data = read(gpd, main_dataset).to_crs("EPSG:3413")
        ours = new.to_crs("EPSG:3413")
        ours = ours.drop(columns=[c for c in RELATIONSHIPS if c in ours])

        def same(column, theirs, rows):
            mismatch = [
                i
                for i, a in zip(rows, theirs)
                if sorted(filter(None, a.split(",")))
                != sorted(filter(None, (new[column][i] or "").split(",")))
            ]
            if mismatch:
                raise AssertionError(
                    f"{column} differs from ARTS's in {len(mismatch)} rows, e.g. row {mismatch[0]}"
                )

        def same_intersections():
            theirs = dataformatting.check_intersections(ours.copy(), main_data, None, True)
            for column in ("Intersections", "SelfIntersections"):
                same(column, theirs[column], range(len(new)))
            return theirs

        theirs = check("check_intersections gives the same overlaps", same_intersections)

        def same_negatives():
            overlapping = theirs[
                (theirs.Intersections.str.len() > 0) | (theirs.SelfIntersections.str.len() > 0)
            ]
            classified = dataformatting.classify_negatives(overlapping, main_data)
            for column in ("RepeatNegative", "FalseNegative", "NewRTS"):
                same(column, classified[column], list(overlapping.index))

        if theirs is not None:
            check("classify_negatives gives the same negative relationships", same_negatives)

    def complete():
        table = new.copy()
        for column in [
            "RepeatRTS",
            "RepeatNegative",
            "StabilizedRTS",
            "NewRTS",
            "MergedRTS",
            "SplitRTS",
            "AccidentalOverlap",
            "UnknownRelationship",
            "Intersections",
            "SelfIntersections",
        ]:
            table[column] = table[column].fillna("") if column in table else ""
        dataformatting.your_rts_dataset_file = "contribution.geojson"  # ARTS reads this global
        with tempfile.TemporaryDirectory() as base:
            (Path(base) / "output").mkdir()
            dataformatting.check_intersection_info(table, None, Path(base), False)

    check("check_intersection_info (every overlap classified)", complete)
    print("ARTS accepts the contribution" if not failures else f"ARTS refuses {failures} check(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
