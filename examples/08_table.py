"""A table as people have them: a row id, a text column, empty cells, and a class to predict.

The file is written here so the example runs anywhere. riskmin leaves the id out of the
features, guesses the task from the target and says by which rule, one-hot encodes the text
column with the categories of the training split, fills the empty cells with training-split
means, and `predict` turns new rows into class names.
"""
import csv
import tempfile
from pathlib import Path

import numpy as np

import riskmin

folder = Path(tempfile.mkdtemp())
generator = np.random.default_rng(0)
with open(folder / "fruit.csv", "w", newline="") as file:
    writer = csv.writer(file)
    writer.writerow(["id", "weight", "colour", "fruit"])
    for i in range(600):
        fruit = ["apple", "banana", "cherry"][i % 3]
        weight = {"apple": 150, "banana": 120, "cherry": 8}[fruit] * generator.uniform(0.7, 1.3)
        colour = {"apple": "red", "banana": "yellow", "cherry": "red"}[fruit] if generator.random() > 0.2 else "green"
        writer.writerow([f"f{i:04d}", "" if i % 50 == 0 else round(weight, 1), colour, fruit])

data = riskmin.load(str(folder / "fruit.csv"), riskmin.Config(target="fruit", missing="mean"))
print("\n".join(data.notes))
print("inputs:", ", ".join(data.feature_names))
run = riskmin.fit("two_layer", data, epochs=60, lr=0.05, patience=10, progress=False)
print(f"test accuracy {run.test['test_accuracy']:.3f}, macro F1 {run.test['test_f1']:.3f}, log loss {run.test['test_log_loss']:.3f}")

new = riskmin.load(str(folder / "fruit.csv"), riskmin.Config(target="fruit", missing="mean"))
rows = new.x[:3].numpy()
probabilities = riskmin.predict(run, rows, kind="proba")  # softmax; kind="class" gives NumPy rows their class names
for row, name, p in zip(rows.tolist(), riskmin.predict(run, rows, kind="class"), probabilities):
    print(f"weight {row[0]:6.1f} -> {name} ({float(p.max()):.2f})")
