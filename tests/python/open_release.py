"""Opens a Koppel release the way a researcher would, with pyarrow and
DuckDB and nothing else, and checks what it promises: row counts as in the
manifest, the release id in the Parquet metadata, k-anonymity of the person
file recomputed in SQL (NULL is a group of its own in GROUP BY), and CSV
tables that agree with their Parquet twins.

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

codebook = json.loads((release / "codebook.json").read_text())
person_book = next(f for f in codebook["files"] if f["file"] == "persons.parquet")
qis = [v["name"] for v in person_book["variables"] if (v.get("generalisation") or "").startswith("quasi-identifier")]
assert len(qis) >= 5, qis

con = duckdb.connect()
cols = ", ".join(["year"] + qis)
smallest = con.execute(
    f"SELECT min(n) FROM (SELECT count(*) AS n FROM read_parquet(?) GROUP BY {cols})",
    [str(release / "persons.parquet")],
).fetchone()[0]
assert smallest >= k, f"a class of {smallest} rows in DuckDB's eyes"

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
