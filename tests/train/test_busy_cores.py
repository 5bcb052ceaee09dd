"""How busy the cores are, from two readings of /proc/stat (the threads default reads it)."""
import pytest

from genlab.devices import busy_cores, busy_share

# user nice system idle iowait irq softirq steal, per core, in jiffies
BEFORE = """cpu  300 0 100 900 0 0 0 0 0 0
cpu0 200 0 50 400 0 0 0 0 0 0
cpu1 100 0 50 500 0 0 0 0 0 0
intr 12345
"""
# cpu0: 80 busy of 100 (0.8); cpu1: 10 busy of 100, 20 of the idle as iowait (0.1)
AFTER = """cpu  390 0 110 1100 20 0 0 0 0 0
cpu0 270 0 60 420 0 0 0 0 0 0
cpu1 110 0 50 570 20 0 0 0 0 0
intr 23456
"""


def test_busy_share_sums_each_cores_busy_fraction():
    assert busy_share(BEFORE, AFTER) == pytest.approx(0.8 + 0.1)


def test_a_core_with_no_ticks_between_readings_counts_nothing():
    assert busy_share(BEFORE, BEFORE) == 0.0


def test_busy_cores_is_between_zero_and_the_core_count():
    import os

    assert 0.0 <= busy_cores(0.05) <= (os.cpu_count() or 1) + 1e-9
