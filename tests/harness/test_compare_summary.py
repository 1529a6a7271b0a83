"""The table `compare` prints at its end: peak heap beside peak memory, '-' for runs without it,
wall seconds with the offline stage charged."""

from harness.compare import summary_table


def record(algorithm, rss, heap=None, offline_s=None):
    final = {"perf/peak_memory_gb": rss, "budget/samples": 256.0, "budget/flops": 1e9}
    if heap is not None:
        final["perf/peak_heap_gb"] = heap
    history = [] if offline_s is None else [{"timing_s/offline": offline_s}]
    return {"algorithm": algorithm, "seed": 0, "final_metrics": final, "history": history,
            "summary": {"accuracy_before": 0.25, "accuracy_after": 0.3, "wall_s": 10.0}}


def test_summary_shows_the_highest_peak_heap_of_the_seeds_and_a_dash_without_one():
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[1:-1]]
            for line in summary_table([record("grpo", 0.9, 0.34), record("grpo", 0.8, 0.36),
                                       record("ppo", 1.0)]).splitlines()[2:]}
    header = [cell.strip() for cell in summary_table([record("grpo", 0.9)]).splitlines()[0].split("|")[1:-1]]
    memory, heap = header.index("peak memory GB"), header.index("peak heap GB")
    assert (rows["grpo"][memory], rows["grpo"][heap]) == ("0.90", "0.36")
    assert (rows["ppo"][memory], rows["ppo"][heap]) == ("1.00", "-")
    assert len(rows["ppo"]) == len(header)


def test_summary_wall_seconds_charge_the_offline_stage_as_the_leaderboard_does():
    records = [record("grpo", 0.9), record("a_star_po", 0.9, offline_s=30.0), record("a_star_po", 0.9, offline_s=34.0)]
    lines = summary_table(records).splitlines()
    wall = [cell.strip() for cell in lines[0].split("|")[1:-1]].index("wall s")
    rows = {line.split("|")[1].strip(): [cell.strip() for cell in line.split("|")[1:-1]] for line in lines[2:]}
    assert (rows["grpo"][wall], rows["a_star_po"][wall]) == ("10", "42")
