"""The floor of the sector benchmark: parse every delivery once, plainly.

What no pipeline over these files can beat on this machine: pyarrow's
multi-threaded C++ CSV reader splits every line of every CSV delivery into
fields (every column as text, so no type conversion is counted) and reads
the Parquet deliveries, then throws the result away. bench/run.sh times it
with /usr/bin/time beside `cat` of the same bytes (the I/O floor).

    python bench/peers/floor.py --deliveries DIR

Prints rows and bytes per file, and as its last line a JSON object
{"stages": {"parse": seconds}, "rows": n, "bytes": n}.
"""

import argparse
import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq


def parse_csv(path: Path) -> int:
    with path.open("rb") as f:
        header = f.readline().decode().rstrip("\r\n").split(";")
    table = pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(delimiter=";"),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in header},
            strings_can_be_null=False,
        ),
        read_options=pacsv.ReadOptions(use_threads=True, block_size=16 << 20),
    )
    return table.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=Path, required=True)
    args = parser.parse_args()

    files = sorted(p for p in args.deliveries.iterdir() if p.suffix in (".csv", ".parquet"))
    if not files:
        raise SystemExit(f"floor: no .csv or .parquet deliveries in {args.deliveries}")
    started = time.perf_counter()
    rows = 0
    size = 0
    for path in files:
        n = parse_csv(path) if path.suffix == ".csv" else pq.read_table(path).num_rows
        rows += n
        size += path.stat().st_size
        print(f"{path.name}: {n} rows, {path.stat().st_size} bytes")
    elapsed = time.perf_counter() - started
    print(json.dumps({"stages": {"parse": elapsed}, "rows": rows, "bytes": size}))


if __name__ == "__main__":
    main()
