#!/usr/bin/env python3
"""Sums an `ncu --csv` report of gpu__time_duration.sum and dram__bytes_read.sum per kernel and
grid: calls, mean time a call, share of the total, bytes read a call and the rate they were read
at. Usage: ncu --metrics gpu__time_duration.sum,dram__bytes_read.sum --csv CMD > r.csv;
bench/ncu_sum.py r.csv"""
import collections
import csv
import sys

SCALE = {"ns": 1e-3, "nsecond": 1e-3, "us": 1, "usecond": 1, "ms": 1e3, "msecond": 1e3,
         "byte": 1, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9}


def main(path):
    rows = list(csv.DictReader(line for line in open(path) if line.startswith('"')))
    launches = collections.defaultdict(dict)
    for r in rows:
        key = (r["ID"], r["Kernel Name"].split("(")[0][:70], r["Grid Size"])
        value = float(r["Metric Value"].replace(",", "")) * SCALE.get(r["Metric Unit"], 1)
        launches[key][r["Metric Name"]] = value
    kernels = collections.defaultdict(lambda: [0, 0.0, 0.0])  # calls, us, bytes
    for (_, name, grid), m in launches.items():
        k = kernels[(name, grid)]
        k[0] += 1
        k[1] += m.get("gpu__time_duration.sum", 0)
        k[2] += m.get("dram__bytes_read.sum", 0)
    total = sum(k[1] for k in kernels.values())
    print("total %.1f us over %d kernels" % (total, sum(k[0] for k in kernels.values())))
    for (name, grid), (n, t, b) in sorted(kernels.items(), key=lambda kv: -kv[1][1]):
        print("%-70s %-14s n=%4d mean=%8.2f us share=%5.1f%% read=%7.3f MB %6.0f GB/s"
              % (name, grid, n, t / n, 100 * t / total, b / n / 1e6, b / t / 1e3 if t else 0))


if __name__ == "__main__":
    main(sys.argv[1])
