"""Opens a Koppel release the way a researcher would, with pyarrow and
DuckDB and nothing else, and checks what it promises: row counts as in the
manifest, the release id in the Parquet metadata, the protection against the
recipient who knows who responded recomputed in SQL (a person's rows of all
years together; NULL is a group of its own in GROUP BY), and CSV tables that
agree with their Parquet twins.

usage: open_release.py RELEASE_DIR K
"""

import json
import pathlib
import sys

import duckdb
import pyarrow.parquet as pq

release = pathlib.Path(sys.argv[1])
k = int(sys.argv[2])
manifest = json.loads((release / "manifest.json").read_text())
rows = {f["name"]: f.get("rows") for f in manifest["files"]}

for name in ("persons.parquet", "organisations.parquet"):
    table = pq.read_table(release / name)
    assert table.num_rows == rows[name], (name, table.num_rows, rows[name])
    meta = pq.read_metadata(release / name).metadata
    assert meta[b"koppel.release_id"].decode() == manifest["release_id"], name

report = json.loads((release / "disclosure-report.json").read_text())
con = duckdb.connect()
smallest = None
for recipient in report["person"]["recipients"]:
    if recipient["reference"] != "sample":
        continue
    cols = ", ".join(recipient["knows"])
    n = con.execute(
        f"""SELECT min(n) FROM (
              SELECT count(*) AS n FROM (
                SELECT person_id, list(struct_pack({cols}) ORDER BY year) AS rows
                FROM read_parquet(?) GROUP BY person_id)
              GROUP BY rows)""",
        [str(release / "persons.parquet")],
    ).fetchone()[0]
    assert n >= k, f"{recipient['recipient']}: a class of {n} persons in DuckDB's eyes"
    smallest = n if smallest is None else min(smallest, n)
assert smallest is not None, "the insurer, who knows who responded, is declared by default"

for name in sorted(n for n in rows if n.startswith("table-") and n.endswith(".parquet")):
    parquet_path = str(release / name)
    csv_path = str(release / name.replace(".parquet", ".csv"))
    a = con.execute("SELECT count(*), count(status) FROM read_parquet(?)", [parquet_path]).fetchone()
    b = con.execute("SELECT count(*), count(status) FROM read_csv(?, header = true)", [csv_path]).fetchone()
    assert a == b, (name, a, b)
    unit = next(c for c in pq.read_schema(parquet_path).names if c in ("person_years", "organisation_years"))
    unsafe = con.execute(
        f"SELECT count(*) FROM read_parquet(?) WHERE status NOT IN ('safe', 'empty') AND {unit} IS NOT NULL",
        [parquet_path],
    ).fetchone()[0]
    assert unsafe == 0, (name, unsafe)

print(f"release {manifest['release_id']}: opened with pyarrow and DuckDB; k = {smallest} reached")
