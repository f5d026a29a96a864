"""Export scikit-learn's bundled datasets to the CSV files the demo uploads (committed beside this script).

    python data/export_sklearn.py

wine.csv           178 rows, 13 numeric features, target: cultivar 0/1/2 (classification)
breast_cancer.csv  569 rows, 30 numeric features, target: 0 malignant / 1 benign (classification)
diabetes.csv       442 rows, 10 numeric features (scaled as scikit-learn ships them), target: disease
                   progression after one year (regression)

The files are plain UTF-8 CSV with a header; the target is the column named `target`.
"""

from __future__ import annotations

from pathlib import Path

from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

HERE = Path(__file__).resolve().parent


def main() -> None:
    for name, loader in (("wine", load_wine), ("breast_cancer", load_breast_cancer), ("diabetes", load_diabetes)):
        frame = loader(as_frame=True).frame
        path = HERE / f"{name}.csv"
        frame.to_csv(path, index=False, float_format="%.10g", lineterminator="\n")
        print(f"{path.name}: {len(frame)} rows, {frame.shape[1]} columns, {path.stat().st_size} bytes")  # noqa: T201


if __name__ == "__main__":
    main()
