"""Writes the small files that README.md's examples read, the same bytes every time (tests/test_readme.py checks).

    python examples/data/make_data.py            # into examples/data/
    python examples/data/make_data.py FOLDER     # somewhere else

houses.csv         200 houses: id, size (m²), rooms, town, built (year), price; a row id, a text column, a year
new_houses.csv     5 houses to price, their columns in another order and without a price
held_out.csv       40 more houses with their price, to evaluate a run on
patients.csv       300 patients: id, age, weight, smoker (yes/no), cholesterol (a few cells empty), outcome
patients.parquet   the same table as Parquet
arrays.npz         x (200 x 3) and y (200), as NumPy writes them
run.toml           settings for `riskmin train --config run.toml`
grid.toml          three candidates for `riskmin compare --config grid.toml`, as the README shows it
protocol.npz       five fixed 800/100/100 splits of lab1's 1,000 rows: train_0, val_0, test_0, train_1, ...
"""
import csv
import sys
from pathlib import Path

import numpy as np

TOWNS = {"Ashby": 0.0, "Brook": 30_000.0, "Carlton": 60_000.0}

RUN_TOML = """\
# riskmin train --config run.toml: every setting not given here keeps its default; a flag overrides a line
data = "lab1"
model = "mlp"
hidden = [64, 64]
optimizer = "adamw"
lr = 0.001
epochs = 100
patience = 20
"""

GRID_TOML = """\
# grid.toml
runs = 50
epochs = 100
patience = 10
["narrow"]
hidden = 8
["wide"]
hidden = 128
lr = 0.001
["linear"]
model = "linear"
"""


def houses(generator: np.random.Generator, first_id: int, n: int) -> list:
    rows = []
    for i in range(n):
        size = round(float(generator.uniform(40, 250)), 1)
        rooms = int(np.clip(round(size / 35 + generator.normal(0, 0.7)), 1, 8))
        town = list(TOWNS)[int(generator.integers(3))]
        built = int(generator.integers(1900, 2021))
        price = 40_000 + 1_800 * size + 6_000 * rooms + TOWNS[town] + 300 * (built - 1960) + generator.normal(0, 15_000)
        rows.append({"id": first_id + i, "size": size, "rooms": rooms, "town": town, "built": built, "price": round(price)})
    return rows


def patients(generator: np.random.Generator, n: int) -> list:
    rows = []
    for i in range(n):
        age = int(generator.integers(20, 91))
        weight = round(float(generator.normal(78, 14)), 1)
        smoker = "yes" if generator.random() < 0.3 else "no"
        cholesterol = round(float(generator.normal(5.2, 1.0)), 2)
        risk = 0.06 * (age - 55) + 1.2 * (smoker == "yes") + 0.8 * (cholesterol - 5.2) + 0.02 * (weight - 78)
        outcome = "readmitted" if generator.random() < 1 / (1 + np.exp(-risk)) else "recovered"
        missing = generator.random() < 0.03  # an empty cell now and then: `--missing mean` fills it
        rows.append({"id": f"p{i + 1:04d}", "age": age, "weight": weight, "smoker": smoker,
                     "cholesterol": "" if missing else cholesterol, "outcome": outcome})
    return rows


def write_csv(path: Path, rows: list, columns: list) -> None:
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def write_parquet(path: Path, rows: list) -> None:
    import pyarrow
    import pyarrow.parquet

    columns = {name: [row[name] for row in rows] for name in rows[0]}
    columns["cholesterol"] = [None if value == "" else value for value in columns["cholesterol"]]
    pyarrow.parquet.write_table(pyarrow.table(columns), path)


def write_protocol(path: Path, generator: np.random.Generator, n_rows: int = 1000, n_splits: int = 5) -> None:
    parts = {}
    for k in range(n_splits):
        order = generator.permutation(n_rows)
        parts.update({f"train_{k}": np.sort(order[:800]), f"val_{k}": np.sort(order[800:900]), f"test_{k}": np.sort(order[900:])})
    np.savez_compressed(path, **{name: part.astype(np.int32) for name, part in parts.items()})


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    generator = np.random.default_rng(2024)
    table = houses(generator, 1, 200)
    write_csv(folder / "houses.csv", table, ["id", "size", "rooms", "town", "built", "price"])
    write_csv(folder / "new_houses.csv", houses(generator, 1001, 5), ["town", "id", "built", "size", "rooms"])
    write_csv(folder / "held_out.csv", houses(generator, 2001, 40), ["id", "size", "rooms", "town", "built", "price"])
    table = patients(generator, 300)
    write_csv(folder / "patients.csv", table, list(table[0]))
    write_parquet(folder / "patients.parquet", table)
    x = generator.normal(size=(200, 3)).astype(np.float32)
    y = (x @ np.array([1.5, -2.0, 0.5], dtype=np.float32) + 0.3 * generator.normal(size=200)).astype(np.float32)
    np.savez(folder / "arrays.npz", x=x, y=y)
    (folder / "run.toml").write_text(RUN_TOML, encoding="utf-8")
    (folder / "grid.toml").write_text(GRID_TOML, encoding="utf-8")
    write_protocol(folder / "protocol.npz", generator)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
